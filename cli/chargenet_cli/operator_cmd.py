"""`chargenet login | logout | whoami`, `chargenet audit list` and `chargenet operator add | list |
remove | set-role`: operators signed in to the operator API (the local stack by default,
`chargenet --stack NAME` a deployed one)."""

from __future__ import annotations

import argparse
import getpass
import re
import sys
import urllib.parse
from typing import Any

from chargenet_cli import operator_auth, operator_profile
from chargenet_cli.errors import CliError, UsageError
from chargenet_cli.operator_api import OperatorApi, for_profile
from chargenet_cli.output import as_json, table

_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
ROLES = ["admin", "technician", "finance", "viewer"]  # the pool's groups (docs/operators.md)


def register(commands: argparse._SubParsersAction) -> None:
    login = commands.add_parser("login", help="sign in to the operator API (tokens cached 0600)")
    login.add_argument("--username", help="default: asked")
    login.add_argument(
        "--password-stdin", action="store_true", help="read the password from stdin (default: asked)"
    )
    login.add_argument(
        "--new-password-stdin",
        action="store_true",
        help="first sign-in of an invited operator: the new password is the next stdin line "
        "(default: asked twice)",
    )
    login.set_defaults(run=login_command)
    mfa = commands.add_parser("mfa", help="your sign-in's second step").add_subparsers(
        dest="mfa_command", required=True
    )
    mfa_setup = mfa.add_parser(
        "setup", help="add an authenticator app (TOTP): asked at every sign-in from then on"
    )
    mfa_setup.set_defaults(run=mfa_setup_command)
    logout = commands.add_parser(
        "logout",
        help="sign out: the API refuses your tokens, the refresh token is revoked, the cache deleted",
    )
    logout.set_defaults(run=logout_command)
    whoami = commands.add_parser("whoami", help="who the operator API says you are, roles and permissions")
    whoami.add_argument("--json", action="store_true")
    whoami.set_defaults(run=whoami_command)
    audit = commands.add_parser("audit", help="the operators' audit trail (admins)").add_subparsers(
        dest="audit_command", required=True
    )
    listing = audit.add_parser("list", help="one UTC day's audit records")
    listing.add_argument("--day", help="YYYY-MM-DD (UTC; default: today)")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(run=audit_list_command)
    operator = commands.add_parser("operator", help="operator accounts and their roles (admins)")
    accounts = operator.add_subparsers(dest="operator_command", required=True)
    add = accounts.add_parser("add", help="invite an operator (Cognito e-mails a temporary password)")
    add.add_argument("username")
    add.add_argument("--email", required=True)
    add.add_argument("--role", required=True, choices=ROLES)
    add.set_defaults(run=operator_add_command)
    accounts_list = accounts.add_parser("list", help="every operator account, its role and status")
    accounts_list.add_argument("--json", action="store_true")
    accounts_list.set_defaults(run=operator_list_command)
    remove = accounts.add_parser("remove", help="disable and delete an operator account")
    remove.add_argument("username")
    remove.set_defaults(run=operator_remove_command)
    set_role = accounts.add_parser("set-role", help="make a role the operator's only role")
    set_role.add_argument("username")
    set_role.add_argument("role", choices=ROLES)
    set_role.set_defaults(run=operator_set_role_command)


def profile(args: argparse.Namespace) -> operator_profile.Profile:
    return operator_profile.resolve(getattr(args, "home", None), getattr(args, "stack", None))


def api(args: argparse.Namespace) -> OperatorApi:
    return for_profile(profile(args))


def login_command(args: argparse.Namespace) -> str:
    where = profile(args)
    username = args.username or input("User name: ").strip()
    if not username:
        raise UsageError("a user name is required")
    password = sys.stdin.readline().rstrip("\r\n") if args.password_stdin else getpass.getpass("Password: ")
    if not password:
        raise UsageError("a password is required")
    stdin_new_password = args.new_password_stdin
    tokens = operator_auth.login(
        where,
        username,
        password,
        mfa_code=_authenticator_code,
        new_password=lambda: _new_password(stdin_new_password),
        show_enrolment=_show_enrolment,
    )
    return f"signed in as {tokens.username}"


def _authenticator_code() -> str:
    return input("Authenticator code: ")


def _show_enrolment(enrolment: operator_auth.TotpEnrolment) -> None:
    """The secret goes to the terminal only (stderr: never into a redirected output file)."""
    print(
        "Add this account to your authenticator app (scan or type it), then enter its first code:\n"
        f"  {enrolment.uri()}\n  secret: {enrolment.secret}",
        file=sys.stderr,
    )


def mfa_setup_command(args: argparse.Namespace) -> str:
    operator_auth.enrol_totp(profile(args), _show_enrolment, _authenticator_code)
    return "authenticator app added: sign-in asks for its code from now on"


def _new_password(from_stdin: bool) -> str:
    """An invited operator's first sign-in: the password they choose (asked twice)."""
    if from_stdin:
        chosen = sys.stdin.readline().rstrip("\r\n")
    else:
        print("This is your first sign-in: choose a new password.", file=sys.stderr)
        chosen = getpass.getpass("New password: ")
        if chosen != getpass.getpass("New password again: "):
            raise UsageError("the new passwords differ")
    if not chosen:
        raise UsageError("a new password is required")
    return chosen


def logout_command(args: argparse.Namespace) -> str:
    """Sign out for real: the operator API refuses this operator's tokens issued until now (also
    those of another device or the console), Cognito revokes the refresh token, the cache goes.
    Whatever of the first two fails is said; the cache is deleted anyway."""
    where = profile(args)
    path = operator_auth.cache_path(where)
    tokens = operator_auth.load(path)
    if tokens is None:
        operator_auth.delete(path)  # a damaged cache
        return "not signed in"
    lines = []
    try:
        for_profile(where).post("/sign-out", action="sign out")
    except CliError as exc:
        if str(exc) != operator_auth.NOT_SIGNED_IN:  # 401: these tokens are refused already
            lines.append(
                f"the operator API did not record the sign-out ({exc}): tokens already issued "
                "stay valid until they expire"
            )
    not_revoked = operator_auth.revoke(where, tokens)
    if not_revoked:
        lines.append(f"the refresh token was not revoked: {not_revoked}")
    operator_auth.delete(path)
    return "\n".join([*lines, "signed out"])


def whoami_command(args: argparse.Namespace) -> str:
    me = api(args).get("/whoami", action="read who you are")
    if args.json:
        return as_json(me)
    lines = [
        f"username     {me.get('username')}",
        f"email        {me.get('email') or '-'}",
        f"subject      {me.get('subject')}",
        f"roles        {', '.join(me.get('roles') or []) or '-'}",
        f"permissions  {', '.join(me.get('permissions') or []) or '-'}",
    ]
    return "\n".join(lines)


def audit_list_command(args: argparse.Namespace) -> str:
    if args.day and not _DAY.match(args.day):
        raise UsageError(f"--day must be YYYY-MM-DD, got {args.day!r}")
    records = list(api(args).paginate("/audit", {"day": args.day}, action="read the audit trail"))
    if args.json:
        return as_json(records)
    return table(["AT", "USER", "METHOD", "ROUTE", "TARGETS", "STATUS", "NOTE"], [_row(r) for r in records])


def _row(record: dict[str, Any]) -> list[Any]:
    targets = record.get("targets") or {}
    return [
        record.get("at"),
        record.get("username"),
        record.get("method"),
        record.get("route"),
        " ".join(f"{k}={v}" for k, v in sorted(targets.items())) if isinstance(targets, dict) else targets,
        record.get("status"),
        record.get("note"),
    ]


def _user(username: str) -> str:
    return urllib.parse.quote(username, safe="")


def operator_add_command(args: argparse.Namespace) -> str:
    body = {"username": args.username, "email": args.email, "role": args.role}
    created = api(args).post("/operators", body, action="add operators")
    lines = [f"added {created.get('username')} ({args.role}), invited at {created.get('email')}"]
    password = created.get("temporary_password")
    if password:  # the local stack only (no e-mail there); printed this once, never stored
        lines.append(f"temporary password (local stack only, shown once): {password}")
    return "\n".join(lines)


def operator_list_command(args: argparse.Namespace) -> str:
    accounts = list(api(args).paginate("/operators", action="list operators"))
    if args.json:
        return as_json(accounts)
    rows = [
        [
            a.get("username"),
            a.get("email"),
            ",".join(a.get("roles") or []) or "-",
            a.get("status"),
            "yes" if a.get("enabled") else "no",
            a.get("created_at"),
        ]
        for a in accounts
    ]
    return table(["USERNAME", "EMAIL", "ROLES", "STATUS", "ENABLED", "CREATED"], rows)


def operator_remove_command(args: argparse.Namespace) -> str:
    api(args).delete(f"/operators/{_user(args.username)}", action="remove operators")
    return f"removed {args.username}"


def operator_set_role_command(args: argparse.Namespace) -> str:
    path = f"/operators/{_user(args.username)}/role"
    api(args).put(path, {"role": args.role}, action="change operators' roles")
    return f"{args.username} is now {args.role}"
