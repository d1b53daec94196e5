import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TestHost, ticketEvent } from './lib/testing.js';
import { route } from './rule.js';

test('security goes to the SOC', () => {
  const d = route(ticketEvent('S-1', { category: 'security' }), new TestHost().host()).build();
  assert.deepEqual([d.queue, d.priority], ['soc', 'p1']);
});

test('everything else goes to the service desk', () => {
  const d = route(ticketEvent('R-1', { category: 'printing' }), new TestHost().host()).build();
  assert.equal(d.queue, 'service-desk');
});
