import unittest

from rule import route
from switchboard_sdk import Priority
from switchboard_testing import TestHost, ticket_event


class RuleTest(unittest.TestCase):
    def test_security_goes_to_the_soc(self):
        d = route(ticket_event("S-1", category="security"), TestHost().host()).build()
        self.assertEqual((d.queue, d.priority), ("soc", Priority.P1))

    def test_everything_else_goes_to_the_service_desk(self):
        d = route(ticket_event("R-1", category="printing"), TestHost().host()).build()
        self.assertEqual(d.queue, "service-desk")


if __name__ == "__main__":
    unittest.main()
