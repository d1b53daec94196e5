// The SLA board: open tickets, breached first, then at risk, then by due, with live
// countdowns. It reloads itself every 15 s; the countdowns tick every second between loads.

import { h, field, notice, replace, select, table } from "./dom.js";
import { countdown, party, words } from "./format.js";

const REFRESH_MS = 15000;
const RANK = { breached: 0, at_risk: 1, running: 2, paused: 3 };
const OPEN = new Set(["running", "paused", "breached"]);

/** The ticket's standing: its worst open clock, as the board's `sla=` filter reads it. */
export function standing(ticket, atRiskPercent) {
  const open = ticket.sla.filter((c) => OPEN.has(c.state));
  if (open.some((c) => c.state === "breached")) return "breached";
  if (open.some((c) => c.state === "running" && c.percent_elapsed >= atRiskPercent)) return "at_risk";
  if (open.length > 0 && open.every((c) => c.state === "paused")) return "paused";
  return "running";
}

/** The open clock that is due first (the one the countdown shows). */
function firstDue(ticket) {
  const open = ticket.sla.filter((c) => OPEN.has(c.state));
  const running = open.filter((c) => c.due).sort((a, b) => Date.parse(a.due) - Date.parse(b.due));
  return running[0] || open[0];
}

export async function render(ctx, root) {
  const settings = await ctx.api("GET", "/settings");
  const atRisk = settings.at_risk_percent;
  const form = h("form", { class: "filters", "aria-label": "Filter the board" });
  const partySelect = select("party", [["", "Any party"], ["msp", "MSP"], ["internal", "Internal IT"], ["vendor", "Vendor"]], "");
  const standingSelect = select(
    "sla",
    [["", "Any standing"], ["breached", "Breached"], ["at_risk", "At risk"], ["running", "Running"], ["paused", "Paused"]],
    "",
  );
  const queueInput = h("input", { name: "queue", type: "search", autocomplete: "off", placeholder: "e.g. service-desk" });
  form.append(
    field("Party", partySelect),
    field("Queue", queueInput),
    field("Standing", standingSelect),
    h("button", { type: "submit" }, "Apply"),
  );
  const status = h("p", { class: "updated", role: "status", "aria-live": "polite" });
  const list = h("div", { class: "board" });
  root.append(h("h1", { id: "page-title" }, "SLA board"), form, status, list);

  let tickets = [];
  let next = null;
  let timer = null;

  const rows = () =>
    tickets
      .map((t) => ({ t, standing: standing(t, atRisk), clock: firstDue(t) }))
      .sort((a, b) => RANK[a.standing] - RANK[b.standing] || dueOf(a) - dueOf(b))
      .map(({ t, standing: st, clock }) =>
        h(
          "tr",
          { class: `standing-${st}`, dataset: { ticket: t.id } },
          h("td", {}, h("span", { class: `badge ${st}` }, words(st))),
          h(
            "td",
            { class: "ticket" },
            h("div", {}, h("a", { href: `#/tickets/${encodeURIComponent(t.id)}` }, t.id), h("span", { class: "subject" }, t.subject)),
          ),
          h("td", {}, t.decision.queue),
          h("td", {}, party(t.decision.party)),
          h("td", {}, t.decision.priority),
          h("td", {}, clock ? words(clock.metric) : "—"),
          h("td", { class: "countdown", dataset: { due: clock?.due || "" } }, countdown(clock?.due)),
          h("td", {}, t.rule.fallback ? h("span", { class: "badge breached" }, "fallback") : `v${t.rule.version ?? "—"}`),
        ),
      );

  const draw = () => {
    replace(
      list,
      table("Open tickets, breached first", ["Standing", "Ticket", "Queue", "Party", "Priority", "Clock", "Due", "Rule"], rows(), "No open ticket matches."),
      next ? h("button", { type: "button", on: { click: more } }, "Show more") : null,
    );
  };

  const params = () => {
    const q = new URLSearchParams({ limit: "200" });
    if (partySelect.value) q.set("party", partySelect.value);
    if (queueInput.value.trim()) q.set("queue", queueInput.value.trim());
    if (standingSelect.value) q.set("sla", standingSelect.value);
    return q;
  };

  async function load() {
    try {
      const page = await ctx.api("GET", `/tickets?${params()}`);
      tickets = page.tickets;
      next = page.next_cursor;
      draw();
      replace(status, `Updated ${new Date().toLocaleTimeString()} · ${tickets.length}${next ? "+" : ""} open`);
    } catch (e) {
      replace(status, notice("error", e.plain || String(e)));
    }
  }

  async function more() {
    const q = params();
    q.set("cursor", next);
    try {
      const page = await ctx.api("GET", `/tickets?${q}`);
      tickets = tickets.concat(page.tickets);
      next = page.next_cursor;
      draw();
    } catch (e) {
      replace(status, notice("error", e.plain || String(e)));
    }
  }

  form.addEventListener("submit", (e) => {
    e.preventDefault();
    load();
  });
  for (const control of [partySelect, standingSelect]) control.addEventListener("change", load);

  await load();
  const refresh = setInterval(load, REFRESH_MS);
  timer = setInterval(() => {
    for (const cell of list.querySelectorAll("td.countdown")) cell.textContent = countdown(cell.dataset.due);
  }, 1000);
  return () => {
    clearInterval(refresh);
    clearInterval(timer);
  };
}

function dueOf(row) {
  return row.clock?.due ? Date.parse(row.clock.due) : Infinity;
}
