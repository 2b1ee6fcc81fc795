// The next collection's plan (or any day's): per truck its route on the map, km, time, load and
// disposal trips, and the bins the plan skips with their overflow risk.

import { nextPlans, places as loadPlaces, plansFor, routesOf, TRUCK_COLOURS } from "../data.js";
import { duration, number, streamName, t } from "../i18n.js";
import { h, state } from "../main.js";
import { CanvasMap } from "../map.js";
import { routeLine } from "./map.js";

export function stopsDone(truck) {
  const bins = (truck.stops || []).filter((s) => s.kind === "bin");
  return [bins.filter((s) => s.done_ms).length, bins.length];
}

function skippedPanel(plans) {
  const skipped = plans.flatMap((p) => p.skipped || []).sort((a, b) => (b.overflow_probability ?? 0) - (a.overflow_probability ?? 0));
  return h("div", { class: "panel scroll" },
    h("h2", {}, `${t("plan.skipped")} (${skipped.length})`),
    skipped.length ? h("table", { id: "plan-skipped" },
      h("thead", {}, h("tr", {}, h("th", {}, t("alerts.bin")), h("th", {}, t("map.stream")), h("th", { class: "num" }, t("plan.expected")), h("th", { class: "num" }, t("plan.risk")))),
      h("tbody", {}, ...skipped.map((s) => h("tr", { title: s.reason || null },
        h("td", {}, h("a", { href: `#/bin/${encodeURIComponent(s.bin_id)}` }, s.bin_id)),
        h("td", {}, streamName(s.stream)),
        h("td", { class: "num" }, `${number(s.expected_fill_pct)} %`),
        h("td", { class: "num" }, `${number(100 * (s.overflow_probability ?? 0), 1)} %`))))) : null);
}

// A day on which no stream goes out: each stream's next collection (the planning service sends a
// stream out only when one of its bins is due).
function noTrip(plans) {
  const trips = Object.entries(Object.assign({}, ...plans.map((p) => p.trips || {}))).sort();
  return h("div", { class: "panel", id: "no-trip" },
    h("p", {}, t("plan.notrip")),
    h("ul", {}, ...trips.map(([s, trip]) => h("li", { dataset: { stream: s } },
      `${streamName(s)}: `, h("a", { href: `#/plan/${trip.next_opportunity}` }, trip.next_opportunity)))));
}

export async function planView(main, [dateArg]) {
  const [{ date, plans }, placeList] = await Promise.all([
    dateArg ? plansFor(dateArg).then((found) => ({ date: dateArg, plans: found })) : nextPlans(),
    loadPlaces(),
  ]);
  const placeById = new Map(placeList.map((p) => [p.id, p]));
  const routes = routesOf(plans);
  const dateInput = h("input", { type: "date", id: "plan-date", value: date });
  dateInput.addEventListener("change", () => { location.hash = `#/plan/${dateInput.value}`; });
  const head = h("div", { class: "toolbar panel" }, h("h1", {}, t("plan.title")), h("label", {}, t("plan.date"), dateInput));
  if (!routes.length) {
    main.replaceChildren(head, ...(plans.length ? [noTrip(plans), skippedPanel(plans)]
      : [h("p", { class: "panel muted", id: "no-plan" }, t("plan.none"))]));
    return null;
  }
  const wrap = h("div", { class: "mapwrap", style: "min-height:340px" });
  const rows = routes.map(({ plan, truck }, i) => {
    const [done, total] = stopsDone(truck);
    const load = Object.entries(truck.load_l || {}).map(([s, l]) => `${streamName(s)} ${number(l / 1000, 1)} m³`).join(", ");
    return h("tr", { dataset: { truck: truck.truck_id, plan: plan.id } },
      h("td", {}, h("span", { class: "swatch", style: `background:${TRUCK_COLOURS[i % TRUCK_COLOURS.length]}` }), truck.name || truck.truck_id),
      h("td", {}, [...new Set(Object.keys(truck.load_l || {}))].map(streamName).join(", ")),
      h("td", { class: "num stops" }, `${total}`),
      h("td", { class: "num" }, number(truck.km, 1)),
      h("td", { class: "num" }, duration(truck.duration_s)),
      h("td", {}, load),
      h("td", { class: "num" }, `${truck.disposal_trips ?? (truck.stops || []).filter((s) => s.kind === "disposal").length}`),
      h("td", { class: "num done-count" }, `${done}/${total}`),
      h("td", {}, h("a", { href: `#/sheet/${encodeURIComponent(plan.id)}/${encodeURIComponent(truck.truck_id)}` }, t("plan.sheet"))));
  });
  const violations = plans.flatMap((p) => p.violations || []);
  main.replaceChildren(...[
    head,
    violations.length ? h("div", { class: "panel error", role: "alert" }, `${t("plan.violations")}: ${violations.join("; ")}`) : null,
    h("div", { class: "panel scroll" }, h("table", { id: "plan-trucks" },
      h("thead", {}, h("tr", {}, ...["plan.truck", "plan.streams", "plan.stops", "plan.km", "plan.time", "plan.load", "plan.trips", "plan.done", "plan.sheet"].map((k) => h("th", { class: ["plan.stops", "plan.km", "plan.time", "plan.trips", "plan.done"].includes(k) ? "num" : null }, t(k))))),
      h("tbody", {}, ...rows))),
    wrap,
    skippedPanel(plans),
  ].filter(Boolean));

  const map = new CanvasMap(wrap, { tileUrl: state.config.tile_url });
  const stopsAsBins = routes.flatMap(({ truck }, i) => (truck.stops || []).filter((s) => s.kind === "bin").map((s) => ({
    id: `${truck.truck_id}:${s.index}`, lat: s.lat, lon: s.lon, colour: TRUCK_COLOURS[i % TRUCK_COLOURS.length],
  })));
  map.setData({
    bins: stopsAsBins,
    places: placeList,
    routes: routes.map(({ truck }, i) => ({ colour: TRUCK_COLOURS[i % TRUCK_COLOURS.length], points: routeLine(truck, placeById) })),
  });
  map.fit();
  return { destroy: () => map.destroy() };
}
