// Collections per stream: emptyings detected in the readings, the fill they happened at, and the
// collections the next plan makes. (The municipality's key figures will add to this view.)

import { api } from "../api.js";
import { barChart } from "../chart.js";
import { list, nextPlans } from "../data.js";
import { number, streamName, t } from "../i18n.js";
import { h, state } from "../main.js";

const DAY = 86400e3;

export async function chartsView(main, [daysArg]) {
  const days = Number(daysArg) || 14;
  const now = Date.now();
  const [raw, { date: planDate, plans }] = await Promise.all([
    api.emptyings(state.municipality, now - days * DAY, now), nextPlans(),
  ]);
  const emptyings = list(raw, "emptyings");
  const byStream = new Map();
  for (const e of emptyings) {
    const s = byStream.get(e.stream) || { n: 0, fill: 0, withFill: 0, low: 0 };
    s.n += 1;
    if (e.fill_before_pct !== null && e.fill_before_pct !== undefined) {
      s.fill += e.fill_before_pct; s.withFill += 1; s.low += e.fill_before_pct < 25 ? 1 : 0;
    }
    byStream.set(e.stream, s);
  }
  const planned = new Map();
  for (const p of plans) for (const tr of p.trucks || []) for (const st of tr.stops || []) {
    for (const b of st.bins || []) planned.set(b.stream, (planned.get(b.stream) || 0) + 1);
  }
  const streams = [...new Set([...byStream.keys(), ...planned.keys()])].sort();
  const range = h("select", { id: "chart-days" }, ...[7, 14, 30].map((d) => h("option", { value: d, selected: d === days }, `${d} ${t("bin.days")}`)));
  range.addEventListener("change", () => { location.hash = `#/charts/${range.value}`; });
  const panel = (title, content) => h("div", { class: "panel" }, h("h2", {}, title), content);
  main.replaceChildren(
    h("div", { class: "toolbar panel" }, h("h1", {}, t("charts.title")), h("label", {}, t("charts.days"), range)),
    streams.length ? h("div", { class: "grid2", id: "charts" },
      panel(`${t("charts.emptyings")} (${days} ${t("bin.days")})`,
        barChart(streams.map((s) => ({ label: streamName(s), value: byStream.get(s)?.n ?? 0 })))),
      panel(t("charts.fillAtEmptying"),
        barChart(streams.map((s) => {
          const v = byStream.get(s);
          return { label: streamName(s), value: v && v.withFill ? v.fill / v.withFill : null };
        }), { unit: " %" })),
      panel(`${t("charts.collections")} · ${planDate}`,
        barChart(streams.map((s) => ({ label: streamName(s), value: planned.get(s) ?? 0 })))),
      panel(t("charts.lowShare"),
        barChart(streams.map((s) => {
          const v = byStream.get(s);
          return { label: streamName(s), value: v && v.withFill ? (100 * v.low) / v.withFill : null };
        }), { unit: " %", fmt: (v) => number(v) })))
      : h("p", { class: "panel muted" }, t("charts.none")));
}
