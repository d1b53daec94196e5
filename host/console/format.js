// How times, durations and names read on the page.

/** `3d 4h`, `2h 05m`, `12m`, `40s`: the two largest units of `secs` (sign dropped). */
export function duration(secs) {
  let s = Math.abs(Math.round(secs));
  const d = Math.floor(s / 86400);
  s -= d * 86400;
  const hr = Math.floor(s / 3600);
  s -= hr * 3600;
  const m = Math.floor(s / 60);
  s -= m * 60;
  if (d > 0) return `${d}d ${hr}h`;
  if (hr > 0) return `${hr}h ${String(m).padStart(2, "0")}m`;
  if (m > 0) return `${m}m ${String(s).padStart(2, "0")}s`;
  return `${s}s`;
}

/** `due in 2h 05m` or `overdue 12m 03s`, from the wall-clock time left until `due`. */
export function countdown(due, now = Date.now()) {
  if (!due) return "paused";
  const left = (Date.parse(due) - now) / 1000;
  return left >= 0 ? `due in ${duration(left)}` : `overdue ${duration(left)}`;
}

/** A local date and time, to the minute, with the zone. */
export function when(rfc3339) {
  if (!rfc3339) return "—";
  return new Date(rfc3339).toLocaleString(undefined, {
    dateStyle: "medium",
    timeStyle: "short",
  });
}

/** A date as `YYYY-MM-DD` in local time. */
export function isoDate(date) {
  const p = (n) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${p(date.getMonth() + 1)}-${p(date.getDate())}`;
}

const PARTIES = { msp: "MSP", internal: "Internal IT", vendor: "Vendor" };

/** A party's display name. */
export function party(name) {
  return PARTIES[name] || name;
}

/** A standing's or state's display name: `at_risk` → `at risk`. */
export function words(name) {
  return String(name).replaceAll("_", " ");
}

/** The first 12 hex digits of a sha256. */
export function short(sha) {
  return sha ? sha.slice(0, 12) : "—";
}
