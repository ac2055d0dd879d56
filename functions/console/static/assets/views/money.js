// Money: energy (kWh) and revenue per day and per site over a chosen range, from the CDRs
// (/reports/energy), and utilisation per connector (/reports/utilisation); each panel says
// "not available" when this deployment's API has no such report (404).

import { getAll, optional, PER_CHARGER_PAGES } from "../api.js";
import { barChart, chartBox } from "../charts.js";
import {
  el,
  field,
  formatDay,
  formatKwh,
  formatMoney,
  formatPercent,
  isoDay,
  replace,
  section,
  table,
} from "../dom.js";
import { actionForm, failure, loading, notAvailable, partial, redraws } from "../ui.js";

const DEFAULT_DAYS = 30;
const MAX_CHART_DAYS = 92; // the API's longest range (MAX_REPORT_DAYS)
// The energy report scans CDRs a page at a time: its pages may be large (ENERGY_CDRS_MAX_LIMIT).
const ENERGY_PAGES = { itemsKey: "days", limit: 1000, maxPages: 50 };

export function allowed(may) {
  return may("reports.read");
}

export async function render(container, context) {
  const today = new Date();
  const from = el("input", {
    type: "date",
    name: "from",
    required: true,
    value: isoDay(new Date(today.getTime() - (DEFAULT_DAYS - 1) * 86_400_000)),
  });
  const to = el("input", { type: "date", name: "to", required: true, value: isoDay(today) });
  const site = el("input", { type: "text", name: "site", placeholder: "all sites", autocomplete: "off" });
  const energyPanel = el("div");
  const utilisationPanel = el("div");
  const nextDrawing = redraws(context.signal);
  const show = async () => {
    const signal = nextDrawing();
    const query = { from: from.value, to: to.value, site: site.value.trim() };
    await Promise.all([energyReport(energyPanel, query, signal), utilisationReport(utilisationPanel, query, signal)]);
  };
  const form = actionForm(
    { class: "filters", "aria-label": "Report range" },
    [field("From", from), field("To", to), field("Site", site)],
    "Show",
    show,
  );
  replace(
    container,
    el("h1", {}, "Money"),
    form,
    section("Energy and revenue", energyPanel),
    section("Utilisation per connector", utilisationPanel),
  );
  await show();
}

// ---------------------------------------------------------------- energy and revenue

/**
 * Sums rows by a key: Map key -> {energy, revenue: {currency: amount}, sessions}. The API sends
 * one page of CDRs per answer, so one day and site can come in several rows: they add up here.
 */
function totals(rows, keyOf) {
  const sums = new Map();
  for (const row of rows) {
    const key = keyOf(row);
    const sum = sums.get(key) || { energy: 0, revenue: {}, sessions: 0 };
    sum.energy += Number(row.energy_kwh);
    const { amount, currency } = row.revenue || {};
    if (currency) {
      sum.revenue[currency] = (sum.revenue[currency] || 0) + Number(amount);
    }
    sum.sessions += Number(row.sessions || 0);
    sums.set(key, sum);
  }
  return new Map([...sums].sort(([a], [b]) => String(a).localeCompare(String(b))));
}

/** Every day from `from` to `to` (YYYY-MM-DD, both included), at most MAX_CHART_DAYS. */
function daysBetween(from, to) {
  const days = [];
  const last = new Date(`${to}T00:00:00Z`);
  for (const day = new Date(`${from}T00:00:00Z`); day <= last && days.length < MAX_CHART_DAYS;) {
    days.push(day.toISOString().slice(0, 10));
    day.setUTCDate(day.getUTCDate() + 1);
  }
  return days;
}

/** A report's listing, or null with "not available" (404) or the error shown in `panel`. */
async function readReport(panel, what, route, query, pages) {
  replace(panel, loading());
  try {
    const listing = await optional(() => getAll(route, query, pages));
    if (listing === null) {
      replace(panel, notAvailable(what));
    }
    return listing;
  } catch (error) {
    replace(panel, failure(error));
    return null;
  }
}

async function energyReport(panel, query, signal) {
  const listing = await readReport(panel, "The energy and revenue report", "/reports/energy", query, ENERGY_PAGES);
  if (listing === null) {
    return;
  }
  const rows = listing.items;
  const days = daysBetween(query.from, query.to); // days without CDRs show as zero, not as gaps
  const sites = [...new Set(rows.map((r) => r.site_id))].sort();
  const currencies = [...new Set(rows.map((r) => r.revenue?.currency).filter(Boolean))].sort();
  const energyByDay = chartBox("Energy per day and site, kWh");
  const revenueByDay = chartBox("Revenue per day");
  const bySite = chartBox("Energy per site, kWh");
  const bySiteTotals = totals(rows, (r) => r.site_id);
  const byDayAndSite = totals(rows, (r) => `${r.day}|${r.site_id}`);
  replace(
    panel,
    partial(listing),
    el("h3", {}, "Energy per day (kWh)"),
    energyByDay.box,
    el("h3", {}, "Revenue per day"),
    revenueByDay.box,
    el("h3", {}, "Energy per site (kWh)"),
    bySite.box,
    siteTable(bySiteTotals),
    reportTable(byDayAndSite),
  );
  const byDay = totals(rows, (r) => r.day);
  await Promise.all([
    barChart(energyByDay.canvas, {
      labels: days.map(formatDay),
      datasets: sites.map((s) => ({
        label: s || "(no site)",
        data: days.map((d) => byDayAndSite.get(`${d}|${s}`)?.energy || 0),
      })),
      stacked: true,
      yTitle: "kWh",
      signal,
    }),
    barChart(revenueByDay.canvas, {
      labels: days.map(formatDay),
      datasets: currencies.map((c) => ({ label: c, data: days.map((d) => byDay.get(d)?.revenue[c] || 0) })),
      yTitle: currencies.join(", "),
      signal,
    }),
    barChart(bySite.canvas, {
      labels: sites.map((s) => s || "(no site)"),
      datasets: [{ label: "kWh", data: sites.map((s) => bySiteTotals.get(s).energy) }],
      yTitle: "kWh",
      signal,
    }),
  ]);
}

function revenueText(revenue) {
  const entries = Object.entries(revenue);
  return entries.length
    ? entries.map(([currency, amount]) => formatMoney(amount.toFixed(2), currency)).join(" + ")
    : "—";
}

function siteTable(bySite) {
  const columns = [
    { label: "Site", value: ([site]) => site || "(no site)" },
    { label: "Energy", value: ([, sum]) => formatKwh(sum.energy), className: "num" },
    { label: "Revenue", value: ([, sum]) => revenueText(sum.revenue), className: "num" },
    { label: "Sessions", value: ([, sum]) => String(sum.sessions), className: "num" },
  ];
  return table(columns, [...bySite], { caption: "Totals per site", empty: "No CDRs in this range." });
}

function reportTable(byDayAndSite) {
  const columns = [
    { label: "Day", value: ([key]) => formatDay(key.split("|")[0]) },
    { label: "Site", value: ([key]) => key.split("|")[1] || "(no site)" },
    { label: "Energy", value: ([, sum]) => formatKwh(sum.energy), className: "num" },
    { label: "Revenue", value: ([, sum]) => revenueText(sum.revenue), className: "num" },
    { label: "Sessions", value: ([, sum]) => String(sum.sessions), className: "num" },
  ];
  return el(
    "details",
    {},
    el("summary", {}, "Per day and site"),
    table(columns, [...byDayAndSite], { empty: "No CDRs in this range." }),
  );
}

// ---------------------------------------------------------------- utilisation

async function utilisationReport(panel, query, signal) {
  const listing = await readReport(panel, "The utilisation report", "/reports/utilisation", query, PER_CHARGER_PAGES);
  if (listing === null) {
    return;
  }
  const rows = listing.items;
  const chart = chartBox("Utilisation per connector, percent of the period charging");
  const hours = (seconds) => `${(Number(seconds) / 3600).toLocaleString(undefined, { maximumFractionDigits: 1 })} h`;
  const columns = [
    { label: "Connector", value: (r) => `${r.charger_id} / ${r.connector_id}` },
    { label: "Charging", value: (r) => hours(r.charging_s), className: "num" },
    { label: "Available", value: (r) => hours(r.available_s), className: "num" },
    { label: "Period", value: (r) => hours(r.period_s), className: "num" },
    { label: "Utilisation", value: (r) => formatPercent(utilisationPercent(r)), className: "num" },
  ];
  replace(panel, partial(listing), chart.box, table(columns, rows, { empty: "No connectors in this range." }));
  await barChart(chart.canvas, {
    labels: rows.map((r) => `${r.charger_id}/${r.connector_id}`),
    datasets: [{ label: "% of the period charging", data: rows.map(utilisationPercent) }],
    yTitle: "%",
    yMax: 100,
    signal,
  });
}

/** The API's utilisation is a share of the period (0 to 1); shown as a percentage. */
function utilisationPercent(row) {
  return Math.round(Number(row.utilisation) * 100_000) / 1000;
}
