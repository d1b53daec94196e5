// {{name}}: a Switchboard rule. Security incidents go to the MSP's SOC at p1 with a 15-minute
// first response around the clock; everything else to the MSP service desk.
//
// Test: `npm test`. Build: `npm install && npm run build`, then
// `switchboard rules check rule.wasm`.

import { Metric, Party, decision, defaultPriority } from './lib/switchboard.js';

/** Routes one ticket event. */
export function route(event, host) {
  const { ticket } = event;
  if (ticket.category === 'security') {
    return decision('soc', Party.MSP, 2, 'p1')
      .sla(Metric.FIRST_RESPONSE, 15, '24x7')
      .escalateAtPercent(Metric.FIRST_RESPONSE, 50, 'soc-50', 'msp-soc-oncall')
      .reason('security incident: MSP SOC');
  }
  const calendar = host.config('calendar') ?? '24x7';
  return decision('service-desk', Party.MSP, 1, defaultPriority(ticket))
    .sla(Metric.FIRST_RESPONSE, 120, calendar)
    .reason('standard request: MSP service desk');
}
