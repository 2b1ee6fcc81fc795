// The dashboard's shell: log-in, language, municipality, and a hash router over the views.

import { api, ApiError, forgetToken, savedToken, saveToken } from "./api.js";
import { setFractions, setLanguage, t } from "./i18n.js";
import { alertsView } from "./views/alerts.js";
import { binView } from "./views/bin.js";
import { chartsView } from "./views/charts.js";
import { fleetView } from "./views/fleet.js";
import { mapView } from "./views/map.js";
import { planView } from "./views/plan.js";
import { sheetView } from "./views/sheet.js";

const ROLES = ["viewer", "technician", "planner", "admin"];
const VIEWS = {
  map: mapView, bin: binView, alerts: alertsView, plan: planView, sheet: sheetView,
  charts: chartsView, fleet: fleetView,
};

export const state = {
  config: null,
  me: null, // {name, role, municipalities: [..]}
  municipality: null,
  cache: new Map(), // per municipality: bins, places... (cleared on municipality change)
};

// A role may do what the roles before it may: can("planner") is true for planners and admins.
export function can(role) {
  return !!state.me && ROLES.indexOf(state.me.role) >= ROLES.indexOf(role);
}

export function toast(text) {
  const el = document.getElementById("toast");
  el.textContent = text;
  el.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { el.hidden = true; }, 2500);
}

export function h(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (k === "class") e.className = v;
    else if (k === "dataset") Object.assign(e.dataset, v);
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined && c !== false) e.append(c);
  return e;
}

// Data shared by several views for the current municipality, fetched once.
export function cached(key, load) {
  const k = `${state.municipality}:${key}`;
  if (!state.cache.has(k)) {
    const p = load().catch((err) => { state.cache.delete(k); throw err; });
    state.cache.set(k, p);
  }
  return state.cache.get(k);
}

export function invalidate(key) { state.cache.delete(`${state.municipality}:${key}`); }

function languageKey() { return `smartbins.language.${state.me?.name || ""}`; }

function chooseLanguage(code) {
  setLanguage(code);
  document.getElementById("language").value = code;
  if (state.me) localStorage.setItem(languageKey(), code);
}

function loginView(main, message = "") {
  document.getElementById("nav").hidden = true;
  document.getElementById("who").hidden = true;
  const input = h("input", { id: "token", type: "password", autocomplete: "off", spellcheck: "false", "aria-label": t("login.token") });
  const form = h("form", { class: "panel login", id: "login" },
    h("h1", {}, t("login.title")),
    h("label", { for: "token" }, t("login.token")), input,
    h("p", { class: "muted" }, t("login.help")),
    message ? h("p", { class: "error", role: "alert" }, message) : null,
    h("button", { type: "submit" }, t("login.submit")));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const token = input.value.trim();
    try {
      state.me = await api.me(token);
    } catch (err) {
      loginView(main, err instanceof ApiError && err.status < 500 ? t("login.bad") : String(err));
      return;
    }
    saveToken(token);
    await start();
  });
  main.replaceChildren(form);
  input.focus();
}

async function start(early = null) {
  const main = document.getElementById("main");
  const token = savedToken();
  if (!token) { loginView(main); return; }
  try {
    if (!state.me) state.me = await (early || api.me(token));
  } catch (err) {
    forgetToken();
    state.me = null;
    loginView(main, err instanceof ApiError && err.status < 500 ? t("login.bad") : String(err));
    return;
  }
  const saved = localStorage.getItem(languageKey());
  chooseLanguage(saved || state.me.language || (navigator.language.startsWith("da") ? "da" : "en"));
  const select = document.getElementById("municipality");
  const list = state.me.municipalities;
  select.replaceChildren(...list.map((mm) => h("option", { value: mm.id }, mm.name || mm.id)));
  select.hidden = list.length < 2;
  const remembered = localStorage.getItem("smartbins.municipality");
  state.municipality = list.some((mm) => mm.id === remembered) ? remembered : list[0]?.id;
  select.value = state.municipality;
  document.getElementById("identity").textContent = `${state.me.name} · ${t(`role.${state.me.role}`)}`;
  document.getElementById("nav").hidden = false;
  document.getElementById("who").hidden = false;
  // fleet health is for technicians; plans are read by everyone, written by planners
  document.querySelector('#nav a[data-view="fleet"]').hidden = !can("technician");
  if (!location.hash || location.hash === "#") location.hash = "#/map";
  route();
}

let current = null;
let navigation = 0; // counts route() calls: a view still loading when the next starts is stale

// Thrown into a stale view when it renders: it is dropped, and the newer view stays.
class Superseded extends Error {}

// What a view renders into: #main, as long as no newer view has started.
function viewTarget(main, seq) {
  return {
    replaceChildren(...nodes) {
      if (seq !== navigation) throw new Superseded();
      main.replaceChildren(...nodes);
    },
  };
}

// how many stale views were dropped (data-dropped on #main: for tests and a curious eye)
function dropped(main) {
  main.dataset.dropped = String(Number(main.dataset.dropped || 0) + 1);
}

async function route() {
  const main = document.getElementById("main");
  const seq = ++navigation;
  if (!state.me) return;
  const [name, ...args] = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  const view = VIEWS[name] || mapView;
  for (const a of document.querySelectorAll("#nav a")) {
    a.classList.toggle("active", a.dataset.view === name || (name === "sheet" && a.dataset.view === "plan"));
  }
  if (current?.destroy) current.destroy();
  current = null;
  main.replaceChildren(h("p", { class: "muted" }, t("common.loading")));
  try {
    const shown = await view(viewTarget(main, seq), args);
    if (seq !== navigation) {
      shown?.destroy?.();
      return dropped(main);
    }
    current = shown;
  } catch (err) {
    if (err instanceof Superseded || seq !== navigation) return dropped(main);
    if (err instanceof ApiError && err.status === 401) {
      forgetToken(); state.me = null; loginView(main, t("login.bad")); return;
    }
    main.replaceChildren(h("p", { class: "error", role: "alert" }, `${t("common.error")}: ${err.message}`));
  }
}

async function boot() {
  // who the saved token belongs to, asked for while the config loads
  const token = savedToken();
  const early = token ? api.me(token) : null;
  early?.catch(() => {}); // handled in start()
  state.config = await api.config();
  setFractions(state.config.fractions);
  setLanguage(navigator.language.startsWith("da") ? "da" : "en");
  document.getElementById("language").addEventListener("change", (ev) => {
    chooseLanguage(ev.target.value);
    route();
  });
  document.getElementById("municipality").addEventListener("change", (ev) => {
    state.municipality = ev.target.value;
    localStorage.setItem("smartbins.municipality", state.municipality);
    route();
  });
  document.getElementById("logout").addEventListener("click", () => {
    forgetToken(); state.me = null; state.cache.clear();
    location.hash = "";
    loginView(document.getElementById("main"));
  });
  window.addEventListener("hashchange", route);
  await start(early);
}

boot();
