// Building the page from data. Everything a ticket, a rule or a receiver can say is
// attacker-controlled, so this module is the only way the console makes nodes, and it only
// ever makes text nodes from strings: no HTML is parsed from data anywhere.

const SVG = "http://www.w3.org/2000/svg";

function fill(el, props, children) {
  for (const [name, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "on") {
      for (const [event, handler] of Object.entries(value)) el.addEventListener(event, handler);
    } else if (name === "dataset") {
      Object.assign(el.dataset, value);
    } else if (name === "value" && "value" in el && el.namespaceURI !== SVG) {
      el.value = value;
    } else if (name === "checked" || name === "disabled" || name === "selected") {
      el[name] = Boolean(value);
    } else if (name.startsWith("on")) {
      throw new Error(`event handlers go in \`on\`, not ${name}`);
    } else {
      el.setAttribute(name, value === true ? "" : String(value));
    }
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** An HTML element: `h("td", {class: "due"}, "in 5 min")`. */
export function h(tag, props, ...children) {
  return fill(document.createElement(tag), props, children);
}

/** An SVG element, for the report charts. */
export function s(tag, props, ...children) {
  return fill(document.createElementNS(SVG, tag), props, children);
}

/** Replaces every child of `el`. */
export function replace(el, ...children) {
  el.replaceChildren();
  return fill(el, {}, children);
}

let fieldCount = 0;

/** A labelled form field: the label names the control, for people and screen readers. */
export function field(label, control, hint) {
  if (!control.id) control.id = `f${++fieldCount}`;
  const parts = [h("label", { for: control.id }, label), control];
  if (hint) {
    const hintId = `${control.id}-hint`;
    control.setAttribute("aria-describedby", hintId);
    parts.push(h("small", { id: hintId, class: "hint" }, hint));
  }
  return h("div", { class: "field" }, parts);
}

/** A `<select>` of `[value, label]` options. */
export function select(name, options, current) {
  return h(
    "select",
    { name },
    options.map(([value, label]) => h("option", { value, selected: value === current }, label)),
  );
}

/** A table with a caption, column heads and rows of cells (nodes or text). */
export function table(caption, heads, rows, empty = "Nothing here yet.") {
  if (rows.length === 0) return h("p", { class: "empty" }, empty);
  return h(
    "div",
    { class: "table-wrap", tabindex: "0", role: "region", "aria-label": caption },
    h(
      "table",
      {},
      h("caption", {}, caption),
      h("thead", {}, h("tr", {}, heads.map((head) => h("th", { scope: "col" }, head)))),
      h(
        "tbody",
        {},
        rows.map((cells) => {
          const row = cells instanceof Node ? cells : h("tr", {}, cells.map((c) => (c instanceof Node && c.tagName === "TD" ? c : h("td", {}, c))));
          // Each cell names its column, for the stacked layout of narrow screens.
          [...row.children].forEach((cell, i) => cell.setAttribute("data-label", heads[i] || ""));
          return row;
        }),
      ),
    ),
  );
}

/** A message box: `kind` is `error`, `ok` or `note`. Errors are announced to screen readers. */
export function notice(kind, ...text) {
  return h("p", { class: `notice ${kind}`, role: kind === "error" ? "alert" : "status" }, text);
}

/** JSON shown as text, in a block that keeps its layout. */
export function json(value) {
  return h("pre", { class: "json" }, JSON.stringify(value, null, 2));
}

/** Appends `children` to `el`, leaving out null, undefined and false. */
export function append(el, ...children) {
  return fill(el, {}, children);
}

/** Runs `run`, says how it went with `say(kind, text)`, then calls `after` if given. */
export async function attempt({ run, done, say, after }) {
  try {
    await run();
    say("ok", done);
  } catch (e) {
    say("error", e.plain || String(e));
  }
  if (after) await after();
}

/**
 * A button that runs `run` (once `ask`, if given, is confirmed), says how it went with
 * `say(kind, text)` — `done` on success, the API's error in plain words otherwise — and then
 * calls `after` (a reload of the page's data).
 */
export function action(label, { run, done, say, after, ask, danger, disabled, title }) {
  const click = async () => {
    if (ask && !confirm(ask)) return;
    await attempt({ run, done, say, after });
  };
  return h("button", { type: "button", class: danger ? "danger" : null, disabled, title, on: { click } }, label);
}
