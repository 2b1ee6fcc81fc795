// Small SVG charts: a time series with a forecast band and markers, and grouped bars.

const NS = "http://www.w3.org/2000/svg";

function el(name, attrs = {}, text = null) {
  const e = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== null) e.textContent = text;
  return e;
}

function ticks(lo, hi, n = 5) {
  const span = hi - lo || 1;
  const raw = span / n, mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => span / s <= n) || mag * 10;
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + 1e-9; v += step) out.push(v);
  return out;
}

// series: [{t, v}] (t in ms); band: [{t, lo, hi, mid}]; marks: [t]; threshold: number
export function timeChart({ series = [], band = [], marks = [], threshold = null,
  width = 760, height = 260, yMax = 120, formatTime, label = "" }) {
  const pad = { l: 36, r: 10, t: 10, b: 24 };
  const svg = el("svg", { viewBox: `0 0 ${width} ${height}`, class: "chart", role: "img", "aria-label": label });
  const ts = [...series.map((p) => p.t), ...band.map((p) => p.t)];
  if (!ts.length) return svg;
  const t0 = Math.min(...ts), t1 = Math.max(...ts, t0 + 3600e3);
  const x = (t) => pad.l + ((t - t0) / (t1 - t0)) * (width - pad.l - pad.r);
  const y = (v) => pad.t + (1 - Math.max(0, Math.min(yMax, v)) / yMax) * (height - pad.t - pad.b);
  for (const v of ticks(0, yMax, 6)) {
    svg.append(el("line", { x1: pad.l, x2: width - pad.r, y1: y(v), y2: y(v), class: "axis" }));
    svg.append(el("text", { x: pad.l - 4, y: y(v) + 4, "text-anchor": "end" }, `${v}`));
  }
  const days = (t1 - t0) / 86400e3;
  const stepMs = (days > 20 ? 7 : days > 6 ? 2 : 1) * 86400e3;
  for (let t = Math.ceil(t0 / 86400e3) * 86400e3; t <= t1; t += stepMs) {
    svg.append(el("line", { x1: x(t), x2: x(t), y1: pad.t, y2: height - pad.b, class: "axis" }));
    svg.append(el("text", { x: x(t), y: height - 6, "text-anchor": "middle" }, formatTime(t)));
  }
  if (threshold !== null) {
    svg.append(el("line", { x1: pad.l, x2: width - pad.r, y1: y(threshold), y2: y(threshold), class: "threshold" }));
  }
  if (band.length) {
    const upper = band.map((p) => `${x(p.t)},${y(p.hi)}`);
    const lower = band.slice().reverse().map((p) => `${x(p.t)},${y(p.lo)}`);
    svg.append(el("polygon", { points: [...upper, ...lower].join(" "), class: "band" }));
    svg.append(el("polyline", { points: band.map((p) => `${x(p.t)},${y(p.mid)}`).join(" "), class: "forecast" }));
  }
  for (const t of marks) {
    svg.append(el("line", { x1: x(t), x2: x(t), y1: pad.t, y2: height - pad.b, class: "emptying" }));
  }
  if (series.length) {
    svg.append(el("polyline", { points: series.map((p) => `${x(p.t)},${y(p.v)}`).join(" "), class: "line" }));
  }
  return svg;
}

// groups: [{label, value}] -> horizontal bars
export function barChart(groups, { width = 520, unit = "", digits = 0, fmt = (v) => v.toFixed(digits) } = {}) {
  const row = 22, labelW = 240, height = groups.length * row + 8;
  const svg = el("svg", { viewBox: `0 0 ${width} ${height}`, class: "chart" });
  const max = Math.max(1, ...groups.map((g) => g.value || 0));
  groups.forEach((g, i) => {
    const yy = 4 + i * row;
    svg.append(el("text", { x: labelW - 6, y: yy + 14, "text-anchor": "end" }, g.label));
    const w = ((g.value || 0) / max) * (width - labelW - 60);
    svg.append(el("rect", { x: labelW, y: yy + 3, width: Math.max(0.5, w), height: row - 8, class: "bar" }));
    svg.append(el("text", { x: labelW + w + 4, y: yy + 14 }, g.value === null ? "–" : `${fmt(g.value)}${unit}`));
  });
  return svg;
}
