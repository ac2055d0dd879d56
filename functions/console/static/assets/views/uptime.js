// Uptime: NEVI uptime per connector for a month (or the twelve months ending with it), the same
// figures as `chargenet report uptime`: a chart against the 97 % bar and a table with excluded
// outages marked.

import { getAll, PER_CHARGER_PAGES } from "../api.js";
import { barChart, chartBox } from "../charts.js";
import { badge, el, field, formatPercent, message, replace, section, table } from "../dom.js";
import { actionForm, failure, loading, partial, redraws } from "../ui.js";

const NEVI_TARGET = 97;

export function allowed(may) {
  return may("reports.read");
}

function thisMonth() {
  return new Date().toISOString().slice(0, 7); // the API's months are UTC months
}

export async function render(container, context) {
  const month = el("input", { type: "month", name: "month", required: true, value: thisMonth(), max: thisMonth() });
  const twelve = el("input", { type: "checkbox", name: "twelve_months" });
  const report = el("div");
  const nextDrawing = redraws(context.signal);
  const show = async () => {
    const signal = nextDrawing();
    try {
      await uptimeReport(report, month.value, twelve.checked, signal);
    } catch (error) {
      replace(report, failure(error));
    }
  };
  const form = actionForm(
    { class: "filters", "aria-label": "Uptime period" },
    [field("Month", month), el("label", { class: "check" }, twelve, " the twelve months ending with it")],
    "Show",
    show,
  );
  replace(container, el("h1", {}, "Uptime"), form, report);
  await show();
}

async function uptimeReport(panel, month, twelveMonths, signal) {
  replace(panel, loading());
  const listing = await getAll(
    "/reports/uptime",
    { month, twelve_months: twelveMonths ? "true" : null },
    PER_CHARGER_PAGES,
  );
  const rows = listing.items;
  if (rows.length === 0) {
    replace(panel, section(`Uptime ${month}`, message("info", "No connectors reported in this period.")));
    return;
  }
  const meeting = rows.filter((r) => r.meets_97).length;
  const chart = chartBox(`Uptime per connector against the ${NEVI_TARGET} % bar`);
  replace(
    panel,
    section(
      `Uptime ${rows[0]?.period || month}`,
      partial(listing),
      message(
        meeting === rows.length ? "ok" : "info",
        `${meeting} of ${rows.length} connectors meet ${NEVI_TARGET} %.`,
      ),
      chart.box,
      uptimeTable(rows),
    ),
  );
  const labels = rows.map((r) => `${r.charger_id}/${r.connector_id}`);
  await barChart(chart.canvas, {
    labels,
    datasets: [
      { label: "Uptime %", data: rows.map((r) => Number(r.uptime_percent)) },
      {
        type: "line",
        label: `${NEVI_TARGET} % (NEVI)`,
        data: labels.map(() => NEVI_TARGET),
        pointRadius: 0,
        borderDash: [6, 4],
      },
    ],
    yTitle: "%",
    yMin: Math.min(NEVI_TARGET - 7, ...rows.map((r) => Math.floor(Number(r.uptime_percent)))),
    yMax: 100,
    signal,
  });
}

function uptimeTable(rows) {
  const columns = [
    {
      label: "Charger",
      value: (r) => el("a", { href: `#/charger/${encodeURIComponent(r.charger_id)}` }, r.charger_id),
    },
    { label: "Connector", value: (r) => String(r.connector_id) },
    { label: "Uptime", value: (r) => formatPercent(r.uptime_percent), className: "num" },
    { label: "Outage", value: (r) => `${Number(r.outage_min).toLocaleString()} min`, className: "num" },
    {
      label: "Excluded outage",
      value: (r) =>
        Number(r.excluded_min) > 0 ? badge(`${Number(r.excluded_min).toLocaleString()} min excluded`, "excluded") : "—",
      className: "num",
    },
    { label: `${NEVI_TARGET} %`, value: (r) => (r.meets_97 ? badge("meets", "ok") : badge("below", "major")) },
  ];
  return table(columns, rows, {
    rowClass: (r) => (r.meets_97 ? null : "below"),
  });
}
