"""`chargenet-shim`: run the site gateway, run a simulated fleet once, or set a charger's password.

`simulate` and `gateway` take firmware rollouts as IoT Jobs on every charger's MQTT link
(jobs.py), always: `chargenet firmware deploy` runs a rollout as one IoT job in the cloud (and
through the local stack's broker), so a charger that did not listen would never be updated.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import logging
import random
import sys
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

from pydantic import ValidationError

from chargenet_shim.chaos import ChaosConfig
from chargenet_shim.claim import ClaimRejected, claim
from chargenet_shim.credentials import FILE_NAME, ChargerCredentials, hash_password
from chargenet_shim.firmware import OperatorKey
from chargenet_shim.fleet import FleetResult, SessionFailure, SessionOutcome, run_fleet, run_sessions
from chargenet_shim.gateway import GatewayConfig, serve
from chargenet_shim.rotation import (
    DEFAULT_CHECK_EVERY_S,
    DEFAULT_RENEW_BEFORE,
    DEFAULT_ROTATE_AFTER,
    MaximumAge,
)
from chargenet_shim.session import sample_plan
from chargenet_shim.simclock import SimClock
from chargenet_shim.simulator import SimulatedCharger

# Options that only mean something with --sessions.
_SESSION_DEFAULTS = {"speed": 600.0, "duplicate": 0.0, "reorder": 0.0, "seed": 1}


class UsageError(Exception):
    """Bad input from the operator: reported as one line, exit status 2."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="chargenet-shim", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)

    gateway = commands.add_parser("gateway", help="OCPP-J 1.6 WebSocket gateway for the site's chargers")
    gateway.add_argument("--credentials-dir", type=Path, required=True, help="one subfolder per charger id")
    gateway.add_argument("--port", type=int, required=True)
    gateway.add_argument("--host", default="127.0.0.1")
    gateway.add_argument(
        "--security-profile",
        "--profile",
        dest="profile",
        type=int,
        choices=(1, 2, 3),
        default=1,
        help="OCPP security profile: 1 ws + Basic Auth (needs --allow-plain-ws), 2 TLS + Basic Auth, "
        "3 TLS + client certificates",
    )
    gateway.add_argument(
        "--allow-plain-ws",
        action="store_true",
        help="run profile 1: passwords cross the network in clear, for a trusted site LAN only",
    )
    gateway.add_argument("--tls-cert", type=Path, help="server certificate (profiles 2 and 3)")
    gateway.add_argument("--tls-key", type=Path, help="server private key (profiles 2 and 3)")
    gateway.add_argument("--tls-ca", type=Path, help="CA file that signs charger certificates (profile 3)")
    gateway.add_argument(
        "--operator-org", help="organization (O) charger certificates must carry (profile 3)"
    )
    gateway.add_argument(
        "--firmware-key",
        type=Path,
        help="the operator's firmware signing public key (PEM) updates are verified with (default: none, "
        "every firmware update is refused)",
    )
    _renewal_options(gateway)

    simulate = commands.add_parser(
        "simulate", help="boot a simulated fleet once and print the results, or run charging sessions"
    )
    simulate.add_argument("--credentials-dir", type=Path, required=True, help="one subfolder per charger id")
    simulate.add_argument("--chargers", help="comma-separated charger ids (default: every subfolder)")
    simulate.add_argument(
        "--sessions", type=int, help="charging sessions per charger (alternating connectors)"
    )
    simulate.add_argument(
        "--firmware-key",
        type=Path,
        help="the operator's firmware signing public key (PEM) the chargers trust (default: none, "
        "every UpdateFirmware image is refused)",
    )
    _renewal_options(simulate)
    sessions = simulate.add_argument_group("with --sessions")
    sessions.add_argument("--speed", type=float, help="simulated seconds per real second (default 600)")
    sessions.add_argument("--duplicate", type=float, help="probability a frame is sent twice (default 0)")
    sessions.add_argument(
        "--reorder", type=float, help="probability a late copy of a frame follows (default 0)"
    )
    sessions.add_argument("--seed", type=int, help="seeds the session plans and the chaos (default 1)")

    claim = commands.add_parser(
        "claim", help="factory provisioning: turn the batch claim certificate into this charger's own"
    )
    claim.add_argument(
        "--claim-dir", type=Path, required=True, help="claim.pem, claim.key, ca.pem, claim.json"
    )
    claim.add_argument("--serial", required=True, help="the charger's serial number (becomes its charger id)")
    claim.add_argument(
        "--out", type=Path, required=True, help="the charger's folder: key store and charger.json"
    )

    password = commands.add_parser("set-password", help="store a Basic Auth password hash (read from stdin)")
    password.add_argument("charger_dir", type=Path, help="the charger's folder holding charger.json")
    return parser


def _renewal_options(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--renew-before-days",
        type=int,
        default=DEFAULT_RENEW_BEFORE.days,
        help="rotate each charger's certificate when it expires within this many days "
        f"(default {DEFAULT_RENEW_BEFORE.days})",
    )
    command.add_argument(
        "--renew-check-s",
        type=float,
        default=DEFAULT_CHECK_EVERY_S,
        help=f"seconds between certificate expiry checks (default {DEFAULT_CHECK_EVERY_S:g})",
    )
    command.add_argument(
        "--rotate-after-days",
        type=int,
        default=DEFAULT_ROTATE_AFTER.days,
        help="also rotate a certificate once it is this many days old, however far its expiry "
        "(IoT's certificates are valid until 2049); 0: never for its age "
        f"(default {DEFAULT_ROTATE_AFTER.days})",
    )


def _configure_renewal(args: argparse.Namespace) -> None:
    if args.renew_before_days < 1:
        raise UsageError("--renew-before-days must be at least 1")
    if args.renew_check_s <= 0:
        raise UsageError("--renew-check-s must be positive")
    # One shim, one policy: every charger it runs renews on the same terms (like --firmware-key).
    SimulatedCharger.renew_before = timedelta(days=args.renew_before_days)
    SimulatedCharger.renew_check_every_s = args.renew_check_s
    _configure_maximum_age(args)


def _configure_maximum_age(args: argparse.Namespace) -> None:
    if args.rotate_after_days < 0:
        raise UsageError("--rotate-after-days must be 0 (no maximum age) or more")
    MaximumAge.rotate_after = timedelta(days=args.rotate_after_days) if args.rotate_after_days else None


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        if args.command == "gateway":
            return _gateway(args)
        if args.command == "simulate":
            return _simulate(args)
        if args.command == "claim":
            return _claim(args)
        return _set_password(args.charger_dir)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'input'}: {e['msg']}" for e in exc.errors())
        print(f"chargenet-shim {args.command}: {problems}", file=sys.stderr)
        return 2
    except (UsageError, OSError) as exc:
        print(f"chargenet-shim {args.command}: {exc}", file=sys.stderr)
        return 2


def _gateway(args: argparse.Namespace) -> int:
    _configure_maximum_age(args)
    config = GatewayConfig(
        host=args.host,
        port=args.port,
        credentials_dir=_existing_dir(args.credentials_dir),
        security_profile=args.profile,
        allow_plain_ws=args.allow_plain_ws,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        client_ca=args.tls_ca,
        operator_org=args.operator_org,
        firmware_key=args.firmware_key,
        renew_before_days=args.renew_before_days,
        renew_check_s=args.renew_check_s,
    )
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_run_gateway(config))
    return 0


async def _run_gateway(config: GatewayConfig) -> None:
    gateway = await serve(config)
    try:
        await gateway.serve_forever()
    finally:
        await gateway.close()


def _simulate(args: argparse.Namespace) -> int:
    folder = _existing_dir(args.credentials_dir)
    credentials = [
        ChargerCredentials.load(folder / charger_id) for charger_id in _charger_ids(folder, args.chargers)
    ]
    if args.firmware_key is not None:
        # One operator signs the firmware of every charger this shim runs: they pin the same key.
        SimulatedCharger.firmware_key = _operator_key(args.firmware_key)
    _configure_renewal(args)
    # At simulation speed ocpp's per-frame INFO lines would bury the result.
    logging.getLogger("ocpp").setLevel(logging.WARNING)
    if args.sessions is not None:
        return _simulate_sessions(args, credentials)
    given = [f"--{name}" for name in _SESSION_DEFAULTS if getattr(args, name) is not None]
    if given:
        raise UsageError(f"{', '.join(given)} only with --sessions")
    results = asyncio.run(run_fleet(credentials))
    print(format_table(results))
    return 0 if all(r.boot_status == "Accepted" and r.error is None for r in results) else 1


def _operator_key(path: Path) -> OperatorKey:
    try:
        return OperatorKey.from_pem(path.read_bytes())
    except ValueError as exc:
        raise UsageError(f"--firmware-key {path}: {exc}") from exc


def _simulate_sessions(args: argparse.Namespace, credentials: list[ChargerCredentials]) -> int:
    speed, duplicate, reorder, seed = (
        default if getattr(args, name) is None else getattr(args, name)
        for name, default in _SESSION_DEFAULTS.items()
    )
    if args.sessions < 1:
        raise UsageError("--sessions must be at least 1")
    if speed <= 0:
        raise UsageError("--speed must be positive")
    try:
        chaos = ChaosConfig(duplicate=duplicate, reorder=reorder, seed=seed)
    except ValueError as exc:
        raise UsageError(f"--duplicate/--reorder: {exc}") from exc
    if duplicate or reorder:
        # Every duplicate or late copy gets a second reply, which ocpp logs as an error.
        logging.getLogger("ocpp").addFilter(_expected_stale_replies)
    rng = random.Random(seed)
    plans = [[sample_plan(rng, connector_id=1 + i % 2) for i in range(args.sessions)] for _ in credentials]
    outcomes = asyncio.run(
        run_sessions(credentials, plans, SimClock(speed=speed), chaos=chaos if duplicate or reorder else None)
    )
    print(format_sessions(outcomes))
    return 0 if not any(isinstance(o, SessionFailure) for o in outcomes) else 1


def _expected_stale_replies(record: logging.LogRecord) -> bool:
    return not record.getMessage().startswith("Ignoring response with unknown unique id")


def format_sessions(outcomes: Sequence[SessionOutcome]) -> str:
    header = ("charger", "connector", "tx", "kWh", "charging min", "idle min", "peak kW", "error")
    rows = [header] + [
        (o.charger_id, str(o.connector_id), "-", "-", "-", "-", "-", o.error)
        if isinstance(o, SessionFailure)
        else (
            o.charger_id,
            str(o.connector_id),
            str(o.transaction_id),
            f"{o.energy_wh / 1000:.3f}",
            f"{o.charging_s / 60:.1f}",
            f"{o.idle_s / 60:.1f}",
            f"{o.peak_power_kw:.1f}",
            "",
        )
        for o in outcomes
    ]
    return _table(rows)


def _charger_ids(folder: Path, wanted: str | None) -> list[str]:
    available = sorted(p.parent.name for p in folder.glob(f"*/{FILE_NAME}"))
    if wanted is None:
        if not available:
            raise UsageError(f"no charger folders with {FILE_NAME} in {folder}")
        return available
    ids = [part.strip() for part in wanted.split(",") if part.strip()]
    unknown = sorted(set(ids) - set(available))
    if not ids or unknown:
        raise UsageError(f"unknown charger ids: {', '.join(unknown) or '(none given)'}")
    return ids


def format_table(results: Sequence[FleetResult]) -> str:
    header = ("charger", "connected", "boot", "interval", "boot ms", "error")
    rows = [header] + [
        (
            r.charger_id,
            "yes" if r.connected else "no",
            r.boot_status or "-",
            "-" if r.heartbeat_interval is None else str(r.heartbeat_interval),
            "-" if r.boot_rtt_ms is None else f"{r.boot_rtt_ms:.1f}",
            r.error or "",
        )
        for r in results
    ]
    return _table(rows)


def _table(rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows
    )


def _claim(args: argparse.Namespace) -> int:
    try:
        folder = asyncio.run(claim(_existing_dir(args.claim_dir), args.serial, args.out))
    except ClaimRejected as exc:
        print(f"chargenet-shim claim: {exc}", file=sys.stderr)
        return 1
    print(f"provisioned {args.serial}: credentials in {folder}")
    return 0


def _set_password(charger_dir: Path) -> int:
    credentials = ChargerCredentials.load(_existing_dir(charger_dir))
    password = _read_password()
    try:
        password_hash = hash_password(password)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    credentials.model_copy(update={"password_hash": password_hash}).save(charger_dir)
    print(f"password set for {credentials.charger_id}")
    return 0


def _read_password() -> str:
    # Interactive use must not echo the password; piped input is taken as-is (one line).
    password = getpass.getpass("password: ") if sys.stdin.isatty() else sys.stdin.readline().rstrip("\r\n")
    if not password:
        raise UsageError("empty password")
    return password


def _existing_dir(path: Path) -> Path:
    if not path.is_dir():
        raise UsageError(f"not a directory: {path}")
    return path
