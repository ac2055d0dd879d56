"""`chargenet-shim`: run the site gateway, run a simulated fleet once, or set a charger's password.

`simulate` and `gateway` take firmware rollouts as IoT Jobs on every charger's MQTT link
(jobs.py), always: `chargenet firmware deploy` runs a rollout as one IoT job in the cloud (and
through the local stack's broker), so a charger that did not listen would never be updated.

`simulate` runs in chargenet_shim.sim.command, imported only for that command: the gateway's
process never loads the simulator.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import logging
import sys
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

from pydantic import ValidationError

from chargenet_shim.claim import ClaimRejected, claim
from chargenet_shim.credentials import ChargerCredentials, hash_password
from chargenet_shim.gateway import GatewayConfig, serve
from chargenet_shim.rotation import (
    DEFAULT_CHECK_EVERY_S,
    DEFAULT_RENEW_BEFORE,
    DEFAULT_ROTATE_AFTER,
    MaximumAge,
)


class UsageError(Exception):
    """Bad input from the operator: reported as one line, exit status 2."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="chargenet-shim", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)

    gateway = commands.add_parser(
        "gateway",
        help="OCPP-J 1.6 and 2.0.1 WebSocket gateway for the site's chargers",
        description="OCPP-J WebSocket gateway for the site's chargers, at /ocpp/<charger id>: each "
        "charger speaks the subprotocol it offers, ocpp2.0.1 or ocpp1.6 (2.0.1 when it offers both), "
        "and its frames reach that version's ingest rule over its own mTLS MQTT link",
    )
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
        help="the operator's firmware signing public key (PEM) updates are verified with before a "
        "charger is offered them, with the manufacturer's signature (1.6 SignedUpdateFirmware, 2.0.1 "
        "UpdateFirmware; default: none, every firmware update is refused)",
    )
    _renewal_options(gateway)

    simulate = commands.add_parser(
        "simulate", help="boot a simulated fleet once and print the results, or run charging sessions"
    )
    simulate.add_argument("--credentials-dir", type=Path, required=True, help="one subfolder per charger id")
    simulate.add_argument("--chargers", help="comma-separated charger ids (default: every subfolder)")
    simulate.add_argument(
        "--ocpp-versions",
        default="1.6",
        help="OCPP versions the chargers speak, repeated over them in order: 1.6,2.0.1 every other "
        "charger 2.0.1, 2.0.1 all of them (default 1.6)",
    )
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
            # Only this command loads the simulator: the gateway's process never imports it.
            from chargenet_shim.sim.command import simulate

            return simulate(args)
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
        credentials_dir=existing_dir(args.credentials_dir),
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


def _claim(args: argparse.Namespace) -> int:
    try:
        folder = asyncio.run(claim(existing_dir(args.claim_dir), args.serial, args.out))
    except ClaimRejected as exc:
        print(f"chargenet-shim claim: {exc}", file=sys.stderr)
        return 1
    print(f"provisioned {args.serial}: credentials in {folder}")
    return 0


def _set_password(charger_dir: Path) -> int:
    credentials = ChargerCredentials.load(existing_dir(charger_dir))
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


def existing_dir(path: Path) -> Path:
    if not path.is_dir():
        raise UsageError(f"not a directory: {path}")
    return path
