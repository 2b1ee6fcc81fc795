// The driver's route sheet for one truck: ordered stops with address, stream and expected
// fill; printable, usable on a phone, and each stop can be marked done (the plan records it).

import { api } from "../api.js";
import { clock, duration, number, streamName, t } from "../i18n.js";
import { can, h, state, toast } from "../main.js";
import { stopsDone } from "./plan.js";

export async function sheetView(main, [planId, truckId]) {
  const plan = await api.plan(state.municipality, planId);
  const truck = (plan.trucks || []).find((tr) => tr.truck_id === truckId);
  if (!truck) throw new Error(`${t("plan.truck")} ${truckId}?`);
  const mayMark = can("technician");
  const [done, total] = stopsDone(truck);

  const items = (truck.stops || []).map((s, i) => {
    const what = s.kind === "bin"
      ? (s.bins || []).map((b) => `${streamName(b.stream)} ${number(b.expected_fill_pct)} %`).join(" · ")
      : s.kind === "disposal" ? `${t("sheet.disposal")}: ${(s.streams || []).map(streamName).join(", ")}` : t("sheet.depot");
    const button = mayMark && s.kind === "bin"
      ? h("button", {
        type: "button", class: s.done_ms ? "secondary mark" : "mark",
        onclick: async () => {
          await api.markStop(state.municipality, plan.id, truck.truck_id, s.index, !s.done_ms);
          toast(t("common.saved"));
          window.dispatchEvent(new HashChangeEvent("hashchange"));
        },
      }, s.done_ms ? t("sheet.undo") : t("sheet.mark"))
      : h("span", { class: "tick" });
    return h("li", { class: [s.kind, s.done_ms ? "done" : ""].join(" "), dataset: { stop: s.index, kind: s.kind, done: s.done_ms ? "1" : "0" } },
      h("span", { class: "n" }, `${i + 1}`),
      h("div", {},
        h("div", { class: "addr" }, s.address || s.name || s.site_id || ""),
        h("div", { class: "what muted" }, `${s.eta_ms ? `${t("sheet.eta")} ${clock(s.eta_ms)} · ` : ""}${what}`)),
      button);
  });
  main.replaceChildren(h("div", { class: "panel sheet", id: "route-sheet" },
    h("div", { class: "toolbar" },
      h("h1", {}, `${t("sheet.title")} · ${truck.name || truck.truck_id} · ${plan.date}`),
      h("button", { type: "button", class: "secondary no-print", onclick: () => window.print() }, t("sheet.print"))),
    h("p", { class: "figures" },
      h("span", {}, `${total} ${t("plan.nstops")}`),
      h("span", {}, `${number(truck.km, 1)} km`),
      h("span", {}, duration(truck.duration_s)),
      h("span", { id: "sheet-progress" }, `${done}/${total} ${t("sheet.progress")}`)),
    h("ol", {}, ...items)));
}
