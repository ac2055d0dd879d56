// Fleet: chargers and connectors by state, counted per site (from /fleet/health, which carries
// each charger's link, connector statuses and open faults) joined with /chargers (firmware, last
// seen); filter by site, search by id; a row opens the charger's page.

import { getAll, PER_CHARGER_PAGES } from "../api.js";
import { badge, el, field, formatTime, replace, section, select, table } from "../dom.js";
import { loading, partial } from "../ui.js";

// Connector statuses, grouped as operators count them: OCPP 1.6's, and 2.0.1's (Occupied: a car
// plugged in, as 1.6's Preparing; in a transaction its chargingState, EVConnected and Idle included).
const CONNECTOR_STATE = {
  Available: "available",
  Preparing: "charging",
  Occupied: "charging",
  EVConnected: "charging",
  Idle: "charging",
  Charging: "charging",
  SuspendedEV: "charging",
  SuspendedEVSE: "charging",
  Finishing: "charging",
  Reserved: "unavailable",
  Unavailable: "unavailable",
  Faulted: "faulted",
};
const COUNTED = ["online", "offline", "available", "charging", "faulted", "unavailable"];

export function allowed(may) {
  return may("chargers.read");
}

export async function render(container, context) {
  replace(container, el("h1", {}, "Fleet"), loading());
  const [health, chargers] = await Promise.all([getAll("/fleet/health", {}, PER_CHARGER_PAGES), getAll("/chargers")]);
  const details = new Map(chargers.items.map((c) => [c.charger_id, c]));
  const rows = health.items.map((row) => ({ ...row, detail: details.get(row.charger_id) || {} }));
  const sites = [...new Set(rows.map((r) => r.site_id))].sort();

  const siteFilter = select("site", [["", "All sites"], ...sites.map((s) => [s, s || "(no site)"])], "");
  const search = el("input", { type: "search", name: "search", placeholder: "Charger id", autocomplete: "off" });
  const counts = el("div");
  const list = el("div");
  const redraw = () => {
    const shown = filtered(rows, siteFilter.value, search.value.trim().toLowerCase());
    replace(counts, countsTable(shown));
    replace(list, chargerTable(shown, context));
  };
  siteFilter.addEventListener("change", redraw);
  search.addEventListener("input", redraw);
  replace(
    container,
    el("h1", {}, "Fleet"),
    el("div", { class: "filters" }, field("Site", siteFilter), field("Search", search)),
    partial(health),
    section("By site", counts),
    section("Chargers", list),
  );
  redraw();
}

function filtered(rows, site, text) {
  return rows.filter(
    (r) => (site === "" || r.site_id === site) && (text === "" || r.charger_id.toLowerCase().includes(text)),
  );
}

/** Chargers online/offline and connectors by state, per site (connector 0 is the charger itself). */
function siteCounts(rows) {
  const bySite = new Map();
  for (const row of rows) {
    const counts = bySite.get(row.site_id) || Object.fromEntries(COUNTED.map((k) => [k, 0]));
    counts[row.online ? "online" : "offline"] += 1;
    for (const [connector, status] of Object.entries(row.connectors || {})) {
      const state = CONNECTOR_STATE[status];
      if (connector !== "0" && state) {
        counts[state] += 1;
      }
    }
    bySite.set(row.site_id, counts);
  }
  return [...bySite.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([site, counts]) => ({ site, ...counts }));
}

function countsTable(rows) {
  const columns = [
    { label: "Site", value: (r) => r.site || "(no site)" },
    { label: "Chargers online", value: (r) => String(r.online), className: "num" },
    { label: "Chargers offline", value: (r) => String(r.offline), className: "num" },
    { label: "Connectors available", value: (r) => String(r.available), className: "num" },
    { label: "Charging", value: (r) => String(r.charging), className: "num" },
    { label: "Faulted", value: (r) => String(r.faulted), className: "num" },
    { label: "Unavailable", value: (r) => String(r.unavailable), className: "num" },
  ];
  return table(columns, siteCounts(rows), { empty: "No chargers." });
}

function chargerTable(rows, context) {
  const columns = [
    {
      label: "Charger",
      value: (r) => el("a", { href: `#/charger/${encodeURIComponent(r.charger_id)}` }, r.charger_id),
    },
    { label: "Site", value: (r) => r.site_id || "—" },
    { label: "Link", value: (r) => badge(r.online ? "online" : "offline") },
    { label: "Connectors", value: (r) => connectorBadges(r.connectors) },
    { label: "Open faults", value: (r) => faultSummary(r) },
    { label: "Firmware", value: (r) => r.detail.firmware_version || "—" },
    { label: "Last seen", value: (r) => formatTime(r.detail.last_seen_at) },
  ];
  return table(columns, rows, {
    empty: "No charger matches.",
    onRowClick: (r) => context.go(`#/charger/${encodeURIComponent(r.charger_id)}`),
  });
}

function connectorBadges(connectors) {
  const entries = Object.entries(connectors || {}).filter(([id]) => id !== "0");
  return entries.length
    ? el(
        "span",
        { class: "badges" },
        entries.map(([id, status]) => badge(`${id}: ${status}`, CONNECTOR_STATE[status] || "unknown")),
      )
    : "—";
}

function faultSummary(row) {
  const counts = Object.entries(row.open_faults || {});
  if (!counts.length) {
    return "none";
  }
  return el(
    "span",
    { class: "badges" },
    counts.map(([severity, n]) => badge(`${n} ${severity.replaceAll("_", " ")}`, severity)),
    row.worst ? el("span", { class: "hint" }, row.worst) : null,
  );
}
