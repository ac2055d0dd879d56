// Sessions and money in detail: live sessions (polled every 5 s: energy and power rising),
// finished sessions and their CDRs, payments with refunds (payments.refund), subscribers and
// their invoices. Each part shows only with the permission that reads it.

import { get, getAll, optional, path, post } from "../api.js";
import {
  badge,
  el,
  field,
  formatAge,
  formatEnergyWh,
  formatMoney,
  formatMoneyText,
  formatPowerW,
  formatTime,
  message,
  replace,
  section,
  select,
  summaryList,
  table,
} from "../dom.js";
import { actionForm, every, failure, fill, pagedTable, partial } from "../ui.js";

const LIVE_POLL_MS = 5_000;
const FINISHED_STATES = ["completed", "billed", "stopped", "needs_review", "voided"];
const PAYMENT_STATES = ["", "captured", "refunded", "failed", "charging", "authorized", "cancelled", "checkout_open"];

export function allowed(may) {
  return ["sessions.read", "cdrs.read", "payments.read", "subscribers.read"].some(may);
}

export async function render(container, context) {
  const { may } = context;
  const detail = el("div", { class: "detail", "aria-live": "polite" });
  const live = el("div");
  replace(
    container,
    el("h1", {}, "Sessions"),
    may("sessions.read") ? section("Live sessions", live) : null,
    may("sessions.read") ? section("Finished sessions", finishedSessions(detail, may)) : null,
    detail,
    may("payments.read") ? section("Payments", payments(may)) : null,
    may("subscribers.read") ? section("Subscribers", subscribers()) : null,
  );
  if (may("sessions.read")) {
    const board = liveBoard(live);
    await board.refresh();
    every(LIVE_POLL_MS, board.refresh, context.signal);
  }
}

// ---------------------------------------------------------------- live sessions

/**
 * Power is not stored on a session: it is the energy added between two polls over the time
 * between the two readings that added it.
 */
function powerW(previous, current) {
  if (!previous || !previous.last_reading_at || !current.last_reading_at) {
    return null;
  }
  const hours = (Date.parse(current.last_reading_at) - Date.parse(previous.last_reading_at)) / 3_600_000;
  return hours > 0 ? Math.max(0, (current.energy_wh - previous.energy_wh) / hours) : null;
}

function liveBoard(panel) {
  let previous = new Map(); // session id -> its record at the last poll
  let power = new Map(); // session id -> the last power computed (kept until a new reading)
  const refresh = async () => {
    try {
      const listing = await getAll("/sessions", { state: "active" });
      const current = new Map();
      for (const s of listing.items) {
        const before = previous.get(s.session_id);
        const watts = before && before.last_reading_at !== s.last_reading_at ? powerW(before, s) : null;
        if (watts !== null) {
          power.set(s.session_id, watts);
        }
        current.set(s.session_id, s);
      }
      previous = current;
      power = new Map([...power].filter(([id]) => previous.has(id)));
      replace(
        panel,
        partial(listing),
        liveTable(listing.items, power),
        el("p", { class: "hint" }, `Updated ${new Date().toLocaleTimeString()}`),
      );
    } catch (error) {
      replace(panel, failure(error));
    }
  };
  return { refresh };
}

function liveTable(sessions, power) {
  const columns = [
    {
      label: "Charger",
      value: (s) =>
        el("a", { href: `#/charger/${encodeURIComponent(s.charger_id)}` }, `${s.charger_id} / ${s.connector_id}`),
    },
    { label: "Site", value: (s) => s.site_id || "—" },
    { label: "Started", value: (s) => formatTime(s.started_at) },
    { label: "Running", value: (s) => formatAge(s.started_at) },
    { label: "Energy", value: (s) => formatEnergyWh(s.energy_wh), className: "num" },
    {
      label: "Power",
      value: (s) => (power.has(s.session_id) ? formatPowerW(power.get(s.session_id)) : "—"),
      className: "num",
    },
    { label: "Peak", value: (s) => formatPowerW(s.peak_power_w), className: "num" },
    { label: "Tag", value: (s) => s.id_tag },
  ];
  return table(columns, sessions, { empty: "No session is charging now." });
}

// ---------------------------------------------------------------- finished sessions and CDRs

function finishedSessions(detail, may) {
  const stateSelect = select(
    "state",
    FINISHED_STATES.map((s) => [s, s.replaceAll("_", " ")]),
    "billed", // where a finished session ends up; "completed" holds it only until billing runs
  );
  const list = el("div");
  const columns = [
    { label: "Session", value: (s) => s.session_id },
    { label: "Charger", value: (s) => `${s.charger_id} / ${s.connector_id}` },
    { label: "Started", value: (s) => formatTime(s.started_at) },
    { label: "Stopped", value: (s) => formatTime(s.stopped_at) },
    { label: "Energy", value: (s) => formatEnergyWh(s.energy_wh), className: "num" },
    { label: "State", value: (s) => badge(s.state) },
    { label: "Review", value: (s) => (s.review_reasons || []).join(", ") || "—" },
  ];
  const show = () =>
    replace(
      list,
      pagedTable("/sessions", { state: stateSelect.value }, columns, {
        empty: "No sessions in this state.",
        onRowClick: may("cdrs.read") ? (s) => fill(detail, () => cdrDetail(s)) : null,
      }),
    );
  stateSelect.addEventListener("change", show);
  show();
  return [
    el("div", { class: "filters" }, field("State", stateSelect)),
    may("cdrs.read") ? el("p", { class: "hint" }, "Choose a session to see its CDR.") : null,
    list,
  ];
}

async function cdrDetail(session) {
  const cdr = await optional(() => get(path("cdrs", session.session_id)));
  const title = `CDR of session ${session.session_id}`;
  if (cdr === null) {
    return section(title, message("info", "No CDR yet: the session is not billed."));
  }
  const rows = [
    ["CDR", cdr.cdr_id],
    ["Charger", `${cdr.charger_id} / ${cdr.connector_id}`],
    ["From", formatTime(cdr.start_date_time)],
    ["To", formatTime(cdr.end_date_time)],
    ["Energy", formatEnergyWh(cdr.energy_wh)],
    ["Total excl. VAT", formatMoney(cdr.total_excl_vat, cdr.currency)],
    ["Total incl. VAT", formatMoney(cdr.total_incl_vat, cdr.currency)],
    cdr.credit_reference_id ? ["Credit for", cdr.credit_reference_id] : null,
  ];
  return section(title, summaryList(rows));
}

// ---------------------------------------------------------------- payments and refunds

function payments(may) {
  const stateSelect = select(
    "state",
    PAYMENT_STATES.map((s) => [s, s ? s.replaceAll("_", " ") : "any state"]),
    "",
  );
  const list = el("div");
  const columns = [
    { label: "Created", value: (p) => formatTime(p.created_at) },
    { label: "State", value: (p) => badge(p.state) },
    { label: "Charger", value: (p) => `${p.charger_id} / ${p.connector_id}` },
    { label: "Session", value: (p) => p.session_id || "—" },
    { label: "Method", value: (p) => p.method },
    { label: "Captured", value: (p) => formatMoneyText(p.captured), className: "num" },
    { label: "Refunded", value: (p) => formatMoneyText(p.refunded), className: "num" },
    { label: "CDR total", value: (p) => formatMoneyText(p.cdr_total_incl_vat), className: "num" },
  ];
  if (may("payments.refund")) {
    columns.push({ label: "Refund", value: (p) => (refundable(p) ? refundForm(p) : "—") });
  }
  const show = () =>
    replace(list, pagedTable("/payments", { state: stateSelect.value }, columns, { empty: "No payments." }));
  stateSelect.addEventListener("change", show);
  show();
  return [el("div", { class: "filters" }, field("State", stateSelect)), list];
}

/** Something was taken and not all of it given back. */
function refundable(payment) {
  const amount = (text) => Number(String(text || "0").split(" ")[0]);
  return Boolean(payment.session_id) && amount(payment.captured) > amount(payment.refunded);
}

function refundForm(payment) {
  // One request id per intended refund: a retried click refunds once (the API answers repeated).
  let requestId = crypto.randomUUID();
  const amount = el("input", {
    name: "amount",
    inputmode: "decimal",
    placeholder: "all that is left",
    pattern: "[0-9]+([.][0-9]{1,3})?",
    size: "8",
  });
  const form = actionForm(
    { "aria-label": `Refund ${payment.payment_id}` },
    field("Amount", amount),
    "Refund",
    async (data) => {
      const body = { session_id: payment.session_id, amount: data.get("amount") || null, request_id: requestId };
      const answer = await post("/refunds", body);
      requestId = crypto.randomUUID();
      amount.value = "";
      return answer.repeated ? "Already refunded (the same request)." : `Refunded ${formatMoneyText(answer.refunded)}.`;
    },
  );
  return el("details", {}, el("summary", {}, "Refund"), form);
}

// ---------------------------------------------------------------- subscribers and invoices

function subscribers() {
  const detail = el("div", { "aria-live": "polite" });
  const columns = [
    { label: "E-mail", value: (s) => s.email },
    { label: "Tag", value: (s) => s.id_tag },
    { label: "Plan", value: (s) => s.plan_id },
    { label: "State", value: (s) => badge(s.state) },
    { label: "Since", value: (s) => formatTime(s.created_at) },
  ];
  const list = pagedTable("/subscribers", {}, columns, {
    empty: "No subscribers.",
    onRowClick: (s) => fill(detail, () => invoices(s)),
  });
  return [el("p", { class: "hint" }, "Choose a subscriber to see their invoices."), list, detail];
}

async function invoices(subscriber) {
  const found = await get(path("subscribers", subscriber.id_tag));
  const columns = [
    { label: "Period", value: (i) => i.period },
    { label: "Invoice", value: (i) => i.invoice_id },
    { label: "State", value: (i) => badge(i.state) },
  ];
  return el(
    "section",
    { class: "panel" },
    el("h3", {}, `Invoices of ${found.email} (${found.tag_status})`),
    table(columns, found.invoices || [], { empty: "No invoices yet." }),
  );
}
