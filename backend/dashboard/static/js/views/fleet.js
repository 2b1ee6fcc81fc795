// Fleet health for technicians: devices to visit (worst first), then every device's battery,
// signal, last seen, faults, reboots, backlog and firmware.

import { api } from "../api.js";
import { list } from "../data.js";
import { ago, number, t } from "../i18n.js";
import { h, state } from "../main.js";

function faults(d) {
  const parts = [];
  if (d.sensor_faults) parts.push(`${t("fleet.sensorFaults")} ${d.sensor_faults}`);
  for (const [reason, n] of Object.entries(d.dead_letters || {})) if (n) parts.push(`${reason} ${n}`);
  for (const f of d.flags || []) parts.push(f);
  return parts.join(", ");
}

function trend(d) {
  const v = d.battery_trend_mv_per_day;
  return v === null || v === undefined || Math.abs(v) < 1 ? "" : ` (${v > 0 ? "+" : ""}${number(v)} mV/d)`;
}

function deviceRow(d, withReason) {
  return h("tr", { dataset: { device: d.device_id ?? d.id } },
    h("td", {}, d.device_id ?? d.id),
    h("td", {}, d.bin_id ? h("a", { href: `#/bin/${encodeURIComponent(d.bin_id)}` }, d.bin_id) : "–"),
    h("td", { class: "num" }, d.battery_mv ? `${number(d.battery_mv / 1000, 2)} V${trend(d)}` : "–"),
    h("td", { class: "num" }, d.rssi_dbm !== undefined && d.rssi_dbm !== null ? `${number(d.rssi_dbm)} dBm` : "–"),
    h("td", {}, ago(d.last_seen_ms)),
    h("td", {}, faults(d) || "–"),
    h("td", { class: "num" }, d.reboots ?? "–"),
    h("td", { class: "num" }, d.buffered ?? d.backlog ?? "–"),
    h("td", {}, d.firmware_reported ?? d.firmware_installed ?? "–"),
    withReason ? h("td", {}, (d.reasons || []).join(", ")) : null);
}

function table(id, rows, withReason) {
  const heads = ["fleet.device", "alerts.bin", "fleet.battery", "fleet.signal", "fleet.lastSeen", "fleet.faults", "fleet.reboots", "fleet.backlog", "fleet.firmware"];
  if (withReason) heads.push("fleet.reason");
  return h("div", { class: "scroll" }, h("table", { id },
    h("thead", {}, h("tr", {}, ...heads.map((k) => h("th", {}, t(k))))),
    h("tbody", {}, ...rows)));
}

export async function fleetView(main) {
  // one list, worst first; a device with reasons is one to visit
  const devices = list(await api.fleet(state.municipality), "devices");
  const visit = devices.filter((d) => (d.reasons || []).length);
  main.replaceChildren(
    h("div", { class: "panel" }, h("h1", {}, t("fleet.title")),
      h("h2", {}, `${t("fleet.visit")} (${visit.length})`),
      visit.length ? table("fleet-visit", visit.map((d) => deviceRow(d, true)), true) : h("p", { class: "muted" }, t("fleet.none"))),
    h("div", { class: "panel" }, h("h2", {}, `${t("fleet.all")} (${devices.length})`),
      table("fleet-devices", devices.map((d) => deviceRow(d, false)), false)));
}
