// Small SVG charts drawn here, from the data, with no library and nothing fetched: a line
// chart of a percentage over periods and a grouped bar chart. Colours come from the style
// sheet (`.series-N`), so the charts follow the page's theme and need no inline style.

import { s } from "./dom.js";

const W = 640;
const H = 260;
const PAD = { left: 44, right: 12, top: 12, bottom: 40 };

function frame(label) {
  return s("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart", role: "img", "aria-label": label }, s("title", {}, label));
}

function yAxis(svg, max, unit) {
  const inner = H - PAD.top - PAD.bottom;
  for (let i = 0; i <= 4; i++) {
    const value = (max * i) / 4;
    const y = PAD.top + inner - (inner * i) / 4;
    svg.append(
      s("line", { x1: PAD.left, x2: W - PAD.right, y1: y, y2: y, class: "grid" }),
      s("text", { x: PAD.left - 6, y: y + 4, class: "tick", "text-anchor": "end" }, `${Math.round(value)}${unit}`),
    );
  }
}

function xLabels(svg, labels, x) {
  const every = Math.max(1, Math.ceil(labels.length / 8));
  labels.forEach((label, i) => {
    if (i % every === 0) svg.append(s("text", { x: x(i), y: H - PAD.bottom + 18, class: "tick", "text-anchor": "middle" }, label));
  });
}

function legend(svg, names) {
  names.forEach((name, i) => {
    const x = PAD.left + i * 140;
    svg.append(
      s("rect", { x, y: H - 14, width: 12, height: 12, class: `series-${i}` }),
      s("text", { x: x + 16, y: H - 4, class: "legend" }, name),
    );
  });
}

/**
 * A line per series over `labels`; a null value leaves a gap. `series` is
 * `[{name, values: [number|null]}]`, on a 0–`max` axis.
 */
export function lineChart(label, labels, series, { max = 100, unit = "%" } = {}) {
  const svg = frame(label);
  const inner = { w: W - PAD.left - PAD.right, h: H - PAD.top - PAD.bottom };
  const x = (i) => PAD.left + (labels.length <= 1 ? inner.w / 2 : (inner.w * i) / (labels.length - 1));
  const y = (v) => PAD.top + inner.h - (inner.h * Math.min(v, max)) / max;
  yAxis(svg, max, unit);
  xLabels(svg, labels, x);
  series.forEach((line, n) => {
    let path = "";
    let pen = false;
    line.values.forEach((v, i) => {
      if (v === null || v === undefined) {
        pen = false;
        return;
      }
      path += `${pen ? "L" : "M"}${x(i).toFixed(1)},${y(v).toFixed(1)}`;
      pen = true;
      svg.append(s("circle", { cx: x(i), cy: y(v), r: 3.5, class: `series-${n} point` }, s("title", {}, `${line.name}, ${labels[i]}: ${v}${unit}`)));
    });
    if (path) svg.insertBefore(s("path", { d: path, class: `series-${n} line`, fill: "none" }), svg.querySelector("circle"));
  });
  legend(svg, series.map((l) => l.name));
  return svg;
}

/** Bars per group: `groups` are labels, `series` `[{name, values: [number]}]` side by side. */
export function barChart(label, groups, series) {
  const svg = frame(label);
  const inner = { w: W - PAD.left - PAD.right, h: H - PAD.top - PAD.bottom };
  const top = Math.max(1, ...series.flatMap((l) => l.values));
  const max = Math.max(4, niceCeil(top));
  yAxis(svg, max, "");
  const slot = inner.w / Math.max(1, groups.length);
  const bar = Math.min(36, (slot * 0.8) / Math.max(1, series.length));
  groups.forEach((group, g) => {
    const start = PAD.left + slot * g + (slot - bar * series.length) / 2;
    series.forEach((line, n) => {
      const v = line.values[g] || 0;
      const height = (inner.h * v) / max;
      svg.append(
        s("rect", { x: start + n * bar, y: PAD.top + inner.h - height, width: bar - 2, height, class: `series-${n}` }, s("title", {}, `${group}, ${line.name}: ${v}`)),
      );
    });
    svg.append(s("text", { x: PAD.left + slot * g + slot / 2, y: H - PAD.bottom + 18, class: "tick", "text-anchor": "middle" }, group));
  });
  legend(svg, series.map((l) => l.name));
  return svg;
}

function niceCeil(v) {
  const step = 10 ** Math.floor(Math.log10(v));
  return Math.ceil(v / step) * step;
}
