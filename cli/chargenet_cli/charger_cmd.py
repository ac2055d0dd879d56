"""`chargenet charger add|list|show|revoke|rotate`."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from chargenet.domain.time_zones import time_zone_name
from chargenet.services.operator_api import charger_record
from chargenet_cli import local_env
from chargenet_cli.errors import CliError, UsageError
from chargenet_cli.output import as_json, table
from chargenet_shim.credentials import MIN_PASSWORD_BYTES


def register(commands: argparse._SubParsersAction) -> None:
    charger = commands.add_parser("charger", help="provision and inspect chargers")
    sub = charger.add_subparsers(dest="charger_command", required=True)
    add = sub.add_parser(
        "add", help="provision a charger: key pair on the device side, certificate, thing, registry"
    )
    add.add_argument("charger_id")
    add.add_argument("--site", default="", help="site the charger belongs to")
    add.add_argument(
        "--time-zone",
        type=time_zone_argument,
        help="IANA zone of the charger's wall clock, e.g. Europe/Stockholm, which time-of-day and weekday "
        "prices read (default: its site's, `chargenet site set-time-zone`, else the deployment's)",
    )
    add.add_argument(
        "--rated-power-kw", type=int, default=22, help="most power any connector delivers (default 22)"
    )
    add.add_argument(
        "--password-stdin",
        action="store_true",
        help=f"read an OCPP Basic Auth password (at least {MIN_PASSWORD_BYTES} bytes) from stdin",
    )
    add.add_argument("--json", action="store_true")
    add.set_defaults(run=add_charger)
    listing = sub.add_parser("list", help="every charger with its state")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(run=list_chargers)
    show = sub.add_parser("show", help="one charger in detail")
    show.add_argument("charger_id")
    show.add_argument("--json", action="store_true")
    show.set_defaults(run=show_charger)
    revoke = sub.add_parser(
        "revoke", help="revoke the charger's certificates, disconnect it, close its sessions for review"
    )
    revoke.add_argument("charger_id")
    revoke.add_argument("--reason", help="why (kept on the charger record and its sessions' review)")
    revoke.add_argument("--json", action="store_true")
    revoke.set_defaults(run=revoke_charger)
    rotate = sub.add_parser(
        "rotate", help="new key and certificate; the old one is deactivated once the new one connected"
    )
    rotate.add_argument("charger_id")
    rotate.add_argument("--days", type=int, default=365, help="validity of the new certificate (default 365)")
    rotate.set_defaults(run=rotate_charger)


def add_charger(args: argparse.Namespace) -> str:
    state = local_env.connect(args.home)
    from chargenet_cli.provisioning import provision

    password = _read_password() if args.password_stdin else None
    if args.rated_power_kw <= 0:
        raise UsageError("--rated-power-kw must be positive")
    done = provision(
        state,
        args.charger_id,
        args.site,
        password,
        rated_power_w=args.rated_power_kw * 1000,
        time_zone=args.time_zone,
    )
    if args.json:
        return as_json(
            {
                "charger_id": done.charger_id,
                "site_id": done.site_id,
                "certificate_id": done.certificate_id,
                "certificate_not_after": done.certificate_not_after.isoformat(),
                "credentials_dir": str(done.credentials_dir),
            }
        )
    return (
        f"charger {done.charger_id} provisioned: certificate {done.certificate_id[:12]}... "
        f"valid until {done.certificate_not_after:%Y-%m-%d}; shim credentials in {done.credentials_dir}"
    )


def revoke_charger(args: argparse.Namespace) -> str:
    state = local_env.connect(args.home)
    from chargenet_cli.provisioning import revoke

    done = revoke(state, args.charger_id, args.reason)
    if args.json:
        return as_json(
            {
                "charger_id": done.charger_id,
                "revoked_at": done.revoked_at.isoformat(),
                "certificate_ids": done.certificate_ids,
                "sessions_for_review": done.sessions_for_review,
            }
        )
    sessions = ", ".join(done.sessions_for_review) or "none"
    return (
        f"charger {done.charger_id} revoked: {len(done.certificate_ids)} certificate(s) revoked, "
        f"connection dropped; sessions closed for review: {sessions}"
    )


def rotate_charger(args: argparse.Namespace) -> str:
    state = local_env.connect(args.home)
    from chargenet_cli.provisioning import LocalIssuer, check_charger_id, rotate_with_shim_link
    from chargenet_shim.link import LinkError

    check_charger_id(args.charger_id)
    if args.days <= 0:
        raise UsageError("--days must be positive")
    charger = _registry().get(args.charger_id)
    if charger is None:
        raise CliError(f"no charger {args.charger_id}")
    if charger.revoked_at is not None:
        raise CliError(f"charger {args.charger_id} is revoked: a revoked charger is not rotated")
    try:
        until = asyncio.run(rotate_with_shim_link(state, args.charger_id, LocalIssuer(state, args.days)))
    except LinkError as exc:
        raise CliError(f"rotation failed, the old certificate stays in use: {exc}") from exc
    return (
        f"charger {args.charger_id}: certificate rotated, valid until {until:%Y-%m-%d}; old one deactivated"
    )


def time_zone_argument(value: str) -> str:
    """argparse type: an IANA zone name, or a usage error saying what is expected."""
    try:
        return time_zone_name(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _read_password() -> str:
    password = sys.stdin.readline().rstrip("\n")
    if not password:
        raise UsageError("--password-stdin: no password on standard input")
    return password


def _registry() -> Any:
    from chargenet.adapters.dynamodb import DynamoChargerRegistry

    return DynamoChargerRegistry()


def list_chargers(args: argparse.Namespace) -> str:
    local_env.connect(args.home)
    registry = _registry()
    records = [charger_record(c, registry.connectors(c.charger_id)) for c in registry.list()]
    if args.json:
        return as_json(records)
    return fleet_table(records)


def fleet_table(records: list[dict[str, Any]]) -> str:
    rows = [
        (
            r["charger_id"],
            r["site_id"] or None,
            _state(r),
            " ".join(x for x in (r["vendor"], r["model"]) if x) or None,
            r["firmware_version"],
            _short_time(r["last_seen_at"]),
            ", ".join(f"{c['connector_id']}:{c['status']}" for c in r["connectors"]) or None,
        )
        for r in records
    ]
    return table(["CHARGER", "SITE", "STATE", "MODEL", "FIRMWARE", "LAST SEEN", "CONNECTORS"], rows)


def _state(record: dict[str, Any]) -> str:
    if record.get("revoked_at"):
        return "revoked"
    return "online" if record["online"] else "offline"


def _short_time(value: str | None) -> str | None:
    return value[11:19] if value else None


def show_charger(args: argparse.Namespace) -> str:
    local_env.connect(args.home)
    from chargenet_cli.provisioning import certificates_of, check_charger_id

    check_charger_id(args.charger_id)
    registry = _registry()
    charger = registry.get(args.charger_id)
    if charger is None:
        raise CliError(f"no charger {args.charger_id}")
    record = charger_record(charger, registry.connectors(args.charger_id))
    # the zone its sessions are priced on, wherever it comes from (its own, its site's, the deployment's)
    record["time_zone"] = registry.time_zone_of(charger)
    record["certificates"] = certificates_of(args.charger_id)
    if args.json:
        return as_json(record)
    lines = [
        f"{key}: {'-' if value is None else value}"
        for key, value in record.items()
        if key not in ("connectors", "certificates")
    ]
    lines += [f"certificate {c['certificate_id'][:12]}...: {c['status']}" for c in record["certificates"]]
    connectors = [
        (c["connector_id"], c["status"], c["error_code"], c["vendor_error_code"], c["status_at"])
        for c in record["connectors"]
    ]
    lines += ["", table(["CONNECTOR", "STATUS", "ERROR", "VENDOR ERROR", "SINCE"], connectors)]
    return "\n".join(lines)
