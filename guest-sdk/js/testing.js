// Native test helpers for rules written with `./switchboard.js`: a `TestHost` with config,
// calendars and a captured log, and a ticket builder, so a rule's logic runs under
// `node --test` exactly as the sandbox calls it, without building a component.

import { makeHost } from './switchboard.js';

const DAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];

/**
 * A tenant calendar as `PUT …/calendars/{id}` takes it (`{timezone, hours, holidays}`),
 * evaluated minute by minute: a model of the host's calendar for tests, exact for
 * whole-minute instants.
 */
class TestCalendar {
  constructor(spec) {
    this.always = spec === '24x7';
    if (this.always) return;
    this.hours = spec.hours ?? {};
    this.holidays = new Set(spec.holidays ?? []);
    this.format = new Intl.DateTimeFormat('en-CA', {
      timeZone: spec.timezone,
      hourCycle: 'h23',
      weekday: 'short',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
    });
  }

  isOpen(seconds) {
    if (this.always) return true;
    const parts = Object.fromEntries(
      this.format.formatToParts(new Date(seconds * 1000)).map((p) => [p.type, p.value]),
    );
    const date = `${parts.year}-${parts.month}-${parts.day}`;
    if (this.holidays.has(date)) return false;
    const day = DAYS[new Date(`${date}T00:00:00Z`).getUTCDay()];
    const now = `${parts.hour}:${parts.minute}`;
    return (this.hours[day] ?? []).some(([from, to]) => from <= now && now < to);
  }

  addMinutes(start, minutes) {
    if (this.always) return start + minutes * 60;
    let t = start;
    let left = minutes;
    for (let guard = 0; left > 0; guard += 1) {
      if (guard > 60 * 24 * 366 * 2) throw new Error('calendar has no open time');
      if (this.isOpen(t)) left -= 1;
      t += 60;
    }
    return t;
  }

  minutesBetween(start, end) {
    if (end <= start) return 0;
    if (this.always) return Math.floor((end - start) / 60);
    let n = 0;
    for (let t = start; t + 60 <= end; t += 60) if (this.isOpen(t)) n += 1;
    return n;
  }
}

/** A host for native tests: config, calendars (`24x7` built in) and a captured log. */
export class TestHost {
  #config = new Map();
  #calendars = new Map([['24x7', new TestCalendar('24x7')]]);
  #log = [];

  /** Sets config `key` to `value`. */
  withConfig(key, value) {
    this.#config.set(key, value);
    return this;
  }

  /** Adds calendar `id` from its JSON spec (`{timezone, hours, holidays}`). */
  withCalendar(id, spec) {
    this.#calendars.set(id, new TestCalendar(typeof spec === 'string' ? JSON.parse(spec) : spec));
    return this;
  }

  /** The log as `level: message` lines. */
  logLines() {
    return this.#log.map(([level, message]) => `${level}: ${message}`);
  }

  /** Forgets the log. */
  clearLog() {
    this.#log = [];
  }

  #calendar(id) {
    const c = this.#calendars.get(id);
    if (!c) throw { payload: `unknown calendar ${JSON.stringify(id)}` };
    return c;
  }

  /** The host the rule sees (the same wrapper as in the sandbox). */
  host() {
    return makeHost({
      log: (level, message) => this.#log.push([level, message]),
      config: (key) => this.#config.get(key),
      addBusinessMinutes: (cal, start, minutes) =>
        BigInt(this.#calendar(cal).addMinutes(Number(start), minutes)),
      isBusinessTime: (cal, at) => this.#calendar(cal).isOpen(Number(at)),
      businessMinutesBetween: (cal, start, end) =>
        this.#calendar(cal).minutesBetween(Number(start), Number(end)),
    });
  }
}

/** Unix seconds (BigInt) of an RFC 3339 instant. */
export function parseTime(rfc3339) {
  const ms = Date.parse(rfc3339);
  if (Number.isNaN(ms)) throw new Error(`not an RFC 3339 instant: ${rfc3339}`);
  return BigInt(Math.floor(ms / 1000));
}

/**
 * A `created` event for a ticket with the host's defaults (impact and urgency 3, status
 * `new`, created 2026-03-02T09:00:00Z), changed by `overrides`: any ticket field, plus
 * `vip`, `email`, `department` for the requester and `created` as RFC 3339.
 */
export function ticketEvent(id, overrides = {}) {
  const { vip = false, email = 'user@example.com', department, created, ...rest } = overrides;
  const at = parseTime(created ?? '2026-03-02T09:00:00Z');
  const ticket = {
    id,
    subject: '',
    description: '',
    category: undefined,
    service: undefined,
    source: undefined,
    impact: 3,
    urgency: 3,
    priority: undefined,
    status: 'new',
    requester: { email, department, vip },
    tags: [],
    fields: [],
    createdAt: at,
    updatedAt: at,
    queue: undefined,
    party: undefined,
    ...rest,
  };
  return { kind: { tag: 'created' }, ticket, at };
}
