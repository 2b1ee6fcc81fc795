// Loading and shaping what several views share: bins with their latest state, places, plans.

import { api, ApiError } from "./api.js";
import { cached, state } from "./main.js";

export const FILL_BUCKETS = [
  [25, "#2e7d32"], [50, "#8bc34a"], [75, "#fbc02d"], [90, "#f57c00"], [Infinity, "#c62828"],
];
export const NO_DATA = "#9aa39e";
export const TRUCK_COLOURS = [
  "#1565c0", "#c2185b", "#00897b", "#6a1b9a", "#ef6c00", "#2e7d32", "#5d4037", "#0097a7",
  "#ad1457", "#283593", "#9e9d24", "#4e342e",
];

export function fillColour(pct) {
  if (pct === null || pct === undefined || Number.isNaN(pct)) return NO_DATA;
  return FILL_BUCKETS.find(([hi]) => pct < hi)[1];
}

// The API returns lists either bare or inside an object ({items: [...]}, {bins: [...]}, ...).
export function list(x, ...keys) {
  if (Array.isArray(x)) return x;
  for (const k of [...keys, "items", "data", "results"]) if (x && Array.isArray(x[k])) return x[k];
  return [];
}

export function tomorrow(now = new Date()) {
  const d = new Date(now.getTime() + 86400e3);
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, "0")}-${String(d.getDate()).padStart(2, "0")}`;
}

export function bins() {
  return cached("bins", async () => list(await api.bins(state.municipality), "bins"));
}

// bin id -> latest state ({fill_pct, ts_ms, battery_mv, ...})
export async function latest() {
  const raw = await api.latest(state.municipality);
  const out = new Map();
  for (const r of list(raw, "bins", "states", "readings")) out.set(r.bin_id ?? r.bin ?? r.id, r);
  return out;
}

export function sites() {
  return cached("sites", async () => new Map(list(await api.sites(state.municipality), "sites").map((x) => [x.id, x])));
}

export function places() {
  return cached("places", async () => {
    const [depots, disposal] = await Promise.all([
      api.depots(state.municipality).catch(() => []),
      api.disposalSites(state.municipality).catch(() => []),
    ]);
    return [
      ...list(depots, "depots").map((d) => ({ ...d, kind: "depot" })),
      ...list(disposal, "disposal_sites").map((d) => ({ ...d, kind: "disposal" })),
    ];
  });
}

// The plans an API call returns; [] when the server has no plans (yet).
async function plansOrNone(ask) {
  try {
    return list(await ask(), "plans");
  } catch (err) {
    if (err instanceof ApiError && (err.status === 404 || err.status === 405)) return [];
    throw err;
  }
}

// The plans for a date (one per stream, or one for all streams); [] when there are none.
export function plansFor(date) {
  return plansOrNone(() => api.plans(state.municipality, date));
}

// The next collection: tomorrow's plans when a truck goes out, else those of the first later
// date that sends one, else tomorrow's, which say why nothing goes out. A stream goes out only
// on a day when one of its bins is due (the planning service's trips), so tomorrow may have no
// routes. {date, plans}
export async function nextPlans() {
  const day = tomorrow();
  const next = await plansOrNone(() => api.nextPlans(state.municipality, day));
  if (next.length && next[0].date !== day) return { date: next[0].date, plans: next };
  return { date: day, plans: next.length ? next : await plansFor(day) };
}

// Every truck route of a set of plans, with the plan it belongs to.
export function routesOf(plans) {
  const out = [];
  for (const p of plans) for (const tr of p.trucks || []) out.push({ plan: p, truck: tr });
  return out;
}

// bin id -> forecast {fill_pct, lo_pct, hi_pct, overflow_probability, at_ms} from plans
export function forecastsOf(plans) {
  const out = new Map();
  for (const p of plans) for (const [id, f] of Object.entries(p.forecast || {})) out.set(id, f);
  return out;
}
