"""`chargenet site set-time-zone|show`: what a site's chargers share, today its wall clock."""

from __future__ import annotations

import argparse
from urllib.parse import quote

from chargenet.domain.time_zones import site_clock
from chargenet_cli.charger_cmd import time_zone_argument
from chargenet_cli.errors import UsageError
from chargenet_cli.operator_cmd import api
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


def set_time_zone(args: argparse.Namespace) -> str:
    if not args.site_id:
        raise UsageError("a site id is needed")
    done = api(args).put(
        f"/sites/{quote(args.site_id, safe='')}/time-zone",
        {"time_zone": args.time_zone},
        action="set a site's time zone",
    )
    return f"site {done['site_id']}: time zone {done['time_zone']}"


def show_site(args: argparse.Namespace) -> str:
    operator_api = api(args)
    site = operator_api.get(f"/sites/{quote(args.site_id, safe='')}", action="show a site")
    chargers = operator_api.paginate("/chargers", {"site": args.site_id}, action="list a site's chargers")
    record = {
        **site,
        "chargers": {
            c["charger_id"]: site_clock(c["time_zone"], site["time_zone"], site["deployment_time_zone"])
            for c in sorted(chargers, key=lambda c: c["charger_id"])
        },
    }
    if args.json:
        return as_json(record)
    lines = [
        f"site {args.site_id}: time zone {record['time_zone'] or '-'} "
        f"(chargers without one of their own or the site's: {record['deployment_time_zone']})"
    ]
    return "\n".join(lines + [f"{charger}: {zone}" for charger, zone in record["chargers"].items()])
