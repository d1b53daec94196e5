// Switchboard rule SDK for JavaScript (componentize-js), contract switchboard:rules@0.1.0.
//
// A rule is a plain function `route(event, host)` returning a decision. The same function runs
// inside the sandbox (through `exportRule`, which binds it to the host imports) and under
// node in unit tests (with `TestHost` from `./testing.js`), so its logic is tested natively.
//
// The values follow jco's mapping of the WIT contract (see `types/`): records are objects
// with camelCase fields, enums are strings (`'msp'`, `'p1'`, `'first-response'`), options are
// `undefined` when absent, and timestamps (`s64`, Unix seconds) are BigInts.

/** The parties of a co-managed desk. */
export const Party = Object.freeze({ MSP: 'msp', INTERNAL: 'internal', VENDOR: 'vendor' });
/** Priorities, `p1` the most urgent. */
export const Priority = Object.freeze({ P1: 'p1', P2: 'p2', P3: 'p3', P4: 'p4' });
/** SLA metrics. */
export const Metric = Object.freeze({
  FIRST_RESPONSE: 'first-response',
  NEXT_RESPONSE: 'next-response',
  RESOLUTION: 'resolution',
});

/** An error the rule reports on purpose: it becomes the contract's `rule-error`. */
export class RuleError extends Error {
  /** @param {string} code short machine-readable code, e.g. `missing-config` */
  constructor(code, message) {
    super(message);
    this.name = 'RuleError';
    this.code = code;
  }
}

/** Builds a decision step by step, like the Rust SDK's `Decision::new(…).sla(…)…`. */
export class DecisionBuilder {
  constructor(queue, party, tier, priority) {
    this.decision = {
      queue, party, tier, priority, sla: [], escalations: [], tags: [], reason: '',
    };
  }

  /** Adds an SLA target of `minutes` business minutes on `calendar`. */
  sla(metric, minutes, calendar) {
    this.decision.sla.push({ metric, minutes, calendar });
    return this;
  }

  /** Escalates when `percent` (1–100) of `metric`'s target has elapsed. */
  escalateAtPercent(metric, percent, label, notify) {
    return this.#escalate(metric, { tag: 'percent-elapsed', val: percent }, label, notify);
  }

  /** Escalates `minutes` business minutes before `metric` is due. */
  escalateBeforeDue(metric, minutes, label, notify) {
    return this.#escalate(metric, { tag: 'minutes-before-due', val: minutes }, label, notify);
  }

  /** Escalates `minutes` business minutes after `metric` was breached. */
  escalateAfterDue(metric, minutes, label, notify) {
    return this.#escalate(metric, { tag: 'minutes-after-due', val: minutes }, label, notify);
  }

  #escalate(metric, trigger, label, notify) {
    this.decision.escalations.push({ metric, trigger, label, notify });
    return this;
  }

  /** Adds a tag to the ticket. */
  tag(tag) {
    this.decision.tags.push(tag);
    return this;
  }

  /** Says why, for the people reading the ticket. */
  reason(reason) {
    this.decision.reason = reason;
    return this;
  }

  /** The decision record. */
  build() {
    return this.decision;
  }
}

/** A decision for `queue`, owned by `party` at `tier` (1–3) and `priority`. */
export function decision(queue, party, tier, priority) {
  return new DecisionBuilder(queue, party, tier, priority);
}

/**
 * The priority the ticket already has, or else the ITIL impact × urgency matrix:
 * 1/1 → p1; 1/2, 2/1 → p2; 1/3, 2/2, 3/1 → p3; otherwise p4.
 */
export function defaultPriority(ticket) {
  if (ticket.priority !== undefined) return ticket.priority;
  const clamp = (n) => Math.min(3, Math.max(1, n));
  switch (clamp(ticket.impact) + clamp(ticket.urgency)) {
    case 2: return 'p1';
    case 3: return 'p2';
    case 4: return 'p3';
    default: return 'p4';
  }
}

/** One step more urgent (`p1` stays `p1`). */
export function raised(priority) {
  return { p1: 'p1', p2: 'p1', p3: 'p2', p4: 'p3' }[priority];
}

/** The target a decision sets for `metric`, if any. */
export function target(decision, metric) {
  const d = decision instanceof DecisionBuilder ? decision.build() : decision;
  return d.sla.find((t) => t.metric === metric);
}

/** The value of custom field `key` of `ticket`, if set. */
export function field(ticket, key) {
  return ticket.fields.find((f) => f.key === key)?.value;
}

/**
 * The host a rule sees, over the contract's `host` imports (or a test double with the same
 * raw functions): `log`, `config`, and the calendar functions taking and returning numbers of
 * Unix seconds (BigInt or number in, number out). A calendar error throws an `Error` naming
 * the calendar.
 */
export function makeHost(raw) {
  const seconds = (t) => BigInt(t);
  const unwrap = (f) => {
    try {
      return f();
    } catch (e) {
      throw new Error(String(e?.payload ?? e?.message ?? e));
    }
  };
  return {
    log: (level, message) => raw.log(level, String(message)),
    trace: (message) => raw.log('trace', String(message)),
    debug: (message) => raw.log('debug', String(message)),
    info: (message) => raw.log('info', String(message)),
    warn: (message) => raw.log('warn', String(message)),
    error: (message) => raw.log('error', String(message)),
    config: (key) => raw.config(key) ?? undefined,
    addBusinessMinutes: (calendar, start, minutes) =>
      Number(unwrap(() => raw.addBusinessMinutes(calendar, seconds(start), minutes))),
    isBusinessTime: (calendar, at) => unwrap(() => raw.isBusinessTime(calendar, seconds(at))),
    businessMinutesBetween: (calendar, start, end) =>
      unwrap(() => raw.businessMinutesBetween(calendar, seconds(start), seconds(end))),
  };
}

/** The most characters of an exception's stack written to the rule log. */
const STACK_LOG_BYTES = 2048;

/** The contract's error value for `e`, thrown so the component returns `err(rule-error)`. */
function ruleErrorValue(code, message) {
  const error = new Error(message);
  error.payload = { code, message };
  return error;
}

/**
 * Binds `logic(event, host)` to the host imports as the component's `route` export. What it
 * returns (a `DecisionBuilder` or a decision record) is the decision. A `RuleError` it throws
 * becomes the contract's `rule-error` with its code; any other exception becomes the
 * `rule-error` `exception` with its message, and its stack goes to the rule log, instead of
 * a trap that loses both.
 *
 * ```js
 * import * as imports from 'switchboard:rules/host@0.1.0';
 * export const route = exportRule(logic, imports);
 * ```
 */
export function exportRule(logic, imports) {
  const host = makeHost(imports);
  return (event) => {
    let result;
    try {
      result = logic(event, host);
    } catch (e) {
      if (e instanceof RuleError) throw ruleErrorValue(e.code, e.message);
      const message = `${e?.name ?? 'Error'}: ${e?.message ?? e}`;
      // Bounded, so the stack cannot push the log past its limit and trap instead.
      host.error(`${message}\n${e?.stack ?? ''}`.trimEnd().slice(0, STACK_LOG_BYTES));
      throw ruleErrorValue('exception', message);
    }
    return result instanceof DecisionBuilder ? result.build() : result;
  };
}
