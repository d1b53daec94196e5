"""Switchboard rule SDK for Python (componentize-py), contract switchboard:rules@0.1.0.

A rule is a plain function ``route(event, host)`` returning a decision. The same function
runs inside the sandbox (through :func:`export_rule`, which binds it to the host imports) and
under ``python -m unittest`` (with :class:`switchboard_testing.TestHost`), so its logic is
tested natively.

The values are componentize-py's bindings of the WIT contract (``wit_world.imports.types``,
generated with ``componentize-py -d wit -w ticket-rules bindings DIR``): dataclasses with
snake_case fields, ``Enum`` members (``Party.MSP``, ``Priority.P1``), ``None`` for an absent
option, and timestamps as ``int`` Unix seconds.
"""

from __future__ import annotations

import traceback
from typing import Any, Callable, Optional, Union

from componentize_py_types import Err
from wit_world.imports import types
from wit_world.imports.types import LogLevel, Metric, Party, Priority

__all__ = [
    "DecisionBuilder", "Host", "LogLevel", "Metric", "Party", "Priority", "RuleError",
    "decision", "default_priority", "export_rule", "field", "raised", "target", "types",
]


STACK_LOG_CHARS = 2048
"""The most characters of an exception's traceback written to the rule log."""


class RuleError(Exception):
    """An error the rule reports on purpose: it becomes the contract's ``rule-error``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class DecisionBuilder:
    """Builds a decision step by step, like the Rust SDK's ``Decision::new(…).sla(…)…``."""

    def __init__(self, queue: str, party: Party, tier: int, priority: Priority) -> None:
        self._d = types.Decision(queue=queue, party=party, tier=tier, priority=priority,
                                 sla=[], escalations=[], tags=[], reason="")

    def sla(self, metric: Metric, minutes: int, calendar: str) -> "DecisionBuilder":
        """Adds an SLA target of ``minutes`` business minutes on ``calendar``."""
        self._d.sla.append(types.SlaTarget(metric=metric, minutes=minutes, calendar=calendar))
        return self

    def escalate_at_percent(self, metric: Metric, percent: int, label: str,
                            notify: str) -> "DecisionBuilder":
        """Escalates when ``percent`` (1–100) of ``metric``'s target has elapsed."""
        return self._escalate(metric, types.EscalationTrigger_PercentElapsed(percent),
                              label, notify)

    def escalate_before_due(self, metric: Metric, minutes: int, label: str,
                            notify: str) -> "DecisionBuilder":
        """Escalates ``minutes`` business minutes before ``metric`` is due."""
        return self._escalate(metric, types.EscalationTrigger_MinutesBeforeDue(minutes),
                              label, notify)

    def escalate_after_due(self, metric: Metric, minutes: int, label: str,
                           notify: str) -> "DecisionBuilder":
        """Escalates ``minutes`` business minutes after ``metric`` was breached."""
        return self._escalate(metric, types.EscalationTrigger_MinutesAfterDue(minutes),
                              label, notify)

    def _escalate(self, metric: Metric, trigger: Any, label: str,
                  notify: str) -> "DecisionBuilder":
        self._d.escalations.append(
            types.Escalation(metric=metric, trigger=trigger, label=label, notify=notify))
        return self

    def tag(self, tag: str) -> "DecisionBuilder":
        """Adds a tag to the ticket."""
        self._d.tags.append(tag)
        return self

    def reason(self, reason: str) -> "DecisionBuilder":
        """Says why, for the people reading the ticket."""
        self._d.reason = reason
        return self

    def build(self) -> types.Decision:
        """The decision record."""
        return self._d


def decision(queue: str, party: Party, tier: int, priority: Priority) -> DecisionBuilder:
    """A decision for ``queue``, owned by ``party`` at ``tier`` (1–3) and ``priority``."""
    return DecisionBuilder(queue, party, tier, priority)


def default_priority(ticket: types.Ticket) -> Priority:
    """The priority the ticket already has, or else the ITIL impact × urgency matrix:
    1/1 → p1; 1/2, 2/1 → p2; 1/3, 2/2, 3/1 → p3; otherwise p4."""
    if ticket.priority is not None:
        return ticket.priority
    score = min(3, max(1, ticket.impact)) + min(3, max(1, ticket.urgency))
    return {2: Priority.P1, 3: Priority.P2, 4: Priority.P3}.get(score, Priority.P4)


def raised(priority: Priority) -> Priority:
    """One step more urgent (``p1`` stays ``p1``)."""
    return {Priority.P1: Priority.P1, Priority.P2: Priority.P1,
            Priority.P3: Priority.P2, Priority.P4: Priority.P3}[priority]


def target(d: Union[DecisionBuilder, types.Decision], metric: Metric) -> Optional[types.SlaTarget]:
    """The target a decision sets for ``metric``, if any."""
    d = d.build() if isinstance(d, DecisionBuilder) else d
    return next((t for t in d.sla if t.metric == metric), None)


def field(ticket: types.Ticket, key: str) -> Optional[str]:
    """The value of custom field ``key`` of ``ticket``, if set."""
    return next((f.value for f in ticket.fields if f.key == key), None)


class Host:
    """The host a rule sees, over the contract's ``host`` imports (or a test double with the
    same functions). A calendar error raises ``ValueError`` naming the calendar."""

    def __init__(self, raw: Any) -> None:
        self._raw = raw

    def log(self, level: LogLevel, message: str) -> None:
        """Appends a line to the rule log."""
        self._raw.log(level, str(message))

    def trace(self, message: str) -> None:
        """Logs at ``trace``."""
        self.log(LogLevel.TRACE, message)

    def debug(self, message: str) -> None:
        """Logs at ``debug``."""
        self.log(LogLevel.DEBUG, message)

    def info(self, message: str) -> None:
        """Logs at ``info``."""
        self.log(LogLevel.INFO, message)

    def warn(self, message: str) -> None:
        """Logs at ``warn``."""
        self.log(LogLevel.WARN, message)

    def error(self, message: str) -> None:
        """Logs at ``error``."""
        self.log(LogLevel.ERROR, message)

    def config(self, key: str) -> Optional[str]:
        """The tenant's config value for ``key``, or ``None``."""
        return self._raw.config(key)

    @staticmethod
    def _call(f: Callable[[], Any]) -> Any:
        try:
            return f()
        except Err as e:
            raise ValueError(str(e.value)) from None

    def add_business_minutes(self, calendar: str, start: int, minutes: int) -> int:
        """The instant ``minutes`` business minutes after ``start`` on ``calendar``."""
        return self._call(lambda: self._raw.add_business_minutes(calendar, start, minutes))

    def is_business_time(self, calendar: str, at: int) -> bool:
        """Whether ``calendar`` is open at ``at``."""
        return self._call(lambda: self._raw.is_business_time(calendar, at))

    def business_minutes_between(self, calendar: str, start: int, end: int) -> int:
        """Whole business minutes on ``calendar`` between ``start`` and ``end``."""
        return self._call(lambda: self._raw.business_minutes_between(calendar, start, end))


Logic = Callable[[types.TicketEvent, Host], Union[DecisionBuilder, types.Decision]]


def export_rule(logic: Logic, imports: Any) -> Callable[[Any, types.TicketEvent], types.Decision]:
    """Binds ``logic(event, host)`` to the host imports as the component's ``route`` method.

    What it returns (a :class:`DecisionBuilder` or a decision record) is the decision. A
    :class:`RuleError` it raises becomes the contract's ``rule-error`` with its code; any other
    exception becomes the ``rule-error`` ``exception`` with its message, and its traceback goes
    to the rule log, instead of a trap that loses both::

        class WitWorld(wit_world.WitWorld):
            route = export_rule(logic, host_imports)
    """
    host = Host(imports)

    def route(self: Any, event: types.TicketEvent) -> types.Decision:
        try:
            result = logic(event, host)
        except RuleError as e:
            raise Err(types.RuleError(code=e.code, message=e.message)) from None
        except Exception as e:  # noqa: BLE001 - every exception becomes a rule-error
            message = f"{type(e).__name__}: {e}"
            # Bounded, so the traceback cannot push the log past its limit and trap instead.
            host.error(f"{message}\n{traceback.format_exc()}".rstrip()[:STACK_LOG_CHARS])
            raise Err(types.RuleError(code="exception", message=message)) from None
        return result.build() if isinstance(result, DecisionBuilder) else result

    return route
