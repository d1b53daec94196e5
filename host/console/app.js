// The console's shell: sign-in, the page list, and a hash router (`#/board`,
// `#/tickets/ID`, …), so a page can be bookmarked without the key ever entering a URL.
// What a control may do is read from the API's own route table (`x-min-role` in
// /openapi.json) against the role the API reports for the key: the page hides what the key
// may not do, and the API still refuses it if asked.

import { ApiError, call, forget, keep, session, tenantPath } from "./api.js";
import { field, h, notice, replace } from "./dom.js";
import * as board from "./board.js";
import * as ticket from "./ticket.js";
import * as rules from "./rules.js";
import * as audit from "./audit.js";
import * as webhooks from "./webhooks.js";
import * as schedules from "./schedules.js";
import * as reports from "./reports.js";

const PAGES = [
  { path: "board", title: "SLA board", module: board, needs: ["get", "/v1/tenants/{tenant}/tickets"] },
  { path: "tickets", title: "Ticket", module: ticket, hidden: true, needs: ["get", "/v1/tenants/{tenant}/tickets/{id}"] },
  { path: "rules", title: "Rules", module: rules, needs: ["get", "/v1/tenants/{tenant}/rules"] },
  { path: "audit", title: "Audit log", module: audit, needs: ["get", "/v1/tenants/{tenant}/audit"] },
  { path: "webhooks", title: "Webhooks", module: webhooks, needs: ["get", "/v1/tenants/{tenant}/webhooks"] },
  { path: "schedules", title: "Schedules", module: schedules, needs: ["get", "/v1/tenants/{tenant}/schedules"] },
  { path: "reports", title: "Reports", module: reports, needs: ["get", "/v1/tenants/{tenant}/reports/sla"] },
];

const ROLES = ["viewer", "intake", "operator", "admin"];

const main = document.getElementById("main");
const nav = document.getElementById("nav");
const who = document.getElementById("who");

let state = null; // {tenant, key, me, routes}
let cleanup = null;

/** Whether the signed-in key's role may call `method template` (from the route table). */
function can(method, template) {
  const op = state?.routes?.[template]?.[method];
  const need = op?.["x-min-role"];
  if (!need) return false;
  if (need === "none") return true;
  return ROLES.indexOf(state.me.role) >= ROLES.indexOf(need);
}

async function signIn(tenant, key) {
  const me = await call("GET", tenantPath(tenant, "/me"), { key });
  const document_ = await call("GET", "/openapi.json");
  state = { tenant, key, me, routes: document_.paths };
}

function signOut(message) {
  forget();
  state = null;
  if (cleanup) cleanup();
  cleanup = null;
  nav.hidden = true;
  replace(nav);
  replace(who);
  if (location.hash && location.hash !== "#/") history.replaceState(null, "", "#/");
  showSignIn(message);
}

function showSignIn(message) {
  document.title = "Sign in · Switchboard";
  const tenant = h("input", { name: "tenant", required: true, autocomplete: "off", spellcheck: "false" });
  const key = h("input", { name: "key", type: "password", required: true, autocomplete: "off", spellcheck: "false" });
  const status = h("div", { class: "form-status" }, message ? notice("error", message) : null);
  const form = h(
    "form",
    {
      class: "card sign-in",
      "aria-labelledby": "sign-in-title",
      on: {
        submit: async (event) => {
          event.preventDefault();
          replace(status, notice("note", "Signing in…"));
          try {
            await signIn(tenant.value.trim(), key.value.trim());
            keep(state.tenant, state.key);
            key.value = "";
            showShell();
            route();
          } catch (e) {
            replace(status, notice("error", e instanceof ApiError ? e.plain : String(e)));
          }
        },
      },
    },
    h("h1", { id: "sign-in-title" }, "Sign in"),
    h("p", {}, "Use an API key of the tenant. It is kept in this tab only, and is forgotten when you sign out or close the tab."),
    field("Tenant", tenant, "The tenant's id, e.g. acme."),
    field("API key", key, "sb_… as it was given when the key was made."),
    h("button", { type: "submit", class: "primary" }, "Sign in"),
    status,
  );
  replace(main, form);
  tenant.focus();
}

function showShell() {
  nav.hidden = false;
  replace(
    nav,
    h(
      "ul",
      {},
      PAGES.filter((p) => !p.hidden && can(...p.needs)).map((p) =>
        h("li", {}, h("a", { href: `#/${p.path}`, dataset: { page: p.path } }, p.title)),
      ),
    ),
  );
  replace(
    who,
    h("span", { class: "identity" }, `${state.me.tenant_name} · ${state.me.key_name} `, h("span", { class: "role" }, state.me.role)),
    h("button", { type: "button", class: "link", on: { click: () => signOut() } }, "Sign out"),
  );
}

async function route() {
  if (!state) return;
  const hash = location.hash || "#/board";
  if (!hash.startsWith("#/")) return;
  const [name, ...rest] = hash.slice(2).split("/");
  const page = PAGES.find((p) => p.path === name) || PAGES[0];
  if (cleanup) cleanup();
  cleanup = null;
  for (const link of nav.querySelectorAll("a")) {
    if (link.dataset.page === page.path) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  document.title = `${page.title} · Switchboard`;
  const root = h("section", { class: "page", "aria-labelledby": "page-title" });
  replace(main, root);
  const ctx = {
    me: state.me,
    can,
    params: rest.map(decodeURIComponent),
    api: (method, path, options = {}) =>
      call(method, tenantPath(state.tenant, path), { ...options, key: state.key }).catch((e) => {
        if (e instanceof ApiError && e.status === 401) signOut(e.plain);
        throw e;
      }),
    go: (hash_) => {
      location.hash = hash_;
    },
  };
  try {
    const done = await page.module.render(ctx, root);
    if (typeof done === "function") cleanup = done;
  } catch (e) {
    root.append(notice("error", e instanceof ApiError ? e.plain : `The page failed: ${e.message}`));
  }
  main.focus({ preventScroll: true });
}

window.addEventListener("hashchange", route);

const saved = session();
if (saved) {
  signIn(saved.tenant, saved.key)
    .then(() => {
      showShell();
      route();
    })
    .catch((e) => signOut(e instanceof ApiError ? e.plain : String(e)));
} else {
  showSignIn();
}
