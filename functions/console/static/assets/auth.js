// Sign-in: OAuth 2.0 authorization code with PKCE (S256) against Cognito's managed login (or the
// local stack's stand-in, which speaks the same protocol). Tokens live in this module's memory
// only: a reload signs in again (the login page's own session makes that one redirect). The PKCE
// verifier and the state survive the redirect in sessionStorage and are deleted on return.

const ROUND_TRIP_KEY = "chargenet.console.signin";
const EXPIRY_MARGIN_MS = 30_000; // treat a token this close to its end as expired
const FRESH_SIGN_IN_MS = 15_000;
const SIGN_OUT_WAIT_MS = 5_000; // how long signing out waits for the API before leaving anyway
const CALLBACK_PATH = "/console/callback";

let tokens = null; // {accessToken, expiresAt, obtainedAt}
let redirecting = null; // the redirect to the login page, once started

/** base64url without padding (RFC 7636 appendix A). */
function base64url(bytes) {
  let binary = "";
  for (const byte of new Uint8Array(bytes)) {
    binary += String.fromCharCode(byte);
  }
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function randomText(byteCount) {
  return base64url(crypto.getRandomValues(new Uint8Array(byteCount)));
}

/** The S256 code challenge of a verifier: base64url(SHA-256(verifier)). */
async function codeChallenge(verifier) {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier));
  return base64url(digest);
}

/**
 * Goes to the login page; `returnTo` (a hash route) is where the console opens afterwards. Once
 * per page: requests refused together must not overwrite each other's verifier and state.
 */
export function signIn(config, returnTo = location.hash) {
  redirecting ??= redirectToLogin(config, returnTo);
  return redirecting;
}

async function redirectToLogin(config, returnTo) {
  const verifier = randomText(32); // 43 characters, the shortest RFC 7636 allows
  const state = randomText(16);
  sessionStorage.setItem(ROUND_TRIP_KEY, JSON.stringify({ verifier, state, returnTo }));
  const query = new URLSearchParams({
    response_type: "code",
    client_id: config.client_id,
    redirect_uri: config.redirect_uri,
    scope: config.scopes,
    state,
    code_challenge: await codeChallenge(verifier),
    code_challenge_method: "S256",
  });
  location.assign(`${config.authorize_url}?${query}`);
}

export function isCallback() {
  return location.pathname === CALLBACK_PATH;
}

/**
 * On /console/callback: checks the state, exchanges the code for tokens (kept in memory) and
 * puts the address back to /console/ without the code. Returns the hash route to open.
 */
export async function completeSignIn(config) {
  const params = new URLSearchParams(location.search);
  const saved = takeRoundTrip();
  if (params.has("error")) {
    throw new Error(`Sign-in failed: ${params.get("error_description") || params.get("error")}`);
  }
  if (!saved || !params.get("state") || params.get("state") !== saved.state) {
    throw new Error("Sign-in failed: the answer does not belong to this browser's sign-in (state mismatch).");
  }
  const code = params.get("code");
  if (!code) {
    throw new Error("Sign-in failed: the login page returned no code.");
  }
  tokens = await exchangeCode(config, code, saved.verifier);
  history.replaceState(null, "", `/console/${saved.returnTo || ""}`);
  return saved.returnTo || "";
}

function takeRoundTrip() {
  const text = sessionStorage.getItem(ROUND_TRIP_KEY);
  sessionStorage.removeItem(ROUND_TRIP_KEY);
  try {
    return text ? JSON.parse(text) : null;
  } catch {
    return null;
  }
}

async function exchangeCode(config, code, verifier) {
  const response = await fetch(config.token_url, {
    method: "POST",
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({
      grant_type: "authorization_code",
      client_id: config.client_id,
      code,
      redirect_uri: config.redirect_uri,
      code_verifier: verifier,
    }),
  });
  const answer = await response.json().catch(() => ({}));
  if (!response.ok || !answer.access_token) {
    throw new Error(
      `Sign-in failed: ${answer.error_description || answer.error || `token endpoint answered ${response.status}`}`,
    );
  }
  const now = Date.now();
  return {
    accessToken: answer.access_token,
    expiresAt: now + Number(answer.expires_in || 0) * 1000,
    obtainedAt: now,
  };
}

/** The access token, or null when there is none or it is (nearly) expired. */
export function accessToken() {
  if (!tokens || Date.now() > tokens.expiresAt - EXPIRY_MARGIN_MS) {
    return null;
  }
  return tokens.accessToken;
}

/** True right after signing in: a 401 then is not an expired token, so signing in again would loop. */
export function justSignedIn() {
  return tokens !== null && Date.now() - tokens.obtainedAt < FRESH_SIGN_IN_MS;
}

/**
 * Signs out for real: the operator API records the sign-out (POST /ops/v1/sign-out), so it refuses
 * every token of this operator issued until now, this page's and any other's (API Gateway alone
 * would accept them until they expire). Then forgets the tokens and ends the login page's session
 * too. A failed or slow sign-out call does not keep the operator here.
 */
export async function signOut(config) {
  const token = tokens?.accessToken;
  tokens = null;
  if (token) {
    await recordSignOut(config.api, token);
  }
  const query = new URLSearchParams({
    client_id: config.client_id,
    logout_uri: `${location.origin}/console/`,
  });
  location.assign(`${config.logout_url}?${query}`);
}

async function recordSignOut(apiBase, token) {
  try {
    await fetch(`${apiBase.replace(/\/$/, "")}/sign-out`, {
      method: "POST",
      headers: { Authorization: `Bearer ${token}`, Accept: "application/json" },
      cache: "no-store",
      signal: AbortSignal.timeout(SIGN_OUT_WAIT_MS),
    });
  } catch {
    // Unreachable or too slow: the tokens are forgotten here all the same and expire within the hour.
  }
}
