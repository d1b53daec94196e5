"""Native unit tests: ``python -m unittest`` (no component is built)."""

import unittest

from rule import route
from switchboard_sdk import Metric, Party, Priority, target, types
from switchboard_testing import TestHost, ticket_event


class VipAndSecurityTest(unittest.TestCase):
    def test_security_goes_to_the_soc_with_three_escalations(self):
        d = route(ticket_event("S-1", category="security"), TestHost().host()).build()
        self.assertEqual((d.queue, d.party, d.tier, d.priority), ("soc", Party.MSP, 2, Priority.P1))
        fr = target(d, Metric.FIRST_RESPONSE)
        self.assertEqual((fr.minutes, fr.calendar), (15, "24x7"))
        self.assertEqual([e.trigger for e in d.escalations], [
            types.EscalationTrigger_PercentElapsed(50),
            types.EscalationTrigger_PercentElapsed(90),
            types.EscalationTrigger_MinutesAfterDue(0),
        ])

    def test_security_wins_over_vip(self):
        t = TestHost()
        d = route(ticket_event("S-2", category="security", vip=True), t.host()).build()
        self.assertEqual(d.queue, "soc")
        self.assertEqual(t.log_lines(), [])

    def test_vip_goes_to_internal_tier_two_with_a_raised_priority(self):
        t = TestHost().with_config("calendar", "24x7")
        event = ticket_event("V-1", vip=True, email="ceo@example.com", impact=2, urgency=2)
        d = route(event, t.host()).build()
        self.assertEqual((d.queue, d.party, d.tier, d.priority),
                         ("vip-desk", Party.INTERNAL, 2, Priority.P2))
        self.assertEqual(target(d, Metric.FIRST_RESPONSE).minutes, 30)
        self.assertEqual(t.log_lines(), ["info: VIP requester ceo@example.com"])

    def test_everything_else_goes_to_the_service_desk(self):
        d = route(ticket_event("R-1", category="printing"), TestHost().host()).build()
        self.assertEqual((d.queue, d.party, d.tier, d.priority),
                         ("service-desk", Party.MSP, 1, Priority.P4))
        self.assertEqual(target(d, Metric.FIRST_RESPONSE).minutes, 120)


if __name__ == "__main__":
    unittest.main()
