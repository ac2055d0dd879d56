"""`chargenet tariff ...`: OCPI 2.2.1 tariffs.

`tariff price` runs the tariff engine on two files and needs no stack. `tariff set | assign | list`
go through the operator API (docs/operators.md), which validates and stores them.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import TypeVar

from chargenet.domain.tariffs import (
    ChargingPeriod,
    Price,
    PricedSession,
    TariffError,
    load_session,
    load_tariff,
    price_session,
)
from chargenet_cli.errors import CliError, UsageError
from chargenet_cli.operator_cmd import api
from chargenet_cli.output import as_json, table

T = TypeVar("T")

PRICE_EPILOG = """\
SESSION.json: {"start": "2025-03-01T20:30:00Z", "time_zone": "Europe/Stockholm", "periods": [{"minutes": 90,
"energy_kwh": "20.5", "power_kw": "11", "current_a": "16", "parking": false}, {"minutes": 40, "energy_kwh": 0,
"parking": true}]}
Periods follow each other from start. time_zone (optional, an IANA name) is the site's: time-of-day, date and
weekday restrictions are read on its wall clock, daylight-saving changes included, whatever offset start is
written with (a charger's UTC "Z" included); without it, the start's UTC offset is the local time for the
whole session. power_kw and current_a are optional (unknown satisfies no power/current restriction).

--json prints the OCPI CDR cost fields (total_cost, total_fixed_cost, total_energy, total_energy_cost,
total_time, total_time_cost, total_parking_time, total_parking_cost, charging_periods) plus currency,
time_zone (the wall clock restrictions were read on: the IANA name, or the start's UTC offset) and notes. Every decimal is a JSON string, never a JSON number, so no reader turns it into a float: amounts
to the currency's minor unit ("7.90"), energy in kWh and times in hours with up to 6 decimals.
"""


def register(commands: argparse._SubParsersAction) -> None:
    tariff = commands.add_parser(
        "tariff", help="OCPI 2.2.1 tariffs: store, assign, list, price a session offline"
    )
    sub = tariff.add_subparsers(dest="tariff_command", required=True)
    price = sub.add_parser(
        "price",
        help="price a session with a tariff (no stack needed)",
        description="Price a charging session with an OCPI 2.2.1 tariff, exactly as billing will.",
        epilog=PRICE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    price.add_argument("tariff_file", type=Path, metavar="TARIFF.json", help="an OCPI 2.2.1 Tariff object")
    price.add_argument("session_file", type=Path, metavar="SESSION.json", help="the session to price")
    price.add_argument("--json", action="store_true", help="CDR cost fields as JSON (decimals as strings)")
    price.set_defaults(run=price_cmd)
    store = sub.add_parser(
        "set", help="store (or replace) an OCPI 2.2.1 tariff; running sessions keep theirs"
    )
    store.add_argument("tariff_file", type=Path, metavar="TARIFF.json")
    store.set_defaults(run=set_cmd)
    assign = sub.add_parser("assign", help="the tariff in force for a connector, a charger, or the network")
    assign.add_argument("tariff_id")
    scope = assign.add_mutually_exclusive_group(required=True)
    scope.add_argument("--charger", help="charger id (with --connector: one connector only)")
    scope.add_argument("--default", action="store_true", help="the network default")
    assign.add_argument("--connector", type=int)
    assign.set_defaults(run=assign_cmd)
    listing = sub.add_parser("list", help="stored tariffs and assignments, with the prices drivers see")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(run=list_cmd)


def price_cmd(args: argparse.Namespace) -> str:
    tariff = _load(args.tariff_file, load_tariff)
    session = _load(args.session_file, load_session)
    try:
        priced = price_session(tariff, session)
    except TariffError as exc:
        raise CliError(str(exc)) from None
    if args.json:
        return as_json(priced.model_dump(mode="json"))
    return priced_table(priced)


def _load(path: Path, parse: Callable[[str], T]) -> T:
    try:
        return parse(_read(path))
    except TariffError as exc:
        raise CliError(f"{path}: {exc}") from None


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file") from None
    except UnicodeDecodeError:
        raise CliError(f"{path}: not UTF-8 text") from None
    except OSError as exc:
        raise UsageError(f"{path}: cannot read: {exc.strerror}") from None


def priced_table(priced: PricedSession) -> str:
    cur = priced.currency
    costs = table(
        ["LINE", "VOLUME", f"EXCL VAT ({cur})", f"INCL VAT ({cur})"],
        [
            _cost_row("flat fee", None, priced.total_fixed_cost),
            _cost_row("energy", f"{priced.total_energy} kWh", priced.total_energy_cost),
            _cost_row("charging time", f"{_charging_hours(priced)} h", priced.total_time_cost),
            _cost_row("parking time", f"{priced.total_parking_time} h", priced.total_parking_cost),
            _cost_row("total", f"{priced.total_time} h", priced.total_cost),
        ],
    )
    periods = table(
        ["PERIOD START (UTC)", "DIMENSIONS"],
        [(f"{p.start_date_time:%Y-%m-%d %H:%M:%S}", _dimensions(p)) for p in priced.charging_periods],
    )
    clock = f"time restrictions read on the wall clock of {priced.time_zone}"
    return "\n".join([costs, "", periods, clock, *(f"note: {note}" for note in priced.notes)])


def _cost_row(label: str, volume: str | None, cost: Price) -> tuple[str, str | None, Decimal, Decimal | None]:
    return (label, volume, cost.excl_vat, cost.incl_vat)


def _dimensions(period: ChargingPeriod) -> str:
    return ", ".join(f"{d.type.value} {d.volume}" for d in period.dimensions)


def _charging_hours(priced: PricedSession) -> str:
    return f"{(priced.total_time - priced.total_parking_time).normalize():f}"


def set_cmd(args: argparse.Namespace) -> str:
    """The file's text as is: the API's tariff loader reads it, amounts as decimals (never floats)."""
    stored = api(args).post("/tariffs", {"tariff": _read(args.tariff_file)}, action="store tariffs")
    return f"tariff {stored['tariff_id']} stored ({stored['currency']}, {stored['elements']} element(s))"


def assign_cmd(args: argparse.Namespace) -> str:
    if args.connector is not None and not args.charger:
        raise UsageError("--connector needs --charger")
    scope = (
        {"default": True} if args.default else {"charger_id": args.charger, "connector_id": args.connector}
    )
    assigned = api(args).post(
        "/tariffs/assignments", {"tariff_id": args.tariff_id, **scope}, action="assign tariffs"
    )
    if args.default:
        return f"tariff {args.tariff_id} is the network default"
    connector = assigned["scope"].split(" / ")[1]
    return f"tariff {args.tariff_id} in force on {args.charger} connector {connector}"


def list_cmd(args: argparse.Namespace) -> str:
    client = api(args)
    tariffs = sorted(client.paginate("/tariffs", action="list tariffs"), key=lambda t: str(t["tariff_id"]))
    assignments = sorted(
        client.paginate("/tariffs/assignments", action="list tariffs"), key=lambda a: str(a["scope"])
    )
    shown = {t["tariff_id"]: t["display"] for t in tariffs}
    if args.json:
        return as_json({"tariffs": shown, "assignments": assignments})
    lines = [f"{tid}: " + "; ".join(text) for tid, text in shown.items()]
    rows = [(a["scope"], a["tariff_id"]) for a in assignments]
    return "\n".join([*lines, "", table(["SCOPE (charger / connector)", "TARIFF"], rows)])
