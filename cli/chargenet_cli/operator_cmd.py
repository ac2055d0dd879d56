"""`chargenet login | logout | whoami` and `chargenet audit list`: operators signed in to the operator
API (the local stack by default, `chargenet --stack NAME` a deployed one)."""

from __future__ import annotations

import argparse
import getpass
import re
import sys
from typing import Any

from chargenet_cli import operator_auth, operator_profile
from chargenet_cli.errors import UsageError
from chargenet_cli.operator_api import OperatorApi, for_profile
from chargenet_cli.output import as_json, table

_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def register(commands: argparse._SubParsersAction) -> None:
    login = commands.add_parser("login", help="sign in to the operator API (tokens cached 0600)")
    login.add_argument("--username", help="default: asked")
    login.add_argument(
        "--password-stdin", action="store_true", help="read the password from stdin (default: asked)"
    )
    login.set_defaults(run=login_command)
    logout = commands.add_parser("logout", help="forget this profile's cached tokens")
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
    tokens = operator_auth.login(where, username, password, mfa_code=lambda: input("Authenticator code: "))
    return f"signed in as {tokens.username}"


def logout_command(args: argparse.Namespace) -> str:
    removed = operator_auth.delete(operator_auth.cache_path(profile(args)))
    return "signed out" if removed else "not signed in"


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
