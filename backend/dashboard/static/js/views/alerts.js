// Alerts: open, acknowledged and resolved, with acknowledge and resolve for those who may.

import { api } from "../api.js";
import { list } from "../data.js";
import { dateTime, t } from "../i18n.js";
import { can, h, state, toast } from "../main.js";

export async function alertsView(main, [stateArg]) {
  const filter = stateArg || "open";
  const raw = await api.alerts(state.municipality, filter === "all" ? null : filter);
  const alerts = list(raw, "alerts");
  const mayWrite = can("technician");
  const sel = h("select", { id: "alert-state" },
    ...["open", "acknowledged", "resolved", "all"].map((s) => h("option", { value: s, selected: s === filter }, t(`state.${s}`))));
  sel.addEventListener("change", () => { location.hash = `#/alerts/${sel.value}`; });

  async function act(fn, a) {
    await fn(state.municipality, a.id);
    toast(t("common.saved"));
    location.hash === `#/alerts/${filter}` ? window.dispatchEvent(new HashChangeEvent("hashchange")) : (location.hash = `#/alerts/${filter}`);
  }

  const rows = alerts.map((a) => {
    const st = a.state || "open";
    return h("tr", { dataset: { alert: a.id, state: st } },
      h("td", {}, h("span", { class: `badge ${st}` }, t(`state.${st}`))),
      h("td", {}, t(`kind.${a.kind}`)),
      h("td", {}, a.bin_id ? h("a", { href: `#/bin/${encodeURIComponent(a.bin_id)}` }, a.bin_id) : "–"),
      h("td", {}, a.device_id || "–"),
      h("td", {}, dateTime(a.raised_ms ?? a.created_ms ?? a.opened_ms)),
      h("td", {}, a.detail || a.message || ""),
      mayWrite ? h("td", { class: "actions" },
        st === "open" ? h("button", { type: "button", class: "ack", onclick: () => act(api.acknowledge, a) }, t("alerts.ack")) : null,
        st !== "resolved" ? h("button", { type: "button", class: "secondary resolve", onclick: () => act(api.resolve, a) }, t("alerts.resolve")) : null)
        : null);
  });
  main.replaceChildren(h("div", { class: "panel" },
    h("div", { class: "toolbar" }, h("h1", {}, t("alerts.title")), h("label", {}, t("alerts.state"), sel)),
    alerts.length
      ? h("div", { class: "scroll" }, h("table", { id: "alerts" },
        h("thead", {}, h("tr", {}, ...["alerts.state", "alerts.kind", "alerts.bin", "alerts.device", "alerts.since", "alerts.detail"].map((k) => h("th", {}, t(k))), mayWrite ? h("th", {}) : null)),
        h("tbody", {}, ...rows)))
      : h("p", { class: "muted", id: "no-alerts" }, t("alerts.none"))));
}
