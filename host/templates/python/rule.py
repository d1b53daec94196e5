"""{{name}}: a Switchboard rule. Security incidents go to the MSP's SOC at p1 with a 15-minute
first response around the clock; everything else to the MSP service desk.

Test: ``componentize-py -d wit -w ticket-rules bindings bindings`` once, then
``PYTHONPATH=bindings python -m unittest``. Build:
``componentize-py -d wit -w ticket-rules componentize app -o rule.wasm``, then
``switchboard rules check rule.wasm``.
"""

from switchboard_sdk import Host, Metric, Party, Priority, decision, default_priority, types


def route(event: types.TicketEvent, host: Host):
    """Routes one ticket event."""
    ticket = event.ticket
    if ticket.category == "security":
        return (decision("soc", Party.MSP, 2, Priority.P1)
                .sla(Metric.FIRST_RESPONSE, 15, "24x7")
                .escalate_at_percent(Metric.FIRST_RESPONSE, 50, "soc-50", "msp-soc-oncall")
                .reason("security incident: MSP SOC"))
    calendar = host.config("calendar") or "24x7"
    return (decision("service-desk", Party.MSP, 1, default_priority(ticket))
            .sla(Metric.FIRST_RESPONSE, 120, calendar)
            .reason("standard request: MSP service desk"))
