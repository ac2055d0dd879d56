// Faults and alerts: open faults by severity, then age (oldest first); acknowledge, resolve or
// exclude from uptime with a note (faults.write); the alerts operators were sent. The open faults
// are polled every 3 s while the page is visible, and new ones are highlighted.

import { getAll, path, post } from "../api.js";
import { badge, el, field, formatAge, formatTime, message, replace, section, select, table } from "../dom.js";
import { every, failure, fill, partial } from "../ui.js";

const POLL_MS = 3_000;
const HIGHLIGHT_MS = 60_000; // a new fault stays highlighted this long
const ALERT_DAYS = 7;
const ALERT_PAGES = 5;
const SEVERITY_ORDER = ["safety_critical", "major", "minor", "info"];
const EXCLUSION_REASONS = [
  "utility_outage",
  "network_outage",
  "vehicle_fault",
  "scheduled_maintenance",
  "vandalism",
  "natural_disaster",
];

export function allowed(may) {
  return may("faults.read");
}

/** Worst first; within a severity the longest open first. */
function byUrgency(faults) {
  const rank = (f) => {
    const index = SEVERITY_ORDER.indexOf(f.severity);
    return index === -1 ? SEVERITY_ORDER.length : index;
  };
  return [...faults].sort((a, b) => rank(a) - rank(b) || Date.parse(a.first_seen) - Date.parse(b.first_seen));
}

export async function render(container, context) {
  const openPanel = el("div");
  const announcer = el("div", { class: "announcer", role: "status", "aria-live": "polite" });
  const alertsPanel = el("div");
  replace(
    container,
    el("h1", {}, "Faults"),
    announcer,
    section("Open faults", openPanel),
    section(`Alerts sent (last ${ALERT_DAYS} days)`, alertsPanel),
  );
  const board = openFaultBoard(openPanel, announcer, context);
  await Promise.all([board.refresh(), fill(alertsPanel, alertHistory)]);
  every(POLL_MS, board.refresh, context.signal);
}

/** The open faults table, redrawn only when the faults changed; action forms survive redraws. */
function openFaultBoard(panel, announcer, context) {
  let known = null; // fault+episode keys already seen; null before the first load
  let shownSignature = "";
  const firstSeenAt = new Map(); // key -> when this browser first saw it (for the highlight)
  const actionNodes = new Map(); // fault id -> its action cell, kept while the fault is open

  const refresh = async () => {
    let listing;
    try {
      listing = await getAll("/faults", { open: "true" });
    } catch (error) {
      replace(panel, failure(error));
      shownSignature = "";
      return;
    }
    const now = Date.now();
    const keys = listing.items.map(faultKey);
    const arrived = known === null ? [] : listing.items.filter((f) => !known.has(faultKey(f)));
    for (const fault of arrived) {
      firstSeenAt.set(faultKey(fault), now);
    }
    known = new Set(keys);
    if (arrived.length) {
      replace(
        announcer,
        message(
          "info",
          arrived.map((f) => `New ${f.severity.replaceAll("_", " ")} fault on ${f.charger_id}: ${f.code}`).join(". "),
        ),
      );
    }
    const isNew = (f) => now - (firstSeenAt.get(faultKey(f)) ?? -Infinity) < HIGHLIGHT_MS;
    const signature = JSON.stringify([listing.items, listing.items.filter(isNew).map(faultKey)]);
    if (signature === shownSignature) {
      return; // unchanged: leave the table (and any note being typed) alone
    }
    shownSignature = signature;
    for (const id of [...actionNodes.keys()]) {
      if (!listing.items.some((f) => f.fault_id === id)) {
        actionNodes.delete(id);
      }
    }
    const actions = (f) => {
      if (!actionNodes.has(f.fault_id)) {
        actionNodes.set(f.fault_id, faultActions(f, refresh));
      }
      return actionNodes.get(f.fault_id);
    };
    replace(
      panel,
      partial(listing),
      faultTable(byUrgency(listing.items), isNew, context.may("faults.write") ? actions : null),
    );
  };
  return { refresh };
}

function faultKey(fault) {
  return `${fault.fault_id}#${fault.episode}`;
}

function faultTable(faults, isNew, actions) {
  const columns = [
    { label: "Severity", value: (f) => badge(f.severity.replaceAll("_", " "), f.severity) },
    {
      label: "Charger",
      value: (f) => el("a", { href: `#/charger/${encodeURIComponent(f.charger_id)}` }, f.charger_id),
    },
    { label: "Site", value: (f) => f.site_id || "—" },
    { label: "Connector", value: (f) => String(f.connector_id) },
    { label: "Fault", value: (f) => `${f.kind}: ${f.code}${f.vendor_error_code ? ` (${f.vendor_error_code})` : ""}` },
    { label: "State", value: (f) => stateText(f) },
    { label: "Open for", value: (f) => el("span", { title: formatTime(f.first_seen) }, formatAge(f.first_seen)) },
    { label: "Seen", value: (f) => `${f.occurrences}×, last ${formatTime(f.last_seen)}` },
    {
      label: "Uptime",
      value: (f) => (f.excluded_reason ? badge(`excluded: ${f.excluded_reason}`, "excluded") : "counted"),
    },
  ];
  if (actions) {
    columns.push({ label: "Action", value: actions });
  }
  return table(columns, faults, {
    empty: "No open faults.",
    rowClass: (f) =>
      [isNew(f) ? "new" : null, f.severity === "safety_critical" ? "safety" : null].filter(Boolean).join(" ") || null,
  });
}

function stateText(fault) {
  if (fault.state === "acknowledged") {
    return `acknowledged by ${fault.acknowledged_by || "?"} ${formatTime(fault.acknowledged_at)}`;
  }
  return fault.state;
}

/** Acknowledge / resolve / exclude, each with the note the audit trail keeps. */
function faultActions(fault, refresh) {
  const note = el("textarea", {
    name: "note",
    rows: "2",
    maxlength: "500",
    placeholder: "Note (kept in the audit trail)",
  });
  const reason = select(
    "reason",
    [["", "— withdraw exclusion —"], ...EXCLUSION_REASONS.map((r) => [r, r.replaceAll("_", " ")])],
    fault.excluded_reason || "utility_outage",
  );
  const outcome = el("div", { class: "outcome", "aria-live": "polite" });
  const run = (label, send) => {
    const button = el("button", { type: "button" }, label);
    button.addEventListener("click", async () => {
      for (const b of form.querySelectorAll("button")) {
        b.disabled = true;
      }
      replace(outcome);
      try {
        const changed = await send();
        replace(outcome, message("ok", changed.changed === false ? `${label}: nothing to change.` : `${label}: done.`));
        note.value = "";
        await refresh();
      } catch (error) {
        replace(outcome, failure(error));
      } finally {
        for (const b of form.querySelectorAll("button")) {
          b.disabled = false;
        }
      }
    });
    return button;
  };
  const target = (action) => path("faults", fault.fault_id, action);
  const form = el(
    "div",
    { class: "fault-actions" },
    field("Note", note),
    el(
      "div",
      { class: "buttons" },
      fault.state === "open" ? run("Acknowledge", () => post(target("ack"), { note: note.value || null })) : null,
      run("Resolve", () => post(target("resolve"))),
    ),
    el(
      "div",
      { class: "buttons" },
      field("Exclusion reason", reason),
      run("Exclude", () => post(target("exclude"), { reason: reason.value || null, note: note.value || null })),
    ),
    outcome,
  );
  return el("details", {}, el("summary", {}, "Act"), form);
}

async function alertHistory() {
  const since = new Date(Date.now() - ALERT_DAYS * 86_400_000).toISOString();
  const listing = await getAll("/alerts", { since }, { maxPages: ALERT_PAGES });
  const alerts = listing.items.sort((a, b) => Date.parse(b.received_at) - Date.parse(a.received_at));
  const columns = [
    { label: "Sent", value: (a) => formatTime(a.received_at) },
    { label: "Severity", value: (a) => badge(a.severity.replaceAll("_", " "), a.severity) },
    { label: "Kind", value: (a) => a.kind },
    { label: "Subject", value: (a) => a.subject },
    { label: "Episode", value: (a) => String(a.episode) },
  ];
  return [partial(listing), table(columns, alerts, { empty: "No alerts sent." })];
}
