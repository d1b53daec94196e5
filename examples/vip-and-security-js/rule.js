// Example rule in JavaScript: the same routing as the Rust `vip-and-security` example.
// Security incidents go to the MSP's SOC at p1 with a 15-minute first response around the
// clock and a three-step escalation; VIP requesters go to internal IT's tier 2 with a tighter
// first response; everything else to the MSP service desk. Security wins over VIP.
//
// Config: `calendar` (id of the business-hours calendar for non-security work, default
// `24x7`).

import { Metric, Party, decision, defaultPriority, raised } from '../../guest-sdk/js/switchboard.js';

/** Routes one ticket event. */
export function route(event, host) {
  const { ticket } = event;
  if (ticket.category === 'security') {
    return decision('soc', Party.MSP, 2, 'p1')
      .sla(Metric.FIRST_RESPONSE, 15, '24x7')
      .sla(Metric.RESOLUTION, 240, '24x7')
      .escalateAtPercent(Metric.FIRST_RESPONSE, 50, 'soc-50', 'msp-soc-oncall')
      .escalateAtPercent(Metric.FIRST_RESPONSE, 90, 'soc-90', 'msp-soc-lead')
      .escalateAfterDue(Metric.FIRST_RESPONSE, 0, 'soc-breach', 'msp-duty-manager')
      .tag('security')
      .reason('security incident: MSP SOC, p1');
  }
  const calendar = host.config('calendar') ?? '24x7';
  if (ticket.requester.vip) {
    host.info(`VIP requester ${ticket.requester.email}`);
    return decision('vip-desk', Party.INTERNAL, 2, raised(defaultPriority(ticket)))
      .sla(Metric.FIRST_RESPONSE, 30, calendar)
      .sla(Metric.RESOLUTION, 480, calendar)
      .escalateAtPercent(Metric.FIRST_RESPONSE, 75, 'vip-75', 'internal-it-lead')
      .tag('vip')
      .reason('VIP requester: internal IT tier 2');
  }
  return decision('service-desk', Party.MSP, 1, defaultPriority(ticket))
    .sla(Metric.FIRST_RESPONSE, 120, calendar)
    .sla(Metric.RESOLUTION, 1440, calendar)
    .reason('standard request: MSP service desk');
}
