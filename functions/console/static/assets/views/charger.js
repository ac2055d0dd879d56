// A charger's page: connectors, firmware, certificate expiry, last seen, open faults, the recent
// event timeline, and the remote commands a technician may send with their answers.

import { getAll, get, optional, path, post } from "../api.js";
import { badge, el, field, formatTime, message, replace, section, select, summaryList, table } from "../dom.js";
import { actionForm, fill, notAvailable } from "../ui.js";

const ANSWER_WAIT_MS = 30_000; // as `chargenet command send --wait 30`
const ANSWER_POLL_MS = 1_000;
const CERTIFICATE_WARNING_DAYS = 30;
const COMMAND_PAGES = 5;
const COMMANDS_SHOWN = 20;
const TRIGGERS = [
  "BootNotification",
  "DiagnosticsStatusNotification",
  "FirmwareStatusNotification",
  "Heartbeat",
  "MeterValues",
  "StatusNotification",
];

export function allowed(may) {
  return may("chargers.read");
}

export async function render(container, context, chargerId) {
  if (!chargerId) {
    context.go("#/fleet");
    return;
  }
  const charger = await get(path("chargers", chargerId));
  const panels = {
    faults: el("div"),
    timeline: el("div"),
    commands: el("div"),
    certificates: el("div"),
  };
  replace(
    container,
    el("p", {}, el("a", { href: "#/fleet" }, "← Fleet")),
    el("h1", {}, `Charger ${charger.charger_id}`),
    summary(charger),
    section("Connectors", connectorTable(charger.connectors)),
    context.may("faults.read") ? section("Open faults", panels.faults) : null,
    section("Commands", panels.commands),
    section("Recent events", panels.timeline),
    section("Certificates", panels.certificates),
  );
  await Promise.all([
    context.may("faults.read") ? fill(panels.faults, () => openFaults(chargerId)) : null,
    fill(panels.timeline, () => timeline(chargerId)),
    fill(panels.commands, () => commands(chargerId, charger, context)),
    fill(panels.certificates, () => certificates(chargerId)),
  ]);
}

function summary(charger) {
  const rows = [
    ["Site", charger.site_id || "—"],
    ["Link", badge(charger.online ? "online" : "offline")],
    ["Last seen", formatTime(charger.last_seen_at)],
    ["Last boot", formatTime(charger.last_boot_at)],
    ["Vendor / model", [charger.vendor, charger.model].filter(Boolean).join(" ") || "—"],
    ["Serial number", charger.serial_number || "—"],
    ["Firmware", `${charger.firmware_version || "—"}${charger.firmware_status ? ` (${charger.firmware_status})` : ""}`],
    ["Certificate expires", certificateExpiry(charger.certificate_not_after)],
    ["Rated power", charger.rated_power_w ? `${charger.rated_power_w / 1000} kW` : "—"],
    charger.revoked_at ? ["Revoked", `${formatTime(charger.revoked_at)} ${charger.revocation_reason || ""}`] : null,
  ];
  return summaryList(rows);
}

function certificateExpiry(notAfter) {
  if (!notAfter) {
    return "—";
  }
  const days = (new Date(notAfter).getTime() - Date.now()) / 86_400_000;
  const soon = days < CERTIFICATE_WARNING_DAYS;
  return el(
    "span",
    {},
    formatTime(notAfter),
    " ",
    soon ? badge(days < 0 ? "expired" : `${Math.floor(days)} days left`, "major") : null,
  );
}

function connectorTable(connectors) {
  const columns = [
    { label: "Connector", value: (c) => (c.connector_id === 0 ? "0 (charger)" : String(c.connector_id)) },
    { label: "Status", value: (c) => badge(c.status) },
    { label: "Error", value: (c) => (c.error_code === "NoError" ? "—" : c.error_code) },
    { label: "Info", value: (c) => [c.info, c.vendor_error_code].filter(Boolean).join(" ") || "—" },
    { label: "Since", value: (c) => formatTime(c.status_at) },
  ];
  return table(columns, connectors || [], { empty: "No connector has reported a status yet." });
}

async function openFaults(chargerId) {
  // /faults has no charger filter: the open faults are few, so they are filtered here.
  const listing = await getAll("/faults", { open: "true" });
  const mine = listing.items.filter((f) => f.charger_id === chargerId);
  const columns = [
    { label: "Severity", value: (f) => badge(f.severity.replaceAll("_", " "), f.severity) },
    { label: "Connector", value: (f) => String(f.connector_id) },
    { label: "Code", value: (f) => `${f.kind}: ${f.code}` },
    { label: "State", value: (f) => f.state },
    { label: "Since", value: (f) => formatTime(f.first_seen) },
  ];
  return [
    table(columns, mine, { empty: "No open faults." }),
    el("p", {}, el("a", { href: "#/faults" }, "All faults →")),
  ];
}

async function timeline(chargerId) {
  const answer = await optional(() => get(path("chargers", chargerId, "timeline"), { limit: 50 }));
  if (answer === null) {
    return notAvailable("The event timeline");
  }
  const columns = [
    { label: "When", value: (e) => formatTime(e.at) },
    { label: "Event", value: (e) => e.kind.replaceAll("_", " ") },
    { label: "Connector", value: (e) => String(e.connector_id ?? "—") },
    { label: "What", value: (e) => e.summary },
  ];
  return table(columns, answer.items || [], { empty: "No recent events." });
}

async function certificates(chargerId) {
  const answer = await get(path("chargers", chargerId, "certificates"));
  const columns = [
    { label: "Certificate", value: (c) => el("code", {}, c.certificate_id) },
    { label: "Status", value: (c) => badge(c.status) },
  ];
  return table(columns, answer.certificates || [], { empty: "No certificate." });
}

// ---------------------------------------------------------------- commands

async function commands(chargerId, charger, context) {
  const history = el("div");
  const refresh = () => fill(history, () => commandHistory(chargerId));
  const sendForm = context.may("commands.send") ? commandForm(chargerId, charger, context, refresh) : null;
  await refresh();
  return [sendForm, history];
}

async function commandHistory(chargerId) {
  // The table keys a charger's calls by message id (random), so its pages are in no time order:
  // read a few pages and keep the newest.
  const listing = await getAll(path("chargers", chargerId, "commands"), {}, { maxPages: COMMAND_PAGES });
  const calls = listing.items.sort((a, b) => Date.parse(b.sent_at) - Date.parse(a.sent_at)).slice(0, COMMANDS_SHOWN);
  const columns = [
    { label: "Sent", value: (c) => formatTime(c.sent_at) },
    { label: "Command", value: (c) => c.action },
    { label: "Payload", value: (c) => el("code", {}, JSON.stringify(c.payload)) },
    { label: "Answer", value: (c) => outcomeText(c) },
  ];
  return table(columns, calls, { caption: "Commands sent", empty: "No commands sent yet." });
}

/** The charger's answer as operators read it: "Accepted", an error, a timeout, or still waiting. */
function outcomeText(call) {
  const outcome = call.outcome;
  if (!outcome) {
    return "waiting…";
  }
  if (outcome.timeout) {
    return "no answer (timed out)";
  }
  if (outcome.error) {
    return `error: ${typeof outcome.error === "string" ? outcome.error : JSON.stringify(outcome.error)}`;
  }
  const result = outcome.result;
  return result && typeof result.status === "string" ? result.status : JSON.stringify(result ?? outcome);
}

function commandForm(chargerId, charger, context, refresh) {
  const connectorIds = (charger.connectors || []).map((c) => c.connector_id).filter((id) => id > 0);
  const actions = [
    ["Reset", "Reset"],
    ["UnlockConnector", "Unlock connector"],
    ["TriggerMessage", "Trigger message"],
    ["ChangeAvailability", "Change availability"],
    context.may("diagnostics") ? ["GetDiagnostics", "Get diagnostics"] : null,
  ].filter(Boolean);
  const actionSelect = select("action", actions, "Reset");
  const payloadFields = el("div", { class: "fields" });
  const showFields = () => replace(payloadFields, fieldsFor(actionSelect.value, connectorIds));
  actionSelect.addEventListener("change", showFields);
  showFields();
  return actionForm(
    { "aria-label": "Send a command" },
    [field("Command", actionSelect), payloadFields],
    "Send",
    async (data) => {
      const action = data.get("action");
      const sent =
        action === "GetDiagnostics"
          ? await post(path("chargers", chargerId, "diagnostics"))
          : await post(path("chargers", chargerId, "commands"), { action, payload: payloadOf(action, data) });
      const answer = await awaitAnswer(chargerId, sent.message_id);
      await refresh();
      const upload = sent.upload_key ? ` Upload: ${sent.upload_key}.` : "";
      return message(
        answer.outcome && !answer.outcome.timeout ? "ok" : "info",
        `${action}: ${outcomeText(answer)}.${upload}`,
      );
    },
  );
}

function connectorField(connectorIds, withCharger) {
  const options = connectorIds.map((id) => [String(id), String(id)]);
  return field(
    "Connector",
    select(
      "connectorId",
      withCharger ? [["0", "0 (whole charger)"], ...options] : options,
      withCharger ? "0" : options[0]?.[0],
    ),
  );
}

function fieldsFor(action, connectorIds) {
  switch (action) {
    case "Reset":
      return field(
        "Type",
        select(
          "type",
          [
            ["Soft", "Soft"],
            ["Hard", "Hard"],
          ],
          "Soft",
        ),
      );
    case "UnlockConnector":
      return connectorField(connectorIds, false);
    case "TriggerMessage":
      return [
        field(
          "Message",
          select(
            "requestedMessage",
            TRIGGERS.map((t) => [t, t]),
            "StatusNotification",
          ),
        ),
        field(
          "Connector (optional)",
          select("connectorId", [["", "—"], ...connectorIds.map((id) => [String(id), String(id)])], ""),
        ),
      ];
    case "ChangeAvailability":
      return [
        connectorField(connectorIds, true),
        field(
          "Availability",
          select(
            "type",
            [
              ["Operative", "Operative"],
              ["Inoperative", "Inoperative"],
            ],
            "Inoperative",
          ),
        ),
      ];
    default:
      return message("info", "The charger uploads its diagnostics to the stack's bucket.");
  }
}

/** The OCPP 1.6 payload of the chosen command, from the form. */
function payloadOf(action, data) {
  const connectorId = data.get("connectorId");
  switch (action) {
    case "Reset":
      return { type: data.get("type") };
    case "UnlockConnector":
      return { connectorId: Number(connectorId) };
    case "TriggerMessage":
      return connectorId
        ? { requestedMessage: data.get("requestedMessage"), connectorId: Number(connectorId) }
        : { requestedMessage: data.get("requestedMessage") };
    case "ChangeAvailability":
      return { connectorId: Number(connectorId), type: data.get("type") };
    default:
      return {};
  }
}

/** Polls the call until the charger answers; past the wait it is recorded as timed out. */
async function awaitAnswer(chargerId, messageId) {
  const route = path("chargers", chargerId, "commands", messageId);
  const deadline = Date.now() + ANSWER_WAIT_MS;
  while (Date.now() < deadline) {
    const call = await get(route);
    if (call.outcome) {
      return call;
    }
    await new Promise((resolve) => setTimeout(resolve, ANSWER_POLL_MS));
  }
  return post(`${route}/timeout`);
}
