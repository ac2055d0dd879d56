"""`chargenet-shim simulate`: a simulated fleet on the chargers' own MQTT links, from the command line.

The command's options are declared with the others in chargenet_shim.cli, which calls
`simulate` only for this command, so running the gateway never loads the simulator.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

from chargenet_firmware_format import OperatorKey
from chargenet_shim.cli import UsageError, _configure_maximum_age, existing_dir
from chargenet_shim.credentials import FILE_NAME, ChargerCredentials
from chargenet_shim.ocpp_version import OcppVersion
from chargenet_shim.sim.chaos import ChaosConfig
from chargenet_shim.sim.charger201 import SimulatedCharger201
from chargenet_shim.sim.fleet import (
    FleetResult,
    SessionFailure,
    SessionOutcome,
    parse_versions,
    run_fleet,
    run_sessions,
)
from chargenet_shim.sim.session import sample_plan
from chargenet_shim.sim.simclock import SimClock
from chargenet_shim.sim.simulator import SimulatedCharger

# Options that only mean something with --sessions.
_SESSION_DEFAULTS = {"speed": 600.0, "duplicate": 0.0, "reorder": 0.0, "seed": 1}


def _configure_renewal(args: argparse.Namespace) -> None:
    if args.renew_before_days < 1:
        raise UsageError("--renew-before-days must be at least 1")
    if args.renew_check_s <= 0:
        raise UsageError("--renew-check-s must be positive")
    # One shim, one policy: every charger it runs renews on the same terms (like --firmware-key).
    for charger_class in (SimulatedCharger, SimulatedCharger201):
        charger_class.renew_before = timedelta(days=args.renew_before_days)
        charger_class.renew_check_every_s = args.renew_check_s
    _configure_maximum_age(args)


def simulate(args: argparse.Namespace) -> int:
    """`chargenet-shim simulate`: boot the fleet once, or run --sessions charging sessions; the exit status."""
    folder = existing_dir(args.credentials_dir)
    credentials = [
        ChargerCredentials.load(folder / charger_id) for charger_id in _charger_ids(folder, args.chargers)
    ]
    try:
        versions = parse_versions(args.ocpp_versions)
    except ValueError as exc:
        raise UsageError(f"--ocpp-versions: {exc}") from exc
    if args.firmware_key is not None:
        # One operator signs the firmware of every charger this shim runs: they pin the same key.
        SimulatedCharger.firmware_key = SimulatedCharger201.firmware_key = _operator_key(args.firmware_key)
    _configure_renewal(args)
    # At simulation speed ocpp's per-frame INFO lines would bury the result.
    logging.getLogger("ocpp").setLevel(logging.WARNING)
    if args.sessions is not None:
        return _simulate_sessions(args, credentials, versions)
    given = [f"--{name}" for name in _SESSION_DEFAULTS if getattr(args, name) is not None]
    if given:
        raise UsageError(f"{', '.join(given)} only with --sessions")
    results = asyncio.run(run_fleet(credentials, versions=versions))
    print(format_table(results))
    return 0 if all(r.boot_status == "Accepted" and r.error is None for r in results) else 1


def _operator_key(path: Path) -> OperatorKey:
    try:
        return OperatorKey.from_pem(path.read_bytes())
    except ValueError as exc:
        raise UsageError(f"--firmware-key {path}: {exc}") from exc


def _simulate_sessions(
    args: argparse.Namespace, credentials: list[ChargerCredentials], versions: list[OcppVersion]
) -> int:
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
        run_sessions(
            credentials,
            plans,
            SimClock(speed=speed),
            chaos=chaos if duplicate or reorder else None,
            versions=versions,
        )
    )
    print(format_sessions(outcomes))
    return 0 if not any(isinstance(o, SessionFailure) for o in outcomes) else 1


def _expected_stale_replies(record: logging.LogRecord) -> bool:
    return not record.getMessage().startswith("Ignoring response with unknown unique id")


def format_sessions(outcomes: Sequence[SessionOutcome]) -> str:
    header = ("charger", "connector", "ocpp", "tx", "kWh", "charging min", "idle min", "peak kW", "error")
    rows = [header] + [
        (o.charger_id, str(o.connector_id), "-", "-", "-", "-", "-", "-", o.error)
        if isinstance(o, SessionFailure)
        else (
            o.charger_id,
            str(o.connector_id),
            OcppVersion(o.ocpp_version).schemas,
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
    header = ("charger", "ocpp", "connected", "boot", "interval", "boot ms", "error")
    rows = [header] + [
        (
            r.charger_id,
            r.ocpp_version.schemas,
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
