// One ticket: where the rule sent it and why, what the rule cost, and a timeline of
// everything that happened to its clocks — events, pauses, handoffs, escalations fired and
// still to come, breaches.

import { append, h, json, notice, table } from "./dom.js";
import { duration, party, when, words } from "./format.js";

/** What an event did, in words; `paused` is the tenant's list of statuses that pause clocks. */
function eventItem(e, paused, previous) {
  const by = ` (by ${e.by})`;
  switch (e.type) {
    case "status": {
      const status = e.detail?.status;
      if (paused.has(status)) return { kind: "paused", text: `Clocks paused: status ${status}${by}` };
      if (paused.has(previous)) return { kind: "resumed", text: `Clocks resumed: status ${status}${by}` };
      return { kind: "status", text: `Status ${status}${by}` };
    }
    case "responded":
      return { kind: "responded", text: `First response${by}` };
    case "priority":
      return { kind: "priority", text: `Priority set to ${e.detail?.priority}; targets recomputed${by}` };
    case "resolved":
      return { kind: "resolved", text: `Resolved${by}` };
    case "reopened":
      return { kind: "reopened", text: `Reopened: a new resolution run starts${by}` };
    case "updated": {
      const changed = (e.detail?.changed || []).map((c) => c.field || c).join(", ");
      return { kind: "updated", text: `Updated${changed ? `: ${changed}` : ""}${by}` };
    }
    default:
      return { kind: e.type, text: `${words(e.type)}${e.detail ? ` ${JSON.stringify(e.detail)}` : ""}${by}` };
  }
}

/** Every dated thing of the ticket, oldest first; pending escalations last, by instant. */
export function timeline(view, pausedStatuses) {
  const paused = new Set(pausedStatuses);
  const items = [{ at: view.ticket.created_at, kind: "created", text: `Created; routed to ${view.decision.queue} (${party(view.decision.party)})` }];
  let status = "new";
  for (const e of view.events) {
    // Handoffs are listed from the ticket's own record of them, below.
    if (e.type === "assigned") continue;
    items.push({ at: e.at, ...eventItem(e, paused, status) });
    if (e.type === "status") status = e.detail?.status;
  }
  for (const hand of view.handoffs) {
    items.push({
      at: hand.at,
      kind: "handoff",
      text: `Handed off from ${party(hand.from.party)} / ${hand.from.queue} to ${party(hand.to.party)} / ${hand.to.queue} (by ${hand.by})`,
    });
  }
  for (const clock of view.sla) {
    if (clock.breached_at) {
      const holder = clock.breached_with ? `, held by ${party(clock.breached_with)}` : "";
      items.push({ at: clock.breached_at, kind: "breached", text: `${words(clock.metric)} target breached${holder}` });
    }
  }
  for (const step of view.escalations.fired) {
    items.push({ at: step.fired_at || step.at, kind: "escalation", text: `Escalation “${step.label}” fired (${words(step.metric)}, notify ${step.notify})` });
  }
  const done = items.sort((a, b) => Date.parse(a.at) - Date.parse(b.at));
  const pending = view.escalations.pending
    .filter((step) => step.at)
    .sort((a, b) => Date.parse(a.at) - Date.parse(b.at))
    .map((step) => ({ at: step.at, kind: "pending", text: `Escalation “${step.label}” pending (${words(step.metric)}, notify ${step.notify})` }));
  return done.concat(pending);
}

export async function render(ctx, root) {
  const id = ctx.params[0];
  append(root, h("p", {}, h("a", { href: "#/board" }, "← SLA board")));
  const [view, settings] = await Promise.all([ctx.api("GET", `/tickets/${encodeURIComponent(id)}`), ctx.api("GET", "/settings")]);
  const t = view.ticket;
  const d = view.decision;
  const rule = view.rule;
  append(root, 
    h("h1", { id: "page-title" }, h("span", { class: "ticket-id" }, t.id), " ", h("span", { class: "subject" }, t.subject)),
    h(
      "dl",
      { class: "facts" },
      fact("Status", t.status),
      fact("Requester", [t.requester?.email, t.requester?.department, t.requester?.vip ? "VIP" : null].filter(Boolean).join(" · ") || "—"),
      fact("Impact / urgency", `${t.impact} / ${t.urgency}`),
      fact("Created", when(t.created_at)),
      fact("Tags", (t.tags || []).join(", ") || "—"),
    ),
    t.description ? h("div", { class: "description" }, h("h2", {}, "Description"), h("p", { class: "text" }, t.description)) : null,
    h(
      "section",
      { class: "card", "aria-labelledby": "decision-title" },
      h("h2", { id: "decision-title" }, "Decision"),
      h(
        "dl",
        { class: "facts" },
        fact("Queue", d.queue),
        fact("Party", party(d.party)),
        fact("Tier", String(d.tier)),
        fact("Priority", d.priority),
        fact("Tags", (d.tags || []).join(", ") || "—"),
        fact("Reason", h("span", { class: "reason" }, d.reason || "—")),
      ),
      h(
        "dl",
        { class: "facts" },
        fact("Rule version", rule.version ? `v${rule.version}` : "none (fallback)"),
        fact("Fuel", rule.fuel.toLocaleString()),
        fact("Fallback", rule.fallback ? "yes: the tenant's fallback decision applied" : "no"),
        rule.error ? fact("Rule error", h("span", { class: "rule-error" }, `${rule.error.kind}: ${rule.error.message}`)) : null,
      ),
    ),
    h(
      "section",
      { class: "card", "aria-labelledby": "clocks-title" },
      h("h2", { id: "clocks-title" }, "SLA clocks"),
      view.sla_error ? notice("error", `The clocks cannot be read: ${view.sla_error}`) : null,
      table(
        "SLA clocks",
        ["Metric", "State", "Due", "Target", "Elapsed (business)", "Held by MSP / internal / vendor", "Breached with"],
        view.sla.map((c) => [
          words(c.metric),
          h("span", { class: `badge ${c.state}` }, words(c.state)),
          when(c.due),
          duration(c.minutes * 60),
          `${duration(c.elapsed_secs)} (${Math.round(c.percent_elapsed)}%)`,
          `${duration(c.with_party.msp)} / ${duration(c.with_party.internal)} / ${duration(c.with_party.vendor)}`,
          c.breached_with ? party(c.breached_with) : "—",
        ]),
        "This ticket has no SLA clock.",
      ),
    ),
    h(
      "section",
      { class: "card", "aria-labelledby": "timeline-title" },
      h("h2", { id: "timeline-title" }, "Timeline"),
      view.escalations.error ? notice("error", `The escalation plan cannot be read: ${view.escalations.error}`) : null,
      h(
        "ol",
        { class: "timeline" },
        timeline(view, settings.paused_statuses).map((item) =>
          h("li", { class: `event ${item.kind}` }, h("time", { datetime: item.at }, when(item.at)), h("span", { class: "kind" }, words(item.kind)), h("span", { class: "what" }, item.text)),
        ),
      ),
    ),
    h("details", {}, h("summary", {}, "Fields and raw record"), json(view)),
  );
}

function fact(label, value) {
  return [h("dt", {}, label), h("dd", {}, value)];
}
