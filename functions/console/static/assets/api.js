// The operator API (/ops/v1) with the signed-in operator's access token: the console's only data
// path. Errors come back as ApiError with the API's own message ({"error", "message"}).

import { accessToken, justSignedIn } from "./auth.js";

const MAX_PAGES = 25; // a view that needs every page stops here and says so
const PAGE_LIMIT = 200; // the API's largest page of a listing
// Listings that read every charger's rows per page (fleet health, uptime, utilisation) take at
// most 25 chargers a page (PER_CHARGER_MAX_LIMIT in chargenet.services.operator_access).
export const PER_CHARGER_PAGES = { limit: 25, maxPages: 40 };

class ApiError extends Error {
  constructor(status, code, text) {
    super(text);
    this.status = status;
    this.code = code;
  }
}

let base = "/ops/v1";
let signInAgain = () => {};

/** base: the API prefix from config.json; onSignIn: called when the token is missing or refused. */
export function configureApi(apiBase, onSignIn) {
  base = apiBase.replace(/\/$/, "");
  signInAgain = onSignIn;
}

/** A path with its segments escaped: path("chargers", id, "commands"). */
export function path(...segments) {
  return `/${segments.map((s) => encodeURIComponent(String(s))).join("/")}`;
}

async function request(method, route, { query, body } = {}) {
  const token = accessToken();
  if (!token) {
    signInAgain();
    throw new ApiError(401, "unauthorized", "Your sign-in has expired: signing in again.");
  }
  const headers = { Authorization: `Bearer ${token}`, Accept: "application/json" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
  }
  const response = await fetch(`${base}${route}${queryText(query)}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    cache: "no-store",
  });
  const answer = await response.json().catch(() => null);
  if (response.ok) {
    return answer;
  }
  throw refusal(response.status, answer, method, route);
}

function queryText(query) {
  if (!query) {
    return "";
  }
  const kept = Object.entries(query).filter(([, value]) => value !== undefined && value !== null && value !== "");
  return kept.length ? `?${new URLSearchParams(kept)}` : "";
}

function refusal(status, answer, method, route) {
  const code = answer?.error || "error";
  const said = answer?.message || "";
  if (status === 401) {
    if (!justSignedIn()) {
      signInAgain();
      return new ApiError(401, code, "Your sign-in has expired: signing in again.");
    }
    return new ApiError(401, code, "The API does not accept this sign-in (401). Sign out and in again.");
  }
  if (status === 403) {
    return new ApiError(403, code, `Your role may not do this${said ? `: ${said}` : "."}`);
  }
  return new ApiError(status, code, said || `${method} ${route} answered ${status}`);
}

export const get = (route, query) => request("GET", route, { query });
export const post = (route, body = {}) => request("POST", route, { body });
export const put = (route, body) => request("PUT", route, { body });
export const remove = (route) => request("DELETE", route);

/**
 * Every page of a listing, following `next` up to `maxPages`: {items, complete}. `complete` is
 * false when the cap stopped it (the view says that more exist). `itemsKey` names the answer's
 * list where it is not "items" (the energy report's "days").
 */
export async function getAll(route, query = {}, { limit = PAGE_LIMIT, maxPages = MAX_PAGES, itemsKey = "items" } = {}) {
  const items = [];
  let next = null;
  for (let page = 0; page < maxPages; page += 1) {
    const answer = await get(route, { ...query, limit, next });
    items.push(...(answer[itemsKey] || []));
    next = answer.next;
    if (!next) {
      return { items, complete: true };
    }
  }
  return { items, complete: false };
}

/** A panel's data, or null when the API answers 404 (a route this deployment does not have
 *  yet, e.g. the reports): the view shows "not available" instead of an error. */
export async function optional(load) {
  try {
    return await load();
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) {
      return null;
    }
    throw error;
  }
}
