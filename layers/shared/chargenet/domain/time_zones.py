"""Sites' time zones: IANA names, checked against the zone database the runtime ships."""

from __future__ import annotations

from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator


def time_zone_name(name: str) -> str:
    """`name` when it is an IANA zone (e.g. Europe/Stockholm); ValueError otherwise."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):  # ValueError: a path-like or malformed key
        raise ValueError(
            f"unknown time zone {name!r}: expected an IANA name such as Europe/Stockholm"
        ) from None
    return name


TimeZoneName = Annotated[str, AfterValidator(time_zone_name)]


def site_clock(charger_zone: str | None, site_zone: str | None, deployment_zone: str) -> str:
    """The zone a charger's wall clock keeps: its own if set, else its site's, else the deployment's."""
    return charger_zone or site_zone or deployment_zone
