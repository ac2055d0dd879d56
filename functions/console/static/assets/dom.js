// DOM helpers: every datum becomes a text node (textContent), never markup. The CSP forbids
// inline styles, so elements get classes, never a style attribute.

const PROPERTIES = new Set(["value", "selected", "hidden"]); // state, not markup: set as properties

/** el("td", {class: "num"}, "12", child): attributes as text, children as nodes or text. */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    setAttribute(node, name, value);
  }
  append(node, children);
  return node;
}

function setAttribute(node, name, value) {
  if (value === null || value === undefined || value === false) {
    return;
  }
  if (name === "on") {
    for (const [event, handler] of Object.entries(value)) {
      node.addEventListener(event, handler);
    }
  } else if (name === "style" || name.startsWith("on")) {
    throw new Error(`el(): ${name} is not allowed (CSP: no inline styles or handlers)`);
  } else if (PROPERTIES.has(name)) {
    node[name] = value;
  } else {
    node.setAttribute(name, value === true ? "" : String(value));
  }
}

/** Appends nodes and text (null, undefined and false are skipped; arrays are flattened). */
function append(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) {
      continue;
    }
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** Empties a node and fills it with the given children. */
export function replace(node, ...children) {
  node.replaceChildren();
  return append(node, children);
}

/**
 * A table from columns [{label, value: row => text | Node, className?}] and rows; on phone-sized
 * screens the CSS shows each row as a card, each cell labelled with its column (data-label).
 */
export function table(columns, rows, options = {}) {
  const head = el(
    "thead",
    {},
    el(
      "tr",
      {},
      columns.map((c) => el("th", { scope: "col", class: c.className }, c.label)),
    ),
  );
  const body = el(
    "tbody",
    {},
    rows.map((row) => tableRow(columns, row, options)),
  );
  const caption = options.caption ? el("caption", {}, options.caption) : null;
  const empty = rows.length === 0 ? el("p", { class: "empty" }, options.empty || "Nothing to show.") : null;
  return el("div", { class: "table-scroll" }, el("table", { class: "data" }, caption, head, body), empty);
}

function tableRow(columns, row, options) {
  const cells = columns.map((c) => el("td", { class: c.className, "data-label": c.label }, c.value(row)));
  const classes = options.rowClass ? options.rowClass(row) : null;
  const tr = el("tr", { class: classes }, cells);
  if (options.onRowClick) {
    tr.classList.add("clickable");
    tr.tabIndex = 0;
    tr.addEventListener("click", (event) => {
      if (!event.target.closest("button, a, input, select, textarea, form")) {
        options.onRowClick(row);
      }
    });
    tr.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && event.target === tr) {
        options.onRowClick(row);
      }
    });
  }
  return tr;
}

/** A section with a heading; `body` is appended under it. */
export function section(title, ...body) {
  return el("section", { class: "panel" }, el("h2", {}, title), body);
}

/** A definition list of [term, value] pairs (null pairs skipped). */
export function summaryList(pairs) {
  return el(
    "dl",
    { class: "summary" },
    pairs.filter(Boolean).map(([term, value]) => [el("dt", {}, term), el("dd", {}, value)]),
  );
}

/** A labelled form field. */
export function field(label, input) {
  return el("label", { class: "field" }, el("span", {}, label), input);
}

/** A select with [value, label] options. */
export function select(name, options, selected) {
  return el(
    "select",
    { name },
    options.map(([value, label]) => el("option", { value, selected: value === selected }, label)),
  );
}

/** A message line: kind is "error", "info" or "ok". */
export function message(kind, text) {
  return el("p", { class: `message ${kind}`, role: kind === "error" ? "alert" : "status" }, text);
}

/** A small coloured label, e.g. a status or a severity. */
export function badge(text, kind = String(text).toLowerCase()) {
  return el("span", { class: `badge badge-${kind.replace(/[^a-z0-9_-]/g, "")}` }, text);
}

// ---------------------------------------------------------------- formatting (browser's locale)

/** A date and time in the browser's locale; "—" for none. */
export function formatTime(iso) {
  if (!iso) {
    return "—";
  }
  const when = new Date(iso);
  return Number.isNaN(when.getTime()) ? String(iso) : when.toLocaleString();
}

/** A calendar day (YYYY-MM-DD) in the browser's locale, read as that day (not shifted by zones). */
export function formatDay(day) {
  const [year, month, date] = String(day).split("-").map(Number);
  if (!year || !month || !date) {
    return String(day);
  }
  return new Date(year, month - 1, date).toLocaleDateString();
}

/** How long ago, roughly: "3 min", "2 h", "4 d". */
export function formatAge(iso) {
  const seconds = Math.max(0, (Date.now() - new Date(iso).getTime()) / 1000);
  if (Number.isNaN(seconds)) {
    return "—";
  }
  if (seconds < 60) {
    return `${Math.round(seconds)} s`;
  }
  if (seconds < 3600) {
    return `${Math.round(seconds / 60)} min`;
  }
  if (seconds < 86400) {
    return `${(seconds / 3600).toFixed(1)} h`;
  }
  return `${(seconds / 86400).toFixed(1)} d`;
}

/** Money with its currency, in the browser's locale ("12.34", "EUR" -> "€12.34"). */
export function formatMoney(amount, currency) {
  if (amount === null || amount === undefined || amount === "") {
    return "—";
  }
  const value = Number(amount);
  if (Number.isNaN(value) || !currency) {
    return `${amount} ${currency || ""}`.trim();
  }
  try {
    return new Intl.NumberFormat(undefined, { style: "currency", currency }).format(value);
  } catch {
    return `${amount} ${currency}`; // not an ISO 4217 code the browser knows
  }
}

/** The API's money text "12.50 EUR" in the browser's locale. */
export function formatMoneyText(text) {
  if (!text) {
    return "—";
  }
  const [amount, currency] = String(text).split(" ");
  return formatMoney(amount, currency);
}

/** Energy from Wh, shown in kWh. */
export function formatEnergyWh(wh) {
  return formatKwh(Number(wh || 0) / 1000);
}

export function formatKwh(kwh) {
  return `${Number(kwh).toLocaleString(undefined, { minimumFractionDigits: 3, maximumFractionDigits: 3 })} kWh`;
}

/** Power from W, shown in kW. */
export function formatPowerW(watts) {
  return `${(Number(watts || 0) / 1000).toLocaleString(undefined, { minimumFractionDigits: 1, maximumFractionDigits: 1 })} kW`;
}

export function formatPercent(value) {
  return `${Number(value).toLocaleString(undefined, { maximumFractionDigits: 3 })} %`;
}

/** Today as YYYY-MM-DD in the browser's zone (for date inputs). */
export function isoDay(date = new Date()) {
  const pad = (n) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`;
}
