"""`chargenet tariff ...`: OCPI 2.2.1 tariffs.

`tariff price` runs the tariff engine on two files and needs no stack. Commands that store tariffs
(`tariff set`, `tariff assign`) belong here too: add their parsers in `register` beside `price`, and
import AWS adapters inside their handlers, as charger_cmd does, so `price` stays offline.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

from chargenet.domain.clock import utc_now
from chargenet.domain.tariffs import (
    ChargingPeriod,
    Price,
    PricedSession,
    TariffError,
    describe,
    load_session,
    load_tariff,
    price_display,
    price_session,
)
from chargenet_cli.errors import CliError, UsageError
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
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file") from None
    except UnicodeDecodeError:
        raise CliError(f"{path}: not UTF-8 text") from None
    except OSError as exc:
        raise UsageError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        return parse(text)
    except TariffError as exc:
        raise CliError(f"{path}: {exc}") from None


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


def _book(args: argparse.Namespace) -> Any:
    from chargenet_cli import local_env

    local_env.connect(args.home)
    from chargenet.adapters.tags_tariffs_dynamodb import DynamoTariffBook

    return DynamoTariffBook()


def set_cmd(args: argparse.Namespace) -> str:
    tariff = _load(args.tariff_file, load_tariff)
    book = _book(args)
    book.store(tariff.id, tariff.model_dump_json(exclude_none=True), utc_now())
    return f"tariff {tariff.id} stored ({tariff.currency}, {len(tariff.elements)} element(s))"


def assign_cmd(args: argparse.Namespace) -> str:
    if args.connector is not None and not args.charger:
        raise UsageError("--connector needs --charger")
    book = _book(args)
    if book.tariff(args.tariff_id) is None:
        raise CliError(f"no tariff {args.tariff_id}: store it first with `chargenet tariff set FILE.json`")
    if args.default:
        book.assign(args.tariff_id)
        return f"tariff {args.tariff_id} is the network default"
    from chargenet.adapters.dynamodb import DynamoChargerRegistry

    if DynamoChargerRegistry().get(args.charger) is None:
        raise CliError(f"no charger {args.charger}")
    connector = args.connector if args.connector is not None else "*"
    book.assign(args.tariff_id, args.charger, connector)
    return f"tariff {args.tariff_id} in force on {args.charger} connector {connector}"


def list_cmd(args: argparse.Namespace) -> str:
    items = _book(args).list()
    tariffs = {i.tariff_id: load_tariff(i.body) for i in items if i.key.startswith("tariff#")}
    assignments = [
        (i.key.split("#", 1)[1].replace("#", " / "), i.tariff_id)
        for i in items
        if i.key.startswith("assignment#")
    ]
    from chargenet.adapters.dynamodb import deployment_time_zone

    now, zone = utc_now(), deployment_time_zone()
    shown = {tid: describe(price_display(t, now, zone)) for tid, t in tariffs.items()}
    if args.json:
        return as_json(
            {"tariffs": shown, "assignments": [{"scope": s, "tariff_id": t} for s, t in assignments]}
        )
    lines = [f"{tid}: " + "; ".join(text) for tid, text in shown.items()]
    return "\n".join([*lines, "", table(["SCOPE (charger / connector)", "TARIFF"], assignments)])
