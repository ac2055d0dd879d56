"""OCPP timestamps: how the shim spells a moment in the frames it sends.

The gateway's own notifications (firmware status on a real charger's behalf) and every
simulated charger's use the same spelling, so it lives here rather than in the simulator's clock.
"""

from __future__ import annotations

import datetime as dt


def ocpp_timestamp(moment: dt.datetime) -> str:
    """UTC ISO 8601 with a Z; milliseconds because at high speed one real millisecond is many sim seconds."""
    return moment.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
