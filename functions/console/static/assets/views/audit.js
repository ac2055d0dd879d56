// Audit (admins, audit.read): one UTC day of the audit trail, newest first, as the API keeps it.

import { getAll } from "../api.js";
import { el, field, formatTime, replace, table } from "../dom.js";
import { actionForm, fill, partial } from "../ui.js";

export function allowed(may) {
  return may("audit.read");
}

export async function render(container) {
  const utcToday = new Date().toISOString().slice(0, 10); // the trail is kept by UTC day
  const day = el("input", { type: "date", name: "day", required: true, value: utcToday, max: utcToday });
  const records = el("div");
  const show = () => fill(records, () => auditDay(day.value));
  const form = actionForm({ class: "filters", "aria-label": "Audit day" }, field("Day (UTC)", day), "Show", show);
  replace(container, el("h1", {}, "Audit trail"), form, records);
  await show();
}

/** "fault_id=abc, reason=vandalism" */
function targetsText(targets) {
  const entries = Object.entries(targets || {});
  return entries.length ? entries.map(([key, value]) => `${key}=${value}`).join(", ") : "—";
}

async function auditDay(day) {
  const listing = await getAll("/audit", { day });
  const columns = [
    { label: "When", value: (r) => formatTime(r.at) },
    { label: "Who", value: (r) => r.username },
    { label: "Request", value: (r) => `${r.method} ${r.route}` },
    { label: "Targets", value: (r) => targetsText(r.targets), className: "wrap" },
    { label: "Status", value: (r) => String(r.status), className: "num" },
    { label: "Note", value: (r) => r.note || "—" },
  ];
  return [partial(listing), table(columns, listing.items, { empty: "Nothing was changed that day." })];
}
