// The console's entry: read config.json, sign in (PKCE), ask /ops/v1/whoami who we are, build the
// navigation the operator's permissions allow, and route #/<view>/<argument> to the views.

import { configureApi, get } from "./api.js";
import { accessToken, completeSignIn, isCallback, signIn, signOut } from "./auth.js";
import { el, message, replace } from "./dom.js";
import { failure } from "./ui.js";
import * as audit from "./views/audit.js";
import * as charger from "./views/charger.js";
import * as faults from "./views/faults.js";
import * as fleet from "./views/fleet.js";
import * as money from "./views/money.js";
import * as operators from "./views/operators.js";
import * as sessions from "./views/sessions.js";
import * as uptime from "./views/uptime.js";

// name -> the view module and whether the nav lists it; a view's `allowed(may)` hides what the
// operator's role may not read (the API refuses it anyway).
const VIEWS = {
  fleet: { module: fleet, label: "Fleet" },
  charger: { module: charger, label: null },
  faults: { module: faults, label: "Faults" },
  sessions: { module: sessions, label: "Sessions" },
  money: { module: money, label: "Money" },
  uptime: { module: uptime, label: "Uptime" },
  operators: { module: operators, label: "Operators" },
  audit: { module: audit, label: "Audit" },
};

const main = document.getElementById("main");
let leaving = null; // aborts the shown view's polling when another is opened

async function start() {
  const config = await loadConfig();
  configureApi(config.api, () => signIn(config));
  if (isCallback()) {
    await completeSignIn(config);
  } else if (!accessToken()) {
    await signIn(config);
    return;
  }
  const me = await get("/whoami");
  const may = (permission) => me.permissions.includes(permission);
  showShell(config, me, may);
  const route = () => show(me, may);
  window.addEventListener("hashchange", route);
  route();
}

async function loadConfig() {
  const response = await fetch("/console/config.json", { cache: "no-store" });
  if (!response.ok) {
    throw new Error(`The console's configuration did not load (${response.status}).`);
  }
  return response.json();
}

function showShell(config, me, may) {
  if (config.network_name) {
    document.getElementById("network-name").textContent = config.network_name;
  }
  document.getElementById("user-name").textContent = me.username;
  document.getElementById("user-roles").textContent = me.roles.join(", ") || "no role";
  document.getElementById("who").hidden = false;
  document.getElementById("sign-out").addEventListener("click", () => signOut(config));
  const links = Object.entries(VIEWS)
    .filter(([, view]) => view.label && view.module.allowed(may))
    .map(([name, view]) => el("li", {}, el("a", { href: `#/${name}`, "data-view": name }, view.label)));
  replace(document.getElementById("nav-links"), links);
  const nav = document.getElementById("nav");
  nav.hidden = false;
  const toggle = document.getElementById("nav-toggle");
  toggle.addEventListener("click", () => {
    const open = nav.classList.toggle("open");
    toggle.setAttribute("aria-expanded", String(open));
  });
  nav.addEventListener("click", (event) => {
    if (event.target.closest("a")) {
      nav.classList.remove("open"); // phone: the menu closes once a section is chosen
      toggle.setAttribute("aria-expanded", "false");
    }
  });
}

/** #/charger/CP-001 -> ["charger", "CP-001"]; the first allowed view when the hash names none. */
function parseRoute(may) {
  const [name, ...rest] = location.hash.replace(/^#\/?/, "").split("/");
  const argument = rest.length ? decodeURIComponent(rest.join("/")) : null;
  if (VIEWS[name]) {
    return [name, argument];
  }
  const first = Object.keys(VIEWS).find((key) => VIEWS[key].label && VIEWS[key].module.allowed(may));
  return [first, null];
}

async function show(me, may) {
  leaving?.abort();
  leaving = new AbortController();
  const [name, argument] = parseRoute(may);
  markCurrent(name);
  const view = VIEWS[name];
  // Each view draws into its own container: a slow view answering after the operator moved on
  // writes into a detached node, never over the next view.
  const container = el("div", { class: "view" });
  replace(main, container);
  if (!view || !view.module.allowed(may)) {
    replace(container, message("info", "Your role may not see this page."));
    return;
  }
  const context = { me, may, signal: leaving.signal, go: (hash) => (location.hash = hash) };
  try {
    await view.module.render(container, context, argument);
  } catch (error) {
    replace(container, failure(error));
  }
}

function markCurrent(name) {
  for (const link of document.querySelectorAll("#nav-links a")) {
    const current = link.dataset.view === name || (name === "charger" && link.dataset.view === "fleet");
    if (current) {
      link.setAttribute("aria-current", "page");
    } else {
      link.removeAttribute("aria-current");
    }
  }
}

start().catch((error) => {
  replace(main, failure(error), el("p", {}, el("a", { href: "/console/" }, "Sign in again")));
});
