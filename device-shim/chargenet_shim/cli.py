"""`chargenet-shim`: run the site gateway, run a simulated fleet once, or set a charger's password."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from pydantic import ValidationError

from chargenet_shim.credentials import FILE_NAME, ChargerCredentials, hash_password
from chargenet_shim.fleet import FleetResult, run_fleet
from chargenet_shim.gateway import GatewayConfig, serve


class UsageError(Exception):
    """Bad input from the operator: reported as one line, exit status 2."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="chargenet-shim", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    gateway = commands.add_parser("gateway", help="OCPP-J 1.6 WebSocket gateway for the site's chargers")
    gateway.add_argument("--credentials-dir", type=Path, required=True, help="one subfolder per charger id")
    gateway.add_argument("--port", type=int, required=True)
    gateway.add_argument("--host", default="127.0.0.1")
    gateway.add_argument("--profile", type=int, choices=(1, 2), default=1, help="OCPP security profile")
    gateway.add_argument("--tls-cert", type=Path, help="server certificate (profile 2)")
    gateway.add_argument("--tls-key", type=Path, help="server private key (profile 2)")

    simulate = commands.add_parser("simulate", help="boot a simulated fleet once and print the results")
    simulate.add_argument("--credentials-dir", type=Path, required=True, help="one subfolder per charger id")
    simulate.add_argument("--chargers", help="comma-separated charger ids (default: every subfolder)")

    password = commands.add_parser("set-password", help="store a Basic Auth password hash (read from stdin)")
    password.add_argument("charger_dir", type=Path, help="the charger's folder holding charger.json")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        if args.command == "gateway":
            return _gateway(args)
        if args.command == "simulate":
            return _simulate(args)
        return _set_password(args.charger_dir)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'input'}: {e['msg']}" for e in exc.errors())
        print(f"chargenet-shim {args.command}: {problems}", file=sys.stderr)
        return 2
    except (UsageError, OSError) as exc:
        print(f"chargenet-shim {args.command}: {exc}", file=sys.stderr)
        return 2


def _gateway(args: argparse.Namespace) -> int:
    config = GatewayConfig(
        host=args.host,
        port=args.port,
        credentials_dir=_existing_dir(args.credentials_dir),
        security_profile=args.profile,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
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
    results = asyncio.run(run_fleet(credentials))
    print(format_table(results))
    return 0 if all(r.boot_status == "Accepted" and r.error is None for r in results) else 1


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
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows
    )


def _set_password(charger_dir: Path) -> int:
    credentials = ChargerCredentials.load(_existing_dir(charger_dir))
    password = _read_password()
    credentials.model_copy(update={"password_hash": hash_password(password)}).save(charger_dir)
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
