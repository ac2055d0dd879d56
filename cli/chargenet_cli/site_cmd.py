"""`chargenet site set-time-zone|show`: what a site's chargers share, today its wall clock."""

from __future__ import annotations

import argparse
from typing import Any

from chargenet_cli import local_env
from chargenet_cli.charger_cmd import time_zone_argument
from chargenet_cli.errors import UsageError
from chargenet_cli.output import as_json


def register(commands: argparse._SubParsersAction) -> None:
    site = commands.add_parser("site", help="site settings shared by its chargers")
    sub = site.add_subparsers(dest="site_command", required=True)
    zone = sub.add_parser(
        "set-time-zone",
        help="the IANA zone of the site's wall clock, for its chargers that set none of their own",
        description="Time-of-day, date and weekday tariff restrictions read this wall clock; sessions "
        "record the zone when they start, so a change applies to sessions started after it.",
    )
    zone.add_argument("site_id")
    zone.add_argument("time_zone", type=time_zone_argument, help="e.g. Europe/Stockholm")
    zone.set_defaults(run=set_time_zone)
    show = sub.add_parser("show", help="the site's settings and the zone each of its chargers keeps")
    show.add_argument("site_id")
    show.add_argument("--json", action="store_true")
    show.set_defaults(run=show_site)


def _registry() -> Any:
    from chargenet.adapters.dynamodb import DynamoChargerRegistry

    return DynamoChargerRegistry()


def set_time_zone(args: argparse.Namespace) -> str:
    if not args.site_id:
        raise UsageError("a site id is needed")
    local_env.connect(args.home)
    _registry().set_site_time_zone(args.site_id, args.time_zone)
    return f"site {args.site_id}: time zone {args.time_zone}"


def show_site(args: argparse.Namespace) -> str:
    local_env.connect(args.home)
    from chargenet.adapters.dynamodb import deployment_time_zone

    registry = _registry()
    chargers = [c for c in registry.list() if c.site_id == args.site_id]
    record = {
        "site_id": args.site_id,
        "time_zone": registry.site_time_zone(args.site_id),
        "deployment_time_zone": deployment_time_zone(),
        "chargers": {c.charger_id: registry.time_zone_of(c) for c in chargers},
    }
    if args.json:
        return as_json(record)
    lines = [
        f"site {args.site_id}: time zone {record['time_zone'] or '-'} "
        f"(chargers without one of their own or the site's: {record['deployment_time_zone']})"
    ]
    return "\n".join(lines + [f"{charger}: {zone}" for charger, zone in record["chargers"].items()])
