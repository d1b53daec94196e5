// A JavaScript rule that tries to leave the sandbox: `fetch` to the address in config
// `target` (a POST with the ticket's description when config `post` is set), and throws on
// purpose when the category says so. Built with componentize-js's
// default flags, it imports `wasi:http`, which the host links with every request refused.
import * as imports from 'switchboard:rules/host@0.1.0';
import { RuleError, decision, exportRule } from '../../../../guest-sdk/js/switchboard.js';

function logic(event, host) {
  const { category } = event.ticket;
  if (category === 'throw') throw new TypeError('no queue for this ticket');
  if (category === 'rule-error') throw new RuleError('missing-config', 'set `calendar`');
  const target = host.config('target');
  if (target) {
    try {
      const init = host.config('post') ? { method: 'POST', body: event.ticket.description } : {};
      fetch(target, init).then(
        (r) => host.info(`fetch: ALLOWED ${r.status}`),
        (e) => host.info(`fetch: denied (${e})`),
      );
      host.info('fetch: started');
    } catch (e) {
      host.info(`fetch: denied (${e})`);
    }
  }
  return decision('desk', 'msp', 1, 'p3').reason(`random ${Math.random()} now ${Date.now()}`);
}

export const route = exportRule(logic, imports);
