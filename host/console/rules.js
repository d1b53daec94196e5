// Rule versions and their governance: who uploaded and approved each, what a version would
// do (a dry run on pasted tickets, a replay over stored history), and the approve, activate
// and roll-back steps, shown only to a role that may take them. Under four-eyes the page
// says which step waits for whom; the API decides.

import { attempt, field, h, json, notice, replace, select, table } from "./dom.js";
import { short, when, words } from "./format.js";

const SAMPLE = JSON.stringify(
  {
    tickets: [
      {
        id: "DRY-1",
        subject: "VPN down for the finance team",
        impact: 1,
        urgency: 2,
        category: "network",
        requester: { email: "cfo@example.com", department: "finance", vip: true },
      },
    ],
  },
  null,
  2,
);

const RULE = "/v1/tenants/{tenant}/rules/{version}";

export async function render(ctx, root) {
  const status = h("div", { class: "form-status", "aria-live": "polite" });
  const list = h("div");
  const tools = h("div", { class: "tools" });
  root.append(h("h1", { id: "page-title" }, "Rules"), guidance(ctx), status, list, tools);

  const say = (kind, text) => replace(status, notice(kind, text));
  const act = (done, run) => attempt({ run, done, say, after: load });

  let poll = null;
  async function load() {
    const answer = await ctx.api("GET", "/rules");
    const names = await keyNames(ctx);
    const rows = answer.rules
      .slice()
      .reverse()
      .map((r) => row(ctx, r, answer.active, act, names));
    replace(
      list,
      table("Rule versions, newest first", ["Version", "Status", "Uploaded", "Approved", "Module", "Actions"], rows, "No rule version has been uploaded yet."),
      ctx.can("post", "/v1/tenants/{tenant}/rules/rollback") && answer.active
        ? h("button", { type: "button", on: { click: () => act("Rolled back to the previously active version.", () => ctx.api("POST", "/rules/rollback")) } }, "Roll back to the previous version")
        : null,
    );
    replace(tools, upload(ctx, act), dryRun(ctx, answer.rules), replay(ctx, answer.rules));
    clearTimeout(poll);
    if (answer.rules.some((r) => r.status === "compiling")) poll = setTimeout(() => load().catch(() => {}), 1000);
  }
  await load();
  return () => clearTimeout(poll);
}

function guidance(ctx) {
  const { role, four_eyes: fourEyes } = ctx.me;
  const parts = [`You are signed in as ${role}. `];
  if (ctx.can("post", "/v1/tenants/{tenant}/rules")) parts.push("You may upload versions, dry-run them and replay them over stored tickets. ");
  if (ctx.can("post", `${RULE}/approve`)) parts.push("You may approve, activate and roll back. ");
  else parts.push("Approving and activating a version needs an admin of internal IT. ");
  parts.push(
    fourEyes
      ? "Four-eyes approval is on: a version must be approved by an admin other than the one who uploaded it, and only an approved version can be activated."
      : "Four-eyes approval is off: any admin may approve and activate any version.",
  );
  return notice("note", parts.join(""));
}

/** Key names by id, when the role may list keys (admins); otherwise ids are shown. */
async function keyNames(ctx) {
  if (!ctx.can("get", "/v1/tenants/{tenant}/keys")) return {};
  const { keys } = await ctx.api("GET", "/keys");
  return Object.fromEntries(keys.map((k) => [k.id, k.name]));
}

function person(ctx, names, id) {
  if (!id) return "—";
  const name = id === ctx.me.key_id ? "you" : names[id] || id;
  return h("span", { title: `key ${id}` }, name);
}

function row(ctx, r, active, act, names) {
  const status = r.version === active ? "active" : r.status;
  const actions = [];
  const v = r.version;
  const mine = r.uploaded_by === ctx.me.key_id;
  if (ctx.can("post", `${RULE}/approve`) && r.status === "uploaded") {
    const blocked = ctx.me.four_eyes && mine;
    actions.push(
      h(
        "button",
        {
          type: "button",
          disabled: blocked,
          title: blocked ? "Four-eyes: you uploaded this version, so another admin must approve it." : null,
          on: { click: () => act(`Version ${v} approved.`, () => ctx.api("POST", `/rules/${v}/approve`)) },
        },
        `Approve v${v}`,
      ),
    );
    if (blocked) actions.push(h("small", { class: "hint" }, "You uploaded it: another admin approves."));
  }
  const activatable = r.status === "approved" || (!ctx.me.four_eyes && r.status === "uploaded") || (r.status === "retired" && r.approved_by);
  if (ctx.can("post", `${RULE}/activate`) && activatable && v !== active) {
    actions.push(h("button", { type: "button", class: "primary", on: { click: () => act(`Version ${v} is active.`, () => ctx.api("POST", `/rules/${v}/activate`)) } }, `Activate v${v}`));
  }
  return [
    h("td", {}, `v${v}`),
    h("td", {}, h("span", { class: `badge ${status}` }, words(status)), r.error ? h("div", { class: "rule-error" }, `${r.error.code}: ${r.error.message}`) : null),
    h("td", {}, person(ctx, names, r.uploaded_by), ` · ${when(r.uploaded_at)}`),
    h("td", {}, r.approved_by ? [person(ctx, names, r.approved_by), ` · ${when(r.approved_at)}`] : "—"),
    h("td", {}, h("code", { title: r.sha256 }, short(r.sha256)), ` ${(r.size / 1024).toFixed(0)} KiB · ${r.toolchain?.language || r.toolchain || ""}`),
    h("td", { class: "actions" }, actions.length ? actions : "—"),
  ].map((c) => (c.tagName === "TD" ? c : h("td", {}, c)));
}

function upload(ctx, act) {
  if (!ctx.can("post", "/v1/tenants/{tenant}/rules")) return null;
  const file = h("input", { type: "file", name: "module", accept: ".wasm,application/wasm", required: true });
  return h(
    "form",
    {
      class: "card",
      "aria-labelledby": "upload-title",
      on: {
        submit: (e) => {
          e.preventDefault();
          const chosen = file.files[0];
          if (!chosen) return;
          act(`Uploaded ${chosen.name}; it is checked and compiled before it can be approved.`, () =>
            ctx.api("POST", "/rules", { body: chosen, type: "application/wasm" }),
          );
        },
      },
    },
    h("h2", { id: "upload-title" }, "Upload a version"),
    field("Rule module (.wasm component)", file, "Built from Rust, JavaScript or Python with the SDK."),
    h("button", { type: "submit", class: "primary" }, "Upload"),
  );
}

function versionChoice(rules) {
  const usable = rules.filter((r) => r.status !== "compiling" && r.status !== "failed").reverse();
  return select("version", usable.map((r) => [String(r.version), `v${r.version} (${words(r.status)})`]), usable[0] ? String(usable[0].version) : "");
}

function dryRun(ctx, rules) {
  if (!ctx.can("post", `${RULE}/test`)) return null;
  const version = versionChoice(rules);
  const input = h("textarea", { name: "tickets", rows: "10", spellcheck: "false" });
  input.value = SAMPLE;
  const out = h("div", { "aria-live": "polite" });
  return h(
    "form",
    {
      class: "card",
      "aria-labelledby": "dry-title",
      on: {
        submit: async (e) => {
          e.preventDefault();
          let body;
          try {
            body = JSON.parse(input.value);
          } catch (err) {
            replace(out, notice("error", `The tickets are not JSON: ${err.message}`));
            return;
          }
          try {
            const answer = await ctx.api("POST", `/rules/${version.value}/test`, { body });
            replace(out, answer.results.map(result));
          } catch (err) {
            replace(out, notice("error", err.plain || String(err)));
          }
        },
      },
    },
    h("h2", { id: "dry-title" }, "Dry run"),
    h("p", {}, "Runs a version on tickets you paste. Nothing is stored."),
    field("Version", version),
    field("Tickets (JSON: {\"tickets\": [...]})", input),
    h("button", { type: "submit" }, "Run"),
    out,
  );
}

function result(r) {
  return h(
    "div",
    { class: "result" },
    h("h3", {}, `Ticket ${r.ticket ?? ""}`),
    r.error ? notice("error", `${r.error.kind}: ${r.error.message}`) : null,
    r.decision ? h("p", { class: "reason" }, `→ ${r.decision.queue} (${r.decision.party}), ${r.decision.priority}: ${r.decision.reason}`) : null,
    h("p", {}, `Fuel ${Number(r.fuel || 0).toLocaleString()}`),
    r.omitted ? notice("note", `${r.omitted} (outcome: ${r.outcome}).`) : null,
    r.log && r.log.length ? h("pre", { class: "log" }, r.log.map((line) => `${line.level}: ${line.message}`).join("\n")) : null,
    r.log_omitted ? h("p", { class: "hint" }, `${r.log_omitted} log lines left out: the answer reached its size limit.`) : null,
    r.decision ? h("details", {}, h("summary", {}, "Decision"), json(r.decision)) : null,
  );
}

function replay(ctx, rules) {
  if (!ctx.can("post", `${RULE}/replay`)) return null;
  const version = versionChoice(rules);
  const against = h("input", { name: "against", value: "active", autocomplete: "off" });
  const limit = h("input", { name: "limit", type: "number", min: "1", max: "10000", value: "1000" });
  const out = h("div", { "aria-live": "polite" });
  return h(
    "form",
    {
      class: "card",
      "aria-labelledby": "replay-title",
      on: {
        submit: async (e) => {
          e.preventDefault();
          replace(out, notice("note", "Replaying…"));
          const versionOrName = /^\d+$/.test(against.value.trim()) ? Number(against.value.trim()) : against.value.trim();
          try {
            const answer = await ctx.api("POST", `/rules/${version.value}/replay`, { body: { against: versionOrName, limit: Number(limit.value) } });
            replace(out, diff(answer));
          } catch (err) {
            replace(out, notice("error", err.plain || String(err)));
          }
        },
      },
    },
    h("h2", { id: "replay-title" }, "Replay over stored tickets"),
    h("p", {}, "Evaluates a version on the stored history and compares it with another. Nothing about the tickets changes."),
    field("Candidate version", version),
    field("Against", against, "active, stored (what each ticket got), or a version number."),
    field("Most tickets", limit),
    h("button", { type: "submit" }, "Replay"),
    out,
  );
}

function diff(a) {
  const fields = Object.entries(a.fields || {});
  const errors = Object.entries(a.errors?.candidate || {});
  const fuel = (side) => (side ? `p50 ${side.p50.toLocaleString()}, p99 ${side.p99.toLocaleString()}` : "—");
  const facts = [
    ["Evaluated", "evaluated", a.evaluated],
    ["Unchanged", "unchanged", a.unchanged],
    ["Changed", "changed", a.changed],
    ["Failed (candidate)", "failed", a.failed?.candidate],
    ["Failed (compared with)", "failed-against", a.failed?.against],
    ["Skipped", "skipped", a.skipped],
  ];
  return h(
    "div",
    { class: "replay" },
    a.complete === false ? notice("note", `Stopped early: ${a.stopped || "the time budget ran out"}. The counts cover what was evaluated.`) : null,
    h("p", {}, `v${a.candidate} against ${a.against}${a.against_version ? ` (v${a.against_version})` : ""}, replay ${a.replay_id}`),
    h(
      "dl",
      { class: "facts" },
      facts.map(([label, key, v]) => [h("dt", {}, label), h("dd", { dataset: { count: key } }, String(v ?? 0))]),
      h("dt", {}, "Fuel (candidate / compared with)"),
      h("dd", {}, `${fuel(a.fuel?.candidate)} / ${fuel(a.fuel?.against)}`),
    ),
    table("Changed tickets by field", ["Field", "Tickets changed"], fields.map(([k, v]) => [k, String(v)]), "No field changed."),
    errors.length ? table("The candidate's errors", ["Code", "Tickets"], errors.map(([k, v]) => [k, String(v)])) : null,
    (a.samples || []).map((sample) =>
      h(
        "details",
        { class: "sample" },
        h("summary", {}, `Ticket ${sample.ticket}: ${(sample.changed || []).join(", ") || "changed"}`),
        h("div", { class: "before-after" }, h("div", {}, h("h4", {}, "Before"), json(sample.before)), h("div", {}, h("h4", {}, "After"), json(sample.after))),
      ),
    ),
  );
}
