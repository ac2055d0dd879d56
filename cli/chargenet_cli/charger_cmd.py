"""`chargenet charger add|list|show|revoke|rotate`."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from chargenet.domain.time_zones import time_zone_name
from chargenet_cli import local_env
from chargenet_cli.errors import CliError, UsageError
from chargenet_cli.operator_cmd import api
from chargenet_cli.output import as_json, table
from chargenet_cli.provisioning import (
    certificates_of,
    charger_dir,
    check_charger_id,
    check_charger_password,
    local_broker,
    provision_with,
    rotate_with_shim_link,
)
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
    add.add_argument(
        "--root-ca",
        type=Path,
        help="with --stack: the CA the charger checks IoT's endpoint against (Amazon Root CA 1, "
        "https://www.amazontrust.com/repository/AmazonRootCA1.pem)",
    )
    add.add_argument(
        "--out", type=Path, help="with --stack: the new charger's credentials folder (default ./CHARGER_ID)"
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
    rotate.add_argument(
        "--dir", type=Path, help="with --stack: the charger's credentials folder (default ./CHARGER_ID)"
    )
    rotate.set_defaults(run=rotate_charger)


def add_charger(args: argparse.Namespace) -> str:
    check_charger_id(args.charger_id)
    password = _read_password() if args.password_stdin else None
    if password:
        check_charger_password(password)  # before any key, certificate or thing is made
    if args.rated_power_kw <= 0:
        raise UsageError("--rated-power-kw must be positive")
    if args.stack is None:
        if args.root_ca is not None or args.out is not None:
            raise UsageError("--root-ca and --out only with --stack: the local stack has its own")
        state = local_env.connect(args.home)
        folder, ca_pem, broker = (
            charger_dir(state, args.charger_id),
            Path(state.ca_path).read_text(),
            local_broker(state),
        )
    else:
        if args.root_ca is None:
            raise UsageError("--stack needs --root-ca: the CA the charger checks IoT's endpoint against")
        folder, ca_pem, broker = args.out or Path(args.charger_id), _read_root_ca(args.root_ca), None
    done = provision_with(
        api(args),
        folder,
        args.charger_id,
        args.site,
        ca_pem,
        broker,
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
    check_charger_id(args.charger_id)
    body = {"reason": args.reason} if args.reason else {}
    done = api(args).post(f"/chargers/{args.charger_id}/revoke", body, action="revoke a charger")
    if args.json:
        return as_json(done)
    sessions = ", ".join(done["sessions_for_review"]) or "none"
    return (
        f"charger {done['charger_id']} revoked: {len(done['certificate_ids'])} certificate(s) revoked, "
        f"connection dropped; sessions closed for review: {sessions}"
    )


def rotate_charger(args: argparse.Namespace) -> str:
    from chargenet_shim.link import LinkError

    check_charger_id(args.charger_id)
    if args.stack is None:
        folder = charger_dir(local_env.connect(args.home), args.charger_id)
    else:
        folder = args.dir or Path(args.charger_id)
    try:
        until = asyncio.run(rotate_with_shim_link(api(args), folder))
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


def _read_root_ca(path: Path) -> str:
    try:
        return path.read_text()
    except OSError as exc:
        raise UsageError(f"--root-ca {path}: {exc.strerror}") from exc


def list_chargers(args: argparse.Namespace) -> str:
    records = sorted(api(args).paginate("/chargers", action="list chargers"), key=lambda r: r["charger_id"])
    if args.json:
        return as_json(records)
    return fleet_table(records)


def fleet_table(records: list[dict[str, Any]]) -> str:
    rows = [
        (
            r["charger_id"],
            r["site_id"] or None,
            _state(r),
            _ocpp(r),
            " ".join(x for x in (r["vendor"], r["model"]) if x) or None,
            r["firmware_version"],
            _short_time(r["last_seen_at"]),
            ", ".join(f"{c['connector_id']}:{c['status']}" for c in r["connectors"]) or None,
        )
        for r in records
    ]
    return table(["CHARGER", "SITE", "STATE", "OCPP", "MODEL", "FIRMWARE", "LAST SEEN", "CONNECTORS"], rows)


def _ocpp(record: dict[str, Any]) -> str:
    """The OCPP version its last BootNotification came in: "1.6" when none is recorded (a charger
    that booted before versions were recorded speaks 1.6; one never booted is shown 1.6 too, as
    the backend writes to it)."""
    return str(record.get("ocpp_version") or "ocpp1.6").removeprefix("ocpp")


def _state(record: dict[str, Any]) -> str:
    if record.get("revoked_at"):
        return "revoked"
    return "online" if record["online"] else "offline"


def _short_time(value: str | None) -> str | None:
    return value[11:19] if value else None


def show_charger(args: argparse.Namespace) -> str:
    check_charger_id(args.charger_id)
    operator_api = api(args)
    record = operator_api.get(f"/chargers/{args.charger_id}", action="show a charger")
    identity = certificates_of(operator_api, args.charger_id)
    # the zone its sessions are priced on, wherever it comes from (its own, its site's, the deployment's)
    record["time_zone"] = identity["time_zone"]
    # the version commands go out in: a charger not booted since versions were recorded speaks 1.6
    record["ocpp_version"] = identity["ocpp_version"]
    record["certificates"] = identity["certificates"]
    record["device_model"] = identity["device_model"]
    if args.json:
        return as_json(record)
    lines = [
        f"{key}: {'-' if value is None else value}"
        for key, value in record.items()
        if key not in ("connectors", "certificates", "device_model")
    ]
    lines += [f"certificate {c['certificate_id'][:12]}...: {c['status']}" for c in record["certificates"]]
    connectors = [
        (c["connector_id"], c["status"], c["error_code"], c["vendor_error_code"], c["status_at"])
        for c in record["connectors"]
    ]
    lines += ["", table(["CONNECTOR", "STATUS", "ERROR", "VENDOR ERROR", "SINCE"], connectors)]
    if record["device_model"] is not None:
        lines += ["", *device_model_lines(record["device_model"])]
    return "\n".join(lines)


def device_model_lines(model: dict[str, Any]) -> list[str]:
    """The device model the charger last reported (NotifyReport), a variable a row."""
    state = "complete" if model["complete"] else "incomplete: parts still missing"
    heading = f"device model (report {model['request_id']} of {model['generated_at']}, {state}):"
    rows = [
        (
            _instance(e["component"], e["component_instance"]),
            _evse(e["evse_id"], e["connector_id"]),
            _instance(e["variable"], e["variable_instance"]),
            e["values"].get("Actual"),
            ", ".join(f"{kind} {value}" for kind, value in e["values"].items() if kind != "Actual") or None,
            e["mutability"],
        )
        for e in model["entries"]
    ]
    return [
        heading,
        table(["COMPONENT", "EVSE", "VARIABLE", "VALUE", "OTHER ATTRIBUTES", "MUTABILITY"], rows),
    ]


def _instance(name: str, instance: str | None) -> str:
    return f"{name}[{instance}]" if instance else name


def _evse(evse_id: int | None, connector_id: int | None) -> str | None:
    if evse_id is None:
        return None
    return f"{evse_id}/{connector_id}" if connector_id is not None else str(evse_id)
