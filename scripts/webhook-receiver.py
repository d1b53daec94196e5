#!/usr/bin/env python3
"""A webhook receiver for trying Switchboard out: prints every delivery it gets and, given the
endpoint's secret, verifies its Standard Webhooks signature with the official library.

    python3 scripts/webhook-receiver.py [PORT]          # default 9000, on 127.0.0.1
    WEBHOOK_SECRET=whsec_... python3 scripts/webhook-receiver.py

Verification needs `pip install standardwebhooks==1.1.0` (the Standard Webhooks project's own
Python library); without it, or without a secret, deliveries are printed unverified. Answers
204 to a delivery that verifies (or is not checked) and 401 to one that does not, so
Switchboard's retries and dead letter can be watched too. Only the standard library besides.
"""

import json
import os
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

SECRET = os.environ.get("WEBHOOK_SECRET")
try:
    from standardwebhooks.webhooks import Webhook
except ImportError:  # printed once at start
    Webhook = None


class Receiver(BaseHTTPRequestHandler):
    """Prints each POST and answers it."""

    def do_POST(self):  # noqa: N802 (the http.server name)
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        headers = {k.lower(): v for k, v in self.headers.items()}
        verdict, status = "unverified (no secret or no standardwebhooks)", 204
        if SECRET and Webhook:
            try:
                Webhook(SECRET).verify(body, headers)
                verdict = "signature verified"
            except Exception as e:  # the library raises WebhookVerificationError
                verdict, status = f"SIGNATURE REJECTED: {e}", 401
        try:
            shown = json.dumps(json.loads(body), indent=2)
        except ValueError:
            shown = body.decode(errors="replace")
        print(f"--- {headers.get('webhook-id')} at {headers.get('webhook-timestamp')}: {verdict}")
        print(shown, flush=True)
        self.send_response(status)
        self.end_headers()

    def log_message(self, *args):
        """Quiet: the delivery itself is printed."""


def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 9000
    if SECRET and not Webhook:
        print("standardwebhooks is not installed: printing without verifying", file=sys.stderr)
    print(f"listening on http://127.0.0.1:{port}/ (Ctrl-C stops)", flush=True)
    HTTPServer(("127.0.0.1", port), Receiver).serve_forever()


if __name__ == "__main__":
    main()
