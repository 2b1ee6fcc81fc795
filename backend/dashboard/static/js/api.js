// The API the dashboard calls: every path in one place. Same origin only; the token goes in
// the Authorization header and is kept in this browser's localStorage.

const TOKEN_KEY = "smartbins.token";

export class ApiError extends Error {
  constructor(status, detail) {
    super(typeof detail === "string" ? detail : JSON.stringify(detail));
    this.status = status;
  }
}

export function savedToken() { return localStorage.getItem(TOKEN_KEY); }
export function saveToken(token) { localStorage.setItem(TOKEN_KEY, token); }
export function forgetToken() { localStorage.removeItem(TOKEN_KEY); }

async function call(method, path, { body = null, token = savedToken(), query = null } = {}) {
  const headers = { Accept: "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== null) headers["Content-Type"] = "application/json";
  let url = path;
  if (query) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) if (v !== null && v !== undefined && v !== "") q.set(k, v);
    const s = q.toString();
    if (s) url += `?${s}`;
  }
  const r = await fetch(url, { method, headers, body: body === null ? null : JSON.stringify(body) });
  if (r.status === 204) return null;
  const data = r.headers.get("content-type")?.includes("json") ? await r.json() : await r.text();
  if (!r.ok) throw new ApiError(r.status, data?.detail ?? data);
  return data;
}

const V1 = "/api/v1";
const m = (id) => `${V1}/municipalities/${encodeURIComponent(id)}`;
const e = encodeURIComponent;

export const api = {
  config: () => call("GET", "/dashboard/config.json", { token: null }),
  me: (token) => call("GET", `${V1}/me`, { token }),
  bins: (mid) => call("GET", `${m(mid)}/bins`),
  latest: (mid) => call("GET", `${m(mid)}/state`),
  history: (mid, bin, fromMs, toMs) =>
    call("GET", `${m(mid)}/bins/${e(bin)}/readings`, { query: { start_ms: fromMs, end_ms: toMs } }),
  depots: (mid) => call("GET", `${m(mid)}/depots`),
  disposalSites: (mid) => call("GET", `${m(mid)}/disposal-sites`),
  trucks: (mid) => call("GET", `${m(mid)}/trucks`),
  sites: (mid) => call("GET", `${m(mid)}/sites`),
  alerts: (mid, state) => call("GET", `${m(mid)}/alerts`, { query: { state } }),
  acknowledge: (mid, id) => call("POST", `${m(mid)}/alerts/${e(id)}/acknowledge`),
  resolve: (mid, id) => call("POST", `${m(mid)}/alerts/${e(id)}/resolve`),
  fleet: (mid) => call("GET", `${m(mid)}/fleet`),
  plans: (mid, date) => call("GET", `${m(mid)}/plans`, { query: { date } }),
  nextPlans: (mid, from) => call("GET", `${m(mid)}/plans/next`, { query: { from } }),
  plan: (mid, id) => call("GET", `${m(mid)}/plans/${e(id)}`),
  markStop: (mid, id, truck, index, done) =>
    call("POST", `${m(mid)}/plans/${e(id)}/trucks/${e(truck)}/stops/${index}/${done ? "done" : "undone"}`),
  forecast: (mid, bin) => call("GET", `${m(mid)}/bins/${e(bin)}/forecast`),
  emptyings: (mid, fromMs, toMs, bin = null) =>
    call("GET", `${m(mid)}/emptyings`, { query: { start_ms: fromMs, end_ms: toMs, bin_id: bin } }),
};
