// Cron schedules: what fires when, in which time zone, and when it last fired.

import { action, field, h, notice, replace, select, table } from "./dom.js";
import { when } from "./format.js";

const SCHEDULE = "/v1/tenants/{tenant}/schedules/{id}";

export async function render(ctx, root) {
  const status = h("div", { "aria-live": "polite" });
  const list = h("div");
  root.append(h("h1", { id: "page-title" }, "Schedules"), status, list);
  const say = (kind, text) => replace(status, notice(kind, text));
  const mayDelete = ctx.can("delete", SCHEDULE);

  async function load() {
    const { schedules } = await ctx.api("GET", "/schedules");
    const rows = schedules.map((sc) => [
      sc.id,
      h("code", {}, sc.cron),
      sc.timezone,
      sc.event,
      sc.enabled ? "on" : "off",
      sc.next_local || when(sc.next),
      when(sc.last_fired_at),
      mayDelete
        ? action("Delete", {
            ask: `Delete schedule ${sc.id}?`,
            run: () => ctx.api("DELETE", `/schedules/${encodeURIComponent(sc.id)}`),
            done: `Schedule ${sc.id} deleted.`,
            danger: true,
            say,
            after: load,
          })
        : "—",
    ]);
    replace(list, table("Schedules", ["Id", "Cron", "Time zone", "Event", "Enabled", "Next", "Last fired", ""], rows, "No schedule yet."), editor(ctx, say, load));
  }
  await load();
}

function editor(ctx, say, reload) {
  if (!ctx.can("put", SCHEDULE)) return null;
  const id = h("input", { name: "id", required: true, autocomplete: "off" });
  const cron = h("input", { name: "cron", required: true, autocomplete: "off", value: "0 0 8 * * Mon-Fri" });
  const zone = h("input", { name: "timezone", required: true, autocomplete: "off", value: Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC" });
  const event = select("event", [["sla.digest", "sla.digest: at-risk and breached tickets per party"], ["heartbeat", "heartbeat"]], "sla.digest");
  const enabled = h("input", { type: "checkbox", name: "enabled", checked: true });
  return h(
    "form",
    {
      class: "card",
      "aria-labelledby": "schedule-title",
      on: {
        submit: async (e) => {
          e.preventDefault();
          try {
            await ctx.api("PUT", `/schedules/${encodeURIComponent(id.value.trim())}`, {
              body: { cron: cron.value.trim(), timezone: zone.value.trim(), event: event.value, enabled: enabled.checked },
            });
            say("ok", `Schedule ${id.value.trim()} saved.`);
          } catch (err) {
            say("error", err.plain || String(err));
          }
          await reload();
        },
      },
    },
    h("h2", { id: "schedule-title" }, "Add or change a schedule"),
    field("Schedule id", id),
    field("Cron", cron, "Seconds, minutes, hours, day of month, month, day of week: 0 0 8 * * Mon-Fri is weekdays at 08:00."),
    field("Time zone", zone, "An IANA name, e.g. America/New_York."),
    field("Event", event),
    h("label", { class: "check" }, enabled, " Enabled"),
    h("button", { type: "submit", class: "primary" }, "Save"),
  );
}
