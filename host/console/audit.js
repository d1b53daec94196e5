// The audit log, newest first, filtered on the server (action, caller, target, period) and
// read a page at a time.

import { field, h, notice, replace, select, table } from "./dom.js";
import { short, when } from "./format.js";

export async function render(ctx, root) {
  const action = h("input", { name: "action", autocomplete: "off", placeholder: "rule. or rule.approve" });
  const key = h("input", { name: "key_id", autocomplete: "off", placeholder: "key id" });
  const target = h("input", { name: "target", autocomplete: "off", placeholder: "rules/3" });
  const since = h("input", { name: "since", type: "datetime-local" });
  const until = h("input", { name: "until", type: "datetime-local" });
  const order = select("order", [["newest", "Newest first"], ["oldest", "Oldest first"]], "newest");
  const form = h(
    "form",
    { class: "filters", "aria-label": "Filter the audit log" },
    field("Action starts with", action),
    field("Key id", key),
    field("Target starts with", target),
    field("From", since),
    field("Before", until),
    field("Order", order),
    h("button", { type: "submit" }, "Apply"),
  );
  const status = h("div", { "aria-live": "polite" });
  const list = h("div");
  root.append(h("h1", { id: "page-title" }, "Audit log"), form, status, list);

  let entries = [];
  let next = null;

  const params = (cursor) => {
    const q = new URLSearchParams({ order: order.value, limit: "100" });
    for (const input of [action, key, target]) if (input.value.trim()) q.set(input.name, input.value.trim());
    for (const input of [since, until]) if (input.value) q.set(input.name, new Date(input.value).toISOString());
    if (cursor) q.set("cursor", cursor);
    return q;
  };

  const draw = () =>
    replace(
      list,
      table(
        "Administrative actions",
        ["#", "When", "Who", "Action", "Target", "Module", "Detail"],
        entries.map((e) => [
          String(e.seq),
          when(e.at),
          h("code", {}, e.key_id),
          e.action,
          e.target,
          e.sha256 ? h("code", { title: e.sha256 }, short(e.sha256)) : "—",
          e.detail ? h("code", { class: "detail" }, JSON.stringify(e.detail)) : "—",
        ]),
        "No entry matches.",
      ),
      next ? h("button", { type: "button", on: { click: () => load(next) } }, "Show more") : null,
    );

  async function load(cursor) {
    try {
      const page = await ctx.api("GET", `/audit?${params(cursor)}`);
      entries = cursor ? entries.concat(page.entries) : page.entries;
      next = page.next_cursor;
      replace(status);
      draw();
    } catch (e) {
      replace(status, notice("error", e.plain || String(e)));
    }
  }

  form.addEventListener("submit", (e) => {
    e.preventDefault();
    load(null);
  });
  await load(null);
}
