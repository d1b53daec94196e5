// Service-review reports: compliance per party week by week (one report per week, drawn as
// a line chart), met against breached for the whole period, the rows themselves, and the
// period as CSV — all from the aggregate reports API, all drawn here.

import { field, h, notice, replace, select, table } from "./dom.js";
import { barChart, lineChart } from "./chart.js";
import { duration, isoDate, party } from "./format.js";

const DAY = 86400000;
const MOST_WEEKS = 26;
const PARTIES = ["msp", "internal", "vendor"];

export async function render(ctx, root) {
  const today = new Date();
  const from = h("input", { name: "from", type: "date", required: true, value: isoDate(new Date(today - 83 * DAY)) });
  const to = h("input", { name: "to", type: "date", required: true, value: isoDate(today) });
  const zone = h("input", { name: "tz", autocomplete: "off", value: Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC" });
  const group = select(
    "group_by",
    [["party", "Party"], ["party,queue", "Party and queue"], ["queue", "Queue"], ["priority", "Priority"], ["metric", "Metric"], ["calendar", "Calendar"], ["", "Totals only"]],
    "party",
  );
  const form = h(
    "form",
    { class: "filters", "aria-label": "Report period" },
    field("From", from),
    field("To (included)", to),
    field("Time zone", zone),
    field("Group by", group),
    h("button", { type: "submit" }, "Show"),
    h("button", { type: "button", on: { click: () => download() } }, "Download CSV"),
  );
  const status = h("div", { "aria-live": "polite" });
  const out = h("div", { class: "report" });
  root.append(h("h1", { id: "page-title" }, "Reports"), form, status, out);

  const params = (extra) => new URLSearchParams({ from: from.value, to: to.value, tz: zone.value.trim() || "UTC", group_by: group.value, ...extra });

  async function download() {
    try {
      const response = await ctx.api("GET", `/reports/sla?${params()}`, { accept: "text/csv" });
      const blob = await response.blob();
      const link = h("a", { href: URL.createObjectURL(blob), download: `switchboard-sla-${from.value}-${to.value}.csv` });
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(link.href), 10000);
      replace(status, notice("ok", "The CSV was downloaded."));
    } catch (e) {
      replace(status, notice("error", e.plain || String(e)));
    }
  }

  async function load() {
    replace(status, notice("note", "Loading…"));
    try {
      const report = await ctx.api("GET", `/reports/sla?${params()}`);
      const weeks = await weekly(ctx, from.value, to.value, zone.value.trim() || "UTC");
      replace(status);
      replace(out, charts(report, weeks), rowsTable(report));
    } catch (e) {
      replace(status, notice("error", e.plain || String(e)));
    }
  }

  form.addEventListener("submit", (e) => {
    e.preventDefault();
    load();
  });
  await load();
}

/** One report per week of the period (the last weeks when it is longer than 26). */
async function weekly(ctx, from, to, tz) {
  const end = Date.parse(`${to}T00:00:00Z`);
  let start = Date.parse(`${from}T00:00:00Z`);
  if (end - start > MOST_WEEKS * 7 * DAY) start = end - (MOST_WEEKS * 7 - 1) * DAY;
  const spans = [];
  for (let a = start; a <= end; a += 7 * DAY) {
    const b = Math.min(a + 6 * DAY, end);
    spans.push([new Date(a).toISOString().slice(0, 10), new Date(b).toISOString().slice(0, 10)]);
  }
  const reports = await Promise.all(
    spans.map(([a, b]) => ctx.api("GET", `/reports/sla?${new URLSearchParams({ from: a, to: b, tz, group_by: "party" })}`)),
  );
  return spans.map(([a], i) => ({ label: a.slice(5), rows: reports[i].rows }));
}

function charts(report, weeks) {
  const present = PARTIES.filter((p) => weeks.some((w) => w.rows.some((r) => r.party === p)) || report.rows.some((r) => r.party === p));
  const lines = present.map((p) => ({
    name: party(p),
    values: weeks.map((w) => w.rows.find((r) => r.party === p)?.compliance_percent ?? null),
  }));
  const byParty = PARTIES.map((p) => report.rows.filter((r) => r.party === p)).filter((rows) => rows.length);
  const sum = (rows, key) => rows.reduce((n, r) => n + (r[key] || 0), 0);
  return h(
    "div",
    { class: "charts" },
    h(
      "figure",
      {},
      lineChart("Compliance per party, week by week (percent of clocks met)", weeks.map((w) => w.label), lines),
      h("figcaption", {}, "Compliance per party by week of creation; a gap is a week with no clock ended."),
    ),
    h(
      "figure",
      {},
      barChart(
        "Targets met and breached per party over the period",
        byParty.map((rows) => party(rows[0].party)),
        [
          { name: "Met", values: byParty.map((rows) => sum(rows, "met")) },
          { name: "Breached", values: byParty.map((rows) => sum(rows, "breached")) },
        ],
      ),
      h("figcaption", {}, "Targets met and breached, by the party holding the ticket."),
    ),
    table(
      "Compliance per party by week",
      ["Week from", ...lines.map((l) => l.name)],
      weeks.map((w, i) => [w.label, ...lines.map((l) => (l.values[i] === null ? "—" : `${l.values[i]}%`))]),
      "No ticket in the period.",
    ),
  );
}

function rowsTable(report) {
  const keys = report.group_by || [];
  const secs = (v) => (v === null || v === undefined ? "—" : duration(v));
  return table(
    `SLA report ${report.from} to ${report.to} (${report.tz})`,
    [...keys.map((k) => k), "Tickets", "Resolved", "Met", "Breached", "Running", "Compliance", "First response p50 / p90", "Resolution p50 / p90", "Escalations", "Handoffs"],
    report.rows.map((r) => [
      ...keys.map((k) => (k === "party" ? party(r[k]) : String(r[k] ?? "—"))),
      String(r.tickets),
      String(r.resolved),
      String(r.met),
      String(r.breached),
      String(r.running),
      r.compliance_percent === null ? "—" : `${r.compliance_percent}%`,
      `${secs(r.first_response_p50_secs)} / ${secs(r.first_response_p90_secs)}`,
      `${secs(r.resolution_p50_secs)} / ${secs(r.resolution_p90_secs)}`,
      String(r.escalations),
      String(r.handoffs),
    ]),
    "No ticket was created in the period.",
  );
}
