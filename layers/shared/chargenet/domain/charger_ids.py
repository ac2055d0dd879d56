"""Charger ids: one alphabet wherever a charger's id goes.

A charger id is the IoT thing name, the MQTT client id and a topic level, its certificate's CN (the
local broker's user name), a DynamoDB key, a folder name on the site and a URL path segment. IoT
thing names allow only `[a-zA-Z0-9:_-]`: an id accepted here but refused by IoT (`CP.1`) would
leave a claimed serial and a registry record with no thing. Charger ids take that alphabet without
the colon, which is kept for the factory claim certificates' client ids (`claim:<batch>`, the only
ones ProvisioningClaimPolicy lets connect): no charger id can be one, so a stolen claim certificate
cannot take over a charger's connection. ASCII only, starting with a letter or digit (never `-`,
which a CLI reads as an option), at most 64 characters.

The device shim cannot import this layer and keeps its own copy (a unit test holds them equal).
"""

from __future__ import annotations

import re

# Anchored for pydantic's `Field(pattern=...)`, which searches, and whose regex engine's `$` is the
# end of the text. Python's `$` also matches before a final newline: Python code uses is_charger_id.
CHARGER_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"
_CHARGER_ID = re.compile(CHARGER_ID_PATTERN)


def is_charger_id(value: str) -> bool:
    """Whether all of `value` is a charger id (`"CP-1\\n"` is not)."""
    return _CHARGER_ID.fullmatch(value) is not None
