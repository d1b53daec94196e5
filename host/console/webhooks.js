// Webhook endpoints and their deliveries: each attempt's status, the next retry, and a
// manual retry for a delivery that failed or went dead.

import { action, field, h, notice, replace, table } from "./dom.js";
import { when, words } from "./format.js";

const EVENTS = ["sla.escalation", "sla.breached", "rule.failed", "schedule.fired"];
const HOOK = "/v1/tenants/{tenant}/webhooks/{id}";

export async function render(ctx, root) {
  const status = h("div", { "aria-live": "polite" });
  const list = h("div");
  root.append(h("h1", { id: "page-title" }, "Webhooks"), status, list);
  const say = (kind, ...text) => replace(status, notice(kind, ...text));

  async function load() {
    const { webhooks } = await ctx.api("GET", "/webhooks");
    const sections = [];
    for (const hook of webhooks) sections.push(await endpoint(ctx, hook, say, load));
    replace(list, webhooks.length ? sections : h("p", { class: "empty" }, "No endpoint yet."), editor(ctx, say, load));
  }
  await load();
}

async function endpoint(ctx, hook, say, reload) {
  const { deliveries } = await ctx.api("GET", `/webhooks/${encodeURIComponent(hook.id)}/deliveries`);
  const mayRetry = ctx.can("post", `${HOOK}/deliveries/{msg}/retry`);
  const rows = deliveries.map((d) => {
    const last = d.attempts[d.attempts.length - 1];
    const outcome = last ? (last.status ? `HTTP ${last.status}` : last.error || "no answer") : "not tried yet";
    return [
      h("code", {}, d.id),
      d.event,
      h("span", { class: `badge ${d.state}` }, words(d.state)),
      `${d.attempts.length} · ${outcome}`,
      when(d.next_attempt_at),
      when(d.created_at),
      mayRetry && d.state !== "delivered"
        ? action("Retry now", {
            run: () => ctx.api("POST", `/webhooks/${encodeURIComponent(hook.id)}/deliveries/${encodeURIComponent(d.id)}/retry`),
            done: `Delivery ${d.id} is being retried now.`,
            say,
            after: reload,
          })
        : "—",
    ];
  });
  return h(
    "section",
    { class: "card", "aria-label": `Endpoint ${hook.id}` },
    h("h2", {}, hook.id),
    h("p", {}, h("code", {}, hook.url), ` · ${hook.events.join(", ")} · since ${when(hook.created_at)}`),
    ctx.can("delete", HOOK)
      ? action("Delete endpoint", {
          ask: `Delete endpoint ${hook.id}? Its pending deliveries stop.`,
          run: () => ctx.api("DELETE", `/webhooks/${encodeURIComponent(hook.id)}`),
          done: `Endpoint ${hook.id} deleted.`,
          danger: true,
          say,
          after: reload,
        })
      : null,
    table(`Deliveries to ${hook.id}, newest first`, ["Message id", "Event", "State", "Attempts · last", "Next retry", "Created", ""], rows, "No delivery yet."),
  );
}

function editor(ctx, say, reload) {
  if (!ctx.can("put", HOOK)) return null;
  const id = h("input", { name: "id", required: true, autocomplete: "off", pattern: "[a-z0-9][a-z0-9._\\-]{0,63}" });
  const url = h("input", { name: "url", type: "url", required: true, autocomplete: "off" });
  const boxes = EVENTS.map((e) => h("input", { type: "checkbox", name: "events", value: e, checked: true }));
  const rotate = h("input", { type: "checkbox", name: "rotate_secret" });
  return h(
    "form",
    {
      class: "card",
      "aria-labelledby": "hook-title",
      on: {
        submit: async (e) => {
          e.preventDefault();
          const events = boxes.filter((b) => b.checked).map((b) => b.value);
          try {
            const answer = await ctx.api("PUT", `/webhooks/${encodeURIComponent(id.value.trim())}`, {
              body: { url: url.value.trim(), events, rotate_secret: rotate.checked },
            });
            await reload();
            if (answer.secret) say("ok", "Saved. The signing secret, shown only now: ", h("code", { class: "secret" }, answer.secret));
            else say("ok", `Endpoint ${answer.id} saved.`);
          } catch (err) {
            say("error", err.plain || String(err));
          }
        },
      },
    },
    h("h2", { id: "hook-title" }, "Add or change an endpoint"),
    field("Endpoint id", id),
    field("URL", url, "Deliveries are signed as Standard Webhooks."),
    h("fieldset", {}, h("legend", {}, "Events"), EVENTS.map((e, i) => h("label", { class: "check" }, boxes[i], ` ${e}`))),
    h("label", { class: "check" }, rotate, " Make a new secret (the old one keeps signing for 24 hours)"),
    h("button", { type: "submit", class: "primary" }, "Save"),
  );
}
