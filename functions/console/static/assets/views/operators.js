// Operators (admins, operators.manage): the accounts, invite one, change a role, remove one.
// On the local stack the invitation's temporary password comes back in the answer: it is shown
// once, here, and kept nowhere.

import { getAll, path, post, put, remove } from "../api.js";
import { badge, el, field, formatTime, message, replace, section, select, table } from "../dom.js";
import { actionButton, actionForm, fill } from "../ui.js";

const ROLES = ["admin", "technician", "finance", "viewer"];

export function allowed(may) {
  return may("operators.manage");
}

export async function render(container, context) {
  const list = el("div");
  const refresh = () => fill(list, () => accounts(context.me, refresh));
  replace(
    container,
    el("h1", {}, "Operators"),
    section("Invite an operator", inviteForm(refresh)),
    section("Accounts", list),
  );
  await refresh();
}

function inviteForm(refresh) {
  const fields = [
    field(
      "User name",
      el("input", {
        name: "username",
        required: true,
        maxlength: "64",
        pattern: "[A-Za-z0-9][A-Za-z0-9._\\-]*",
        autocomplete: "off",
      }),
    ),
    field("E-mail", el("input", { name: "email", type: "email", required: true, autocomplete: "off" })),
    field(
      "Role",
      select(
        "role",
        ROLES.map((r) => [r, r]),
        "viewer",
      ),
    ),
  ];
  return actionForm({ "aria-label": "Invite an operator" }, fields, "Invite", async (data, form) => {
    const account = await post("/operators", {
      username: data.get("username"),
      email: data.get("email"),
      role: data.get("role"),
    });
    form.reset();
    await refresh();
    return invited(account);
  });
}

function invited(account) {
  const said = message("ok", `Invited ${account.username} (${account.roles.join(", ")}).`);
  if (!account.temporary_password) {
    return said; // Cognito e-mailed the temporary password
  }
  return el(
    "div",
    {},
    said,
    message("info", "Temporary password, shown once (the local stack sends no e-mail): "),
    el("code", { class: "secret" }, account.temporary_password),
  );
}

async function accounts(me, refresh) {
  const listing = await getAll("/operators");
  const columns = [
    { label: "User name", value: (a) => a.username },
    { label: "E-mail", value: (a) => a.email || "—" },
    { label: "Roles", value: (a) => (a.roles.length ? a.roles.join(", ") : "none") },
    { label: "Status", value: (a) => [badge(a.status || "unknown"), a.enabled ? null : badge("disabled", "major")] },
    { label: "Created", value: (a) => formatTime(a.created_at) },
    { label: "Change role", value: (a) => roleForm(a, refresh) },
    {
      label: "Remove",
      value: (a) => (a.username.toLowerCase() === me.username.toLowerCase() ? "(you)" : removeButton(a, refresh)),
    },
  ];
  return table(columns, listing.items, { empty: "No operators." });
}

function roleForm(account, refresh) {
  const current = ROLES.find((r) => account.roles.includes(r)) || "viewer";
  return actionForm(
    { class: "inline", "aria-label": `Role of ${account.username}` },
    select(
      "role",
      ROLES.map((r) => [r, r]),
      current,
    ),
    "Set",
    async (data) => {
      await put(path("operators", account.username, "role"), { role: data.get("role") });
      await refresh();
    },
  );
}

function removeButton(account, refresh) {
  return actionButton("Remove", async () => {
    if (!window.confirm(`Remove the operator ${account.username}? They can no longer sign in.`)) {
      return null;
    }
    await remove(path("operators", account.username));
    await refresh();
    return null;
  });
}
