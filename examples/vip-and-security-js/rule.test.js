// Native unit tests: `node --test` (no component is built).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Metric, target } from '../../guest-sdk/js/switchboard.js';
import { TestHost, ticketEvent } from '../../guest-sdk/js/testing.js';
import { route } from './rule.js';

test('security goes to the SOC with three escalations', () => {
  const d = route(ticketEvent('S-1', { category: 'security' }), new TestHost().host()).build();
  assert.deepEqual([d.queue, d.party, d.tier, d.priority], ['soc', 'msp', 2, 'p1']);
  assert.deepEqual(target(d, Metric.FIRST_RESPONSE), {
    metric: 'first-response', minutes: 15, calendar: '24x7',
  });
  assert.deepEqual(d.escalations.map((e) => e.trigger), [
    { tag: 'percent-elapsed', val: 50 },
    { tag: 'percent-elapsed', val: 90 },
    { tag: 'minutes-after-due', val: 0 },
  ]);
});

test('security wins over VIP', () => {
  const t = new TestHost();
  const d = route(ticketEvent('S-2', { category: 'security', vip: true }), t.host()).build();
  assert.equal(d.queue, 'soc');
  assert.deepEqual(t.logLines(), []);
});

test('VIP goes to internal tier two with a raised priority', () => {
  const t = new TestHost().withConfig('calendar', '24x7');
  const event = ticketEvent('V-1', { vip: true, email: 'ceo@example.com', impact: 2, urgency: 2 });
  const d = route(event, t.host()).build();
  assert.deepEqual([d.queue, d.party, d.tier, d.priority], ['vip-desk', 'internal', 2, 'p2']);
  assert.equal(target(d, Metric.FIRST_RESPONSE).minutes, 30);
  assert.deepEqual(t.logLines(), ['info: VIP requester ceo@example.com']);
});

test('everything else goes to the service desk', () => {
  const d = route(ticketEvent('R-1', { category: 'printing' }), new TestHost().host()).build();
  assert.deepEqual([d.queue, d.party, d.tier, d.priority], ['service-desk', 'msp', 1, 'p4']);
  assert.equal(target(d, Metric.FIRST_RESPONSE).minutes, 120);
});
