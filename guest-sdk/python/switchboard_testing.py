"""Native test helpers for rules written with :mod:`switchboard_sdk`: a :class:`TestHost` with
config, calendars and a captured log, and :func:`ticket_event`, so a rule's logic runs under
``python -m unittest`` exactly as the sandbox calls it, without building a component."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any, Optional, Union
from zoneinfo import ZoneInfo

from componentize_py_types import Err
from switchboard_sdk import Host
from wit_world.imports import types

_DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


class _Calendar:
    """A tenant calendar as ``PUT …/calendars/{id}`` takes it (``{timezone, hours,
    holidays}``), evaluated minute by minute: a model of the host's calendar for tests, exact
    for whole-minute instants."""

    def __init__(self, spec: Optional[dict]) -> None:
        self.always = spec is None
        if spec is not None:
            self.zone = ZoneInfo(spec["timezone"])
            self.hours = spec.get("hours", {})
            self.holidays = set(spec.get("holidays", []))

    def is_open(self, seconds: int) -> bool:
        if self.always:
            return True
        local = datetime.fromtimestamp(seconds, tz=timezone.utc).astimezone(self.zone)
        if local.date().isoformat() in self.holidays:
            return False
        now = local.strftime("%H:%M")
        spans = self.hours.get(_DAYS[local.weekday()], [])
        return any(start <= now < end for start, end in spans)

    def add_minutes(self, start: int, minutes: int) -> int:
        if self.always:
            return start + minutes * 60
        t, left, guard = start, minutes, 0
        while left > 0:
            guard += 1
            if guard > 60 * 24 * 366 * 2:
                raise Err("calendar has no open time")
            if self.is_open(t):
                left -= 1
            t += 60
        return t

    def minutes_between(self, start: int, end: int) -> int:
        if end <= start:
            return 0
        if self.always:
            return (end - start) // 60
        return sum(1 for t in range(start, end - 59, 60) if self.is_open(t))


class TestHost:
    """A host for native tests: config, calendars (``24x7`` built in) and a captured log."""

    __test__ = False  # not a unittest case

    def __init__(self) -> None:
        self._config: dict[str, str] = {}
        self._calendars: dict[str, _Calendar] = {"24x7": _Calendar(None)}
        self._log: list[tuple[types.LogLevel, str]] = []

    def with_config(self, key: str, value: str) -> "TestHost":
        """Sets config ``key`` to ``value``."""
        self._config[key] = value
        return self

    def with_calendar(self, calendar_id: str, spec: Union[str, dict]) -> "TestHost":
        """Adds calendar ``calendar_id`` from its JSON spec."""
        self._calendars[calendar_id] = _Calendar(json.loads(spec) if isinstance(spec, str) else spec)
        return self

    def log_lines(self) -> list[str]:
        """The log as ``level: message`` lines."""
        return [f"{level.name.lower()}: {message}" for level, message in self._log]

    def clear_log(self) -> None:
        """Forgets the log."""
        self._log.clear()

    def _calendar(self, calendar_id: str) -> _Calendar:
        if calendar_id not in self._calendars:
            raise Err(f"unknown calendar {calendar_id!r}")
        return self._calendars[calendar_id]

    # The raw host functions, as the contract's imports offer them.
    def log(self, level: types.LogLevel, message: str) -> None:
        self._log.append((level, message))

    def config(self, key: str) -> Optional[str]:
        return self._config.get(key)

    def add_business_minutes(self, calendar: str, start: int, minutes: int) -> int:
        return self._calendar(calendar).add_minutes(start, minutes)

    def is_business_time(self, calendar: str, at: int) -> bool:
        return self._calendar(calendar).is_open(at)

    def business_minutes_between(self, calendar: str, start: int, end: int) -> int:
        return self._calendar(calendar).minutes_between(start, end)

    def host(self) -> Host:
        """The host the rule sees (the same wrapper as in the sandbox)."""
        return Host(self)


def parse_time(rfc3339: str) -> int:
    """Unix seconds of an RFC 3339 instant."""
    return int(datetime.fromisoformat(rfc3339.replace("Z", "+00:00")).timestamp())


def ticket_event(ticket_id: str, *, vip: bool = False, email: str = "user@example.com",
                 department: Optional[str] = None, created: str = "2026-03-02T09:00:00Z",
                 **fields: Any) -> types.TicketEvent:
    """A ``created`` event for a ticket with the host's defaults (impact and urgency 3, status
    ``new``, created 2026-03-02T09:00:00Z), changed by keyword arguments: any ticket field,
    plus ``vip``, ``email``, ``department`` for the requester and ``created`` as RFC 3339."""
    at = parse_time(created)
    values: dict[str, Any] = dict(
        id=ticket_id, subject="", description="", category=None, service=None, source=None,
        impact=3, urgency=3, priority=None, status="new",
        requester=types.Requester(email=email, department=department, vip=vip),
        tags=[], fields=[], created_at=at, updated_at=at, queue=None, party=None)
    values.update(fields)
    return types.TicketEvent(kind=types.EventKind_Created(), ticket=types.Ticket(**values), at=at)
