"""Locations (URLs) the backend hands a charger, as they may be shown or kept.

GetDiagnostics and UpdateFirmware name a location: often `ftp://user:password@host/path` in OCPP
1.6, or a pre-signed URL whose query is a signature anyone holding it can use. The charger needs
them whole; nothing that records or logs a command does. The device shim keeps its own copy of
this function (it cannot import the layer; a unit test holds the two equal).
"""

from __future__ import annotations

import re

REDACTED = "***"


def redacted_location(location: str) -> str:
    """`location` without user name, password, query or fragment: `ftp://***@host/path`.

    Text, not a URL parser: a password with an unescaped `/`, `?` or `#` makes a parser end the
    authority early and show the rest. Everything up to the last `@` goes, before the query is cut.
    """
    scheme, separator, rest = location.partition("://")
    if not separator:
        scheme, rest = "", location
    if "@" in rest:
        rest = f"{REDACTED}@{rest.rsplit('@', 1)[1]}"
    return scheme + separator + re.split(r"[?#]", rest, maxsplit=1)[0]
