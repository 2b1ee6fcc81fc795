// The map: every bin coloured by its fill now or by the next collection's forecast, filtered by
// stream and area, with depots, disposal sites and (optionally) the next collection's routes.

import {
  FILL_BUCKETS, fillColour, forecastsOf, latest, nextPlans, NO_DATA, places as loadPlaces,
  routesOf, TRUCK_COLOURS,
} from "../data.js";
import { number, streamName, t } from "../i18n.js";
import { h, state } from "../main.js";
import { CanvasMap } from "../map.js";

export function routeLine(truck, placeById) {
  const pts = [];
  const depot = placeById.get(truck.depot_id);
  if (depot) pts.push([depot.lat, depot.lon]);
  for (const s of truck.stops || []) if (s.lat !== undefined) pts.push([s.lat, s.lon]);
  if (depot) pts.push([depot.lat, depot.lon]);
  return pts;
}

export async function mapView(main) {
  // The latest state has every bin with its place, stream and area: the first draw needs
  // nothing else. The next collection's plan (forecast colours, routes) is fetched when asked for.
  const [states, placeList] = await Promise.all([latest(), loadPlaces()]);
  const binList = [...states.values()].map((s) => ({ ...s, id: s.bin_id }));
  const placeById = new Map(placeList.map((p) => [p.id, p]));
  let forecasts = new Map();
  let routes = [];
  let plansLoaded = null;
  const loadPlans = () => (plansLoaded ??= nextPlans().then(({ plans }) => {
    forecasts = forecastsOf(plans);
    routes = routesOf(plans);
  }));

  const streams = [...new Set(binList.map((b) => b.stream))].sort();
  const areas = [...new Set(binList.map((b) => b.area).filter(Boolean))].sort();
  const opt = (v, label) => h("option", { value: v }, label);
  const streamSel = h("select", { id: "stream-filter" }, opt("", t("map.all")), ...streams.map((s) => opt(s, streamName(s))));
  const areaSel = h("select", { id: "area-filter" }, opt("", t("map.all")), ...areas.map((a) => opt(a, a)));
  const mode = h("select", { id: "colour-mode" }, opt("fill", t("map.fill")), opt("forecast", t("map.forecast")));
  const showRoutes = h("input", { type: "checkbox", id: "show-routes" });
  const count = h("span", { id: "bin-count", class: "muted" });
  const note = h("span", { class: "muted" });
  const wrap = h("div", { class: "mapwrap", id: "map" });
  const legend = h("div", { class: "legend" },
    ...FILL_BUCKETS.map(([hi, c], i) => h("span", {}, h("span", { class: "swatch", style: `background:${c}` }),
      i === FILL_BUCKETS.length - 1 ? `≥ ${FILL_BUCKETS[i - 1][0]} %` : `< ${hi} %`)),
    h("span", {}, h("span", { class: "swatch", style: `background:${NO_DATA}` }), t("map.noreading")),
    h("span", {}, "■ ", t("map.depot")), h("span", {}, "▲ ", t("map.disposal")));
  main.replaceChildren(
    h("div", { class: "toolbar panel no-print" },
      h("label", {}, t("map.colour"), mode),
      h("label", {}, t("map.stream"), streamSel),
      areas.length ? h("label", {}, t("map.area"), areaSel) : null,
      h("label", {}, showRoutes, t("map.routes")),
      count, note),
    wrap, legend);

  const binById = new Map(binList.map((b) => [b.id, b]));
  const map = new CanvasMap(wrap, {
    tileUrl: state.config.tile_url,
    onSelect: (b) => { location.hash = `#/bin/${encodeURIComponent(b.id)}`; },
    label: (b) => {
      const v = b.value === null || b.value === undefined ? t("map.noreading") : `${number(b.value)} %`;
      return `${b.id} · ${streamName(binById.get(b.id).stream)} · ${v}`;
    },
  });
  window.smartbinsMap = map; // tests and the load benchmark ask it where a bin is drawn

  const areaCentres = areas.map((a) => {
    const members = binList.filter((b) => b.area === a);
    return {
      name: a,
      lat: members.reduce((s, b) => s + b.lat, 0) / members.length,
      lon: members.reduce((s, b) => s + b.lon, 0) / members.length,
    };
  });

  function refresh(first = false) {
    const byForecast = mode.value === "forecast";
    const shown = binList.filter((b) => (!streamSel.value || b.stream === streamSel.value) &&
      (!areaSel.value || b.area === areaSel.value));
    const items = shown.map((b) => {
      const value = byForecast ? forecasts.get(b.id)?.fill_pct : states.get(b.id)?.fill_pct;
      return { id: b.id, lat: b.lat, lon: b.lon, value, colour: fillColour(value) };
    });
    const lines = showRoutes.checked
      ? routes.map((r, i) => ({ colour: TRUCK_COLOURS[i % TRUCK_COLOURS.length], points: routeLine(r.truck, placeById) }))
      : [];
    map.setData({ bins: items, places: placeList, routes: lines, areas: areaCentres });
    if (first) map.fit();
    count.textContent = `${number(items.length)} ${t("map.bins")}`;
    note.textContent = byForecast && !forecasts.size ? t("map.noforecast") : "";
    if (showRoutes.checked && !routes.length) note.textContent = t("plan.none");
  }
  for (const c of [mode, streamSel, areaSel, showRoutes]) {
    c.addEventListener("change", async () => {
      if (mode.value === "forecast" || showRoutes.checked) {
        wrap.dataset.ready = "0";
        await loadPlans();
      }
      refresh();
      wrap.dataset.ready = "1";
    });
  }
  refresh(true);
  performance.mark("bins-drawn");
  wrap.dataset.ready = "1";
  return { destroy: () => map.destroy() };
}
