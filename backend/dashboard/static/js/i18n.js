// Danish and English. Fraction names come from the server (smartbins/codes.py), so they are
// spelled as municipalities write them and defined in one place.

const STRINGS = {
  en: {
    "nav.map": "Map", "nav.alerts": "Alerts", "nav.plan": "Plan", "nav.charts": "Collections",
    "nav.fleet": "Fleet health",
    "login.title": "Log in", "login.token": "API token", "login.submit": "Log in",
    "login.logout": "Log out", "login.help": "Paste the token an administrator created for you (smartbins token create). It is kept in this browser only.",
    "login.bad": "The server did not accept this token.",
    "role.viewer": "viewer", "role.technician": "technician", "role.planner": "planner", "role.admin": "admin",
    "map.colour": "Colour by", "map.fill": "fill now", "map.forecast": "forecast", "map.stream": "Stream",
    "map.area": "Area", "map.all": "all", "map.routes": "next collection's routes", "map.bins": "bins shown",
    "map.noreading": "no reading", "map.depot": "depot", "map.disposal": "disposal site",
    "map.noforecast": "No forecast yet: bins without one are grey.", "map.full": "full",
    "bin.title": "Bin", "bin.history": "Fill history", "bin.emptyings": "Detected emptyings",
    "bin.forecast": "Forecast", "bin.band": "band", "bin.threshold": "full threshold",
    "bin.volume": "Volume", "bin.site": "Site", "bin.device": "Device", "bin.last": "Last reading",
    "bin.none": "No readings in this period.", "bin.days": "days",
    "alerts.title": "Alerts", "alerts.state": "State", "alerts.kind": "Kind", "alerts.bin": "Bin",
    "alerts.device": "Device", "alerts.since": "Raised", "alerts.ack": "Acknowledge",
    "alerts.resolve": "Resolve", "alerts.none": "No alerts.", "alerts.detail": "Detail",
    "state.open": "open", "state.acknowledged": "acknowledged", "state.resolved": "resolved",
    "state.all": "all",
    "kind.full": "full", "kind.fire": "fire", "kind.tilt": "tilted or knocked over",
    "kind.low_battery": "low battery", "kind.offline": "offline", "kind.sensor_fault": "sensor fault", "kind.forecast_overflow": "will overflow (forecast)",
    "kind.forecast_overflow": "will overflow",
    "plan.title": "Plan", "plan.date": "Date", "plan.none": "No plan for this day.", "plan.notrip": "No truck goes out on this day: no bin is due. Next collection per stream:",
    "plan.truck": "Truck", "plan.stops": "Stops", "plan.nstops": "stops", "plan.km": "km", "plan.time": "Time",
    "plan.load": "Load", "plan.trips": "Disposal trips", "plan.skipped": "Skipped bins",
    "plan.risk": "Overflow risk", "plan.sheet": "Route sheet", "plan.done": "done",
    "plan.expected": "Expected fill", "plan.violations": "The routes break rules", "plan.streams": "Streams",
    "sheet.title": "Route sheet", "sheet.stop": "Stop", "sheet.address": "Address",
    "sheet.mark": "Done", "sheet.undo": "Undo", "sheet.disposal": "Unload at",
    "sheet.depot": "Depot", "sheet.print": "Print", "sheet.eta": "ETA", "sheet.progress": "done",
    "charts.title": "Collections per stream", "charts.emptyings": "Emptyings",
    "charts.collections": "Planned collections", "charts.fillAtEmptying": "Mean fill at emptying [%]",
    "charts.days": "Last days", "charts.lowShare": "Emptied under 25 % full [% of emptyings]", "charts.none": "No data yet.",
    "fleet.title": "Fleet health", "fleet.visit": "Devices to visit", "fleet.device": "Device",
    "fleet.battery": "Battery", "fleet.signal": "Signal", "fleet.lastSeen": "Last seen",
    "fleet.faults": "Faults", "fleet.firmware": "Firmware", "fleet.reason": "Why",
    "fleet.all": "All devices", "fleet.reboots": "Reboots", "fleet.backlog": "Buffered",
    "fleet.none": "Nothing to visit.", "fleet.sensorFaults": "sensor faults",
    "common.loading": "Loading…", "common.error": "Error", "common.forbidden": "Your role may not do this.",
    "common.ago": "ago", "common.never": "never", "common.saved": "Saved.",
  },
  da: {
    "nav.map": "Kort", "nav.alerts": "Alarmer", "nav.plan": "Plan", "nav.charts": "Tømninger",
    "nav.fleet": "Sensorer",
    "login.title": "Log ind", "login.token": "API-nøgle", "login.submit": "Log ind",
    "login.logout": "Log ud", "login.help": "Indsæt den nøgle, en administrator har oprettet til dig (smartbins token create). Den gemmes kun i denne browser.",
    "login.bad": "Serveren godkendte ikke nøglen.",
    "role.viewer": "læser", "role.technician": "tekniker", "role.planner": "planlægger", "role.admin": "administrator",
    "map.colour": "Farve efter", "map.fill": "fyldning nu", "map.forecast": "prognose", "map.stream": "Fraktion",
    "map.area": "Område", "map.all": "alle", "map.routes": "næste indsamlings ruter", "map.bins": "beholdere vist",
    "map.noreading": "ingen måling", "map.depot": "depot", "map.disposal": "modtageanlæg",
    "map.noforecast": "Ingen prognose endnu: beholdere uden prognose er grå.", "map.full": "fuld",
    "bin.title": "Beholder", "bin.history": "Fyldningshistorik", "bin.emptyings": "Registrerede tømninger",
    "bin.forecast": "Prognose", "bin.band": "bånd", "bin.threshold": "grænse for fuld",
    "bin.volume": "Volumen", "bin.site": "Placering", "bin.device": "Sensor", "bin.last": "Seneste måling",
    "bin.none": "Ingen målinger i perioden.", "bin.days": "dage",
    "alerts.title": "Alarmer", "alerts.state": "Status", "alerts.kind": "Type", "alerts.bin": "Beholder",
    "alerts.device": "Sensor", "alerts.since": "Rejst", "alerts.ack": "Kvittér",
    "alerts.resolve": "Afslut", "alerts.none": "Ingen alarmer.", "alerts.detail": "Detaljer",
    "state.open": "åben", "state.acknowledged": "kvitteret", "state.resolved": "afsluttet",
    "state.all": "alle",
    "kind.full": "fuld", "kind.fire": "brand", "kind.tilt": "vippet eller væltet",
    "kind.low_battery": "lavt batteri", "kind.offline": "offline", "kind.sensor_fault": "sensorfejl", "kind.forecast_overflow": "løber over (prognose)",
    "kind.forecast_overflow": "vil løbe over",
    "plan.title": "Plan", "plan.date": "Dato", "plan.none": "Ingen plan for denne dag.", "plan.notrip": "Ingen bil kører denne dag: ingen beholder skal tømmes. Næste indsamling pr. fraktion:",
    "plan.truck": "Bil", "plan.stops": "Stop", "plan.nstops": "stop", "plan.km": "km", "plan.time": "Tid",
    "plan.load": "Last", "plan.trips": "Tømninger på anlæg", "plan.skipped": "Udeladte beholdere",
    "plan.risk": "Risiko for overløb", "plan.sheet": "Køreliste", "plan.done": "udført",
    "plan.expected": "Forventet fyldning", "plan.violations": "Ruterne bryder regler", "plan.streams": "Fraktioner",
    "sheet.title": "Køreliste", "sheet.stop": "Stop", "sheet.address": "Adresse",
    "sheet.mark": "Udført", "sheet.undo": "Fortryd", "sheet.disposal": "Aflæs ved",
    "sheet.depot": "Depot", "sheet.print": "Udskriv", "sheet.eta": "Forventet", "sheet.progress": "udført",
    "charts.title": "Tømninger pr. fraktion", "charts.emptyings": "Tømninger",
    "charts.collections": "Planlagte tømninger", "charts.fillAtEmptying": "Gns. fyldning ved tømning [%]",
    "charts.days": "Seneste dage", "charts.lowShare": "Tømt under 25 % fuld [% af tømninger]", "charts.none": "Ingen data endnu.",
    "fleet.title": "Sensorernes tilstand", "fleet.visit": "Sensorer der skal besøges", "fleet.device": "Sensor",
    "fleet.battery": "Batteri", "fleet.signal": "Signal", "fleet.lastSeen": "Sidst set",
    "fleet.faults": "Fejl", "fleet.firmware": "Firmware", "fleet.reason": "Hvorfor",
    "fleet.all": "Alle sensorer", "fleet.reboots": "Genstarter", "fleet.backlog": "I buffer",
    "fleet.none": "Ingen skal besøges.", "fleet.sensorFaults": "sensorfejl",
    "common.loading": "Henter…", "common.error": "Fejl", "common.forbidden": "Din rolle må ikke dette.",
    "common.ago": "siden", "common.never": "aldrig", "common.saved": "Gemt.",
  },
};

let lang = "en";
let fractions = {}; // code -> {da, en}

export function setLanguage(code) {
  lang = STRINGS[code] ? code : "en";
  document.documentElement.lang = lang;
  for (const el of document.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
}

export function language() { return lang; }

export function setFractions(table) { fractions = table || {}; }

export function t(key) {
  return STRINGS[lang][key] ?? STRINGS.en[key] ?? key;
}

// "paper+cardboard" -> "papir og pap" / "paper and cardboard"
export function streamName(stream) {
  if (!stream) return "";
  const names = stream.split("+").map((c) => (fractions[c] ? fractions[c][lang] : c));
  if (names.length === 1) return names[0];
  const and = lang === "da" ? " og " : " and ";
  return names.slice(0, -1).join(", ") + and + names[names.length - 1];
}

export function number(x, digits = 0) {
  if (x === null || x === undefined || Number.isNaN(x)) return "–";
  return x.toLocaleString(lang === "da" ? "da-DK" : "en-GB", {
    minimumFractionDigits: digits, maximumFractionDigits: digits,
  });
}

export function dateTime(ms) {
  if (ms === null || ms === undefined) return "–";
  return new Date(ms).toLocaleString(lang === "da" ? "da-DK" : "en-GB", {
    dateStyle: "short", timeStyle: "short",
  });
}

export function clock(ms) {
  if (ms === null || ms === undefined) return "–";
  return new Date(ms).toLocaleTimeString(lang === "da" ? "da-DK" : "en-GB", {
    hour: "2-digit", minute: "2-digit",
  });
}

export function ago(ms, now = Date.now()) {
  if (ms === null || ms === undefined) return t("common.never");
  const s = Math.max(0, (now - ms) / 1000);
  const unit = s < 3600 ? [s / 60, "min"] : s < 172800 ? [s / 3600, "h"] : [s / 86400, lang === "da" ? "d" : "d"];
  return `${number(unit[0])} ${unit[1]} ${t("common.ago")}`;
}

export function duration(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  const h = Math.floor(seconds / 3600);
  const m = Math.round((seconds % 3600) / 60);
  return `${h}:${String(m).padStart(2, "0")}`;
}
