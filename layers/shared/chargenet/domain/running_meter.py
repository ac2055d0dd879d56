"""The running session's meter, advanced one MeterValues at a time instead of re-folded.

A running session's readings almost always arrive in order and say nothing new but the register:
`fold` over the whole log would find the same facts, plus the new energy. What the hot path keeps
on the session (the last register and when it was read, the rated power) is enough to tell,
from the new readings alone, whether they could change anything else; when they could (an
anomaly the fold would record, a register standing still while power is drawn, readings sharing
an instant), the caller folds the whole log instead, so the result is always the fold's.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from chargenet.domain.meter_values import MeterReading
from chargenet.domain.sessions import IDLE_POWER_W, RATED_POWER_TOLERANCE, implied_power_w


class FoldNeeded(StrEnum):
    """Why new readings need the whole session folded again."""

    SAME_INSTANT = "same_instant"  # the fold keeps one register per instant: which one is its call
    REGISTER_BACKWARDS = "register_backwards"
    IMPOSSIBLE_JUMP = "impossible_jump"
    POWER_ABOVE_RATING = "power_above_rating"
    FLAT_WHILE_DRAWING = "flat_while_drawing"  # the start, or the middle, of a stuck meter


@dataclass(frozen=True)
class RunningMeter:
    """The session's last energy register (the start's until a reading comes) and its rating."""

    register_at: datetime
    register_wh: Decimal
    rated_power_w: Decimal | None


def fold_needed(before: RunningMeter, readings: list[MeterReading]) -> FoldNeeded | None:
    """Whether `readings`, all later than `before.register_at`, change more than the running
    aggregates: None when the register only moves on, as the fold would find it."""
    times = [r.at for r in readings]
    if len(set(times)) != len(times):
        return FoldNeeded.SAME_INSTANT
    limit = before.rated_power_w * RATED_POWER_TOLERANCE if before.rated_power_w else None
    if limit is not None and any(r.power_w is not None and r.power_w > limit for r in readings):
        return FoldNeeded.POWER_ABOVE_RATING
    registers = [(before.register_at, before.register_wh, False)] + [
        (r.at, r.energy_wh, _drawing(r))
        for r in sorted(readings, key=lambda r: r.at)
        if r.energy_wh is not None
    ]
    for (t1, wh1, _), (t2, wh2, drawing) in itertools.pairwise(registers):
        if wh2 < wh1:
            return FoldNeeded.REGISTER_BACKWARDS
        if limit is not None and implied_power_w(t1, wh1, t2, wh2) > limit:
            return FoldNeeded.IMPOSSIBLE_JUMP
        if wh2 == wh1 and drawing:
            return FoldNeeded.FLAT_WHILE_DRAWING
    return None


def latest_register(readings: list[MeterReading]) -> tuple[datetime, Decimal] | None:
    """The last energy register among `readings`, by the charger's clock."""
    registers = [(r.at, r.energy_wh) for r in readings if r.energy_wh is not None]
    return max(registers, key=lambda register: register[0], default=None)


def _drawing(reading: MeterReading) -> bool:
    return reading.power_w is not None and reading.power_w > IDLE_POWER_W
