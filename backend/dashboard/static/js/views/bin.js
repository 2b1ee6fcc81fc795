// One bin: its fill history, the emptyings detected in it, and the forecast band ahead.

import { api, ApiError } from "../api.js";
import { timeChart } from "../chart.js";
import { bins as loadBins, forecastsOf, latest, list, nextPlans, sites as loadSites } from "../data.js";
import { ago, dateTime, language, number, streamName, t } from "../i18n.js";
import { h, state } from "../main.js";

const DAY = 86400e3;

function historyPoints(raw) {
  return list(raw, "readings", "points", "history")
    .map((r) => ({ t: r.time_ms ?? r.ts_ms, v: r.fill_pct }))
    .filter((p) => p.v !== null && p.v !== undefined && !Number.isNaN(p.t))
    .sort((a, b) => a.t - b.t);
}

async function forecastBand(binId, lastPoint) {
  // The forecaster's band for the next two days; the next plan's figure when it has none.
  try {
    const f = await api.forecast(state.municipality, binId);
    const pts = list(f, "points", "band");
    if (pts.length) {
      return pts.map((p) => ({ t: p.ts_ms, mid: p.fill_pct, lo: p.lo_pct, hi: p.hi_pct }))
        .filter((p) => p.mid !== null && p.lo !== null && p.hi !== null);
    }
  } catch (err) {
    if (!(err instanceof ApiError) || err.status >= 500) throw err;
  }
  const f = forecastsOf((await nextPlans()).plans).get(binId);
  if (!f || !lastPoint) return [];
  const at = f.at_ms ?? lastPoint.t + DAY;
  return [
    { t: lastPoint.t, mid: lastPoint.v, lo: lastPoint.v, hi: lastPoint.v },
    { t: at, mid: f.fill_pct, lo: f.lo_pct ?? f.fill_pct, hi: f.hi_pct ?? f.fill_pct },
  ];
}

export async function binView(main, [binId, daysArg]) {
  const days = Number(daysArg) || 14;
  const now = Date.now();
  const [all, states, raw, siteMap, found] = await Promise.all([
    loadBins(), latest(), api.history(state.municipality, binId, now - days * DAY, now), loadSites(),
    api.emptyings(state.municipality, now - days * DAY, now, binId),
  ]);
  const bin = all.find((b) => b.id === binId);
  if (!bin) throw new Error(`${t("bin.title")} ${binId}?`);
  const points = historyPoints(raw);
  const emptyings = list(found, "emptyings").map((e) => e.time_ms);
  const band = await forecastBand(binId, points[points.length - 1]);
  const st = states.get(binId) || {};
  const fmtDay = (ms) => new Date(ms).toLocaleDateString(language() === "da" ? "da-DK" : "en-GB", { day: "numeric", month: "short" });

  const range = h("select", { id: "days" }, ...[3, 7, 14, 30].map((d) => h("option", { value: d, selected: d === days }, `${d} ${t("bin.days")}`)));
  range.addEventListener("change", () => { location.hash = `#/bin/${encodeURIComponent(binId)}/${range.value}`; });
  main.replaceChildren(
    h("div", { class: "panel", id: "bin-page", dataset: { bin: binId } },
      h("h1", {}, `${t("bin.title")} ${binId}`),
      h("div", { class: "figures" },
        h("div", {}, streamName(bin.stream), h("b", {}, st.fill_pct === undefined ? "–" : `${number(st.fill_pct)} %`)),
        h("div", {}, t("bin.volume"), h("b", {}, `${number(bin.volume_l)} L`)),
        h("div", {}, t("bin.site"), h("b", {}, siteMap.get(bin.site_id)?.address || siteMap.get(bin.site_id)?.name || bin.site_id)),
        bin.area ? h("div", {}, t("map.area"), h("b", {}, bin.area)) : null,
        h("div", {}, t("bin.device"), h("b", {}, st.device_id || bin.device_id || "–")),
        h("div", {}, t("bin.last"), h("b", {}, ago(st.last_seen_ms))))),
    h("div", { class: "panel" },
      h("div", { class: "toolbar" }, h("h2", {}, t("bin.history")), range,
        h("span", { class: "muted" }, `— ${t("bin.forecast")} (${t("bin.band")}), ┆ ${t("bin.emptyings")}, - - ${t("bin.threshold")}`)),
      points.length
        ? timeChart({ series: points, band, marks: emptyings, threshold: bin.full_pct ?? null, formatTime: fmtDay, label: t("bin.history") })
        : h("p", { class: "muted" }, t("bin.none"))),
    h("div", { class: "panel" },
      h("h2", {}, `${t("bin.emptyings")} (${emptyings.length})`),
      h("ul", { id: "emptyings" }, ...emptyings.map((ms) => h("li", {}, dateTime(ms))))));
}
