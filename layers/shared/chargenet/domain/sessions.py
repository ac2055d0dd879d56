"""A charging session as the fold of everything chargers said about it.

Messages arrive late, twice and out of order (offline queues, at-least-once
delivery). Each one is stored as an immutable event; the session is computed
from the whole set, ordered by the charger's clock, so the result is the same
in every delivery order. Anomalies mark the session for review instead of
producing a bill.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from chargenet.domain.meter_values import MeterReading

# Below this average power a plugged-in car is idle, not charging.
IDLE_POWER_W = Decimal(50)
# A meter may run a little ahead of the rated power (rounding, sampling jitter).
RATED_POWER_TOLERANCE = Decimal("1.10")
# A register that was this high before a session is not expected to restart at 0.
METER_RESET_MIN_WH = 1000
# Shorter sessions may legitimately end before the first periodic sample.
NO_READINGS_GRACE = timedelta(minutes=5)
IDLE_STATUSES = frozenset({"SuspendedEV", "Finishing"})
FREE_STATUSES = frozenset({"Available", "Unavailable", "Faulted"})
_KIND_ORDER = {
    "start": 0,
    "meter": 1,
    "status": 2,
    "stop": 3,
    "settle": 4,
    "idle_limit": 5,
    "revoked": 6,
    "next_session": 7,
    "authorized": 8,
    "sequence": 9,
}
# A gap's detail names at most this many of the missing sequence numbers.
_MISSING_SHOWN = 5


class EventKind(StrEnum):
    START = "start"
    METER = "meter"
    STATUS = "status"
    STOP = "stop"
    SETTLE = "settle"
    IDLE_LIMIT = "idle_limit"  # the car stayed plugged in past the network's idle limit: billing ends here
    # The operator revoked the charger's certificate mid-session: it can never send its stop, so the
    # session ends here, from the last register it reported, and waits for review before billing.
    REVOKED = "revoked"
    # The connector's next session started: the car before had left by then at the latest, so the
    # session completes even when its Available never arrives (dead-lettered, or sent offline).
    NEXT_SESSION = "next_session"
    # OCPP 2.0.1: the transaction's idToken was authorized after its start (or changed): the
    # session is that driver's from then on.
    AUTHORIZED = "authorized"
    # OCPP 2.0.1: a TransactionEvent that said nothing else the fold uses, kept for its seqNo (gaps).
    SEQUENCE = "sequence"


class SessionEvent(BaseModel):
    """One fact about a session, as the charger (or the operator, for SETTLE) stated it."""

    model_config = ConfigDict(frozen=True)

    kind: EventKind
    at: datetime  # the charger's clock
    connector_id: int | None = None
    id_tag: str | None = None
    meter_start_wh: int | None = None
    previous_register_wh: int | None = None  # the connector's last register before this session
    reading: MeterReading | None = None
    meter_stop_wh: int | None = None
    stop_reason: str | None = None
    status: str | None = None
    settle_reading_wh: int | None = None
    void: bool = False
    # OCPP 2.0.1: the seqNo of the TransactionEvent this came in (numbered per transaction).
    seq_no: int | None = None

    @property
    def key(self) -> str:
        """Identical facts have identical keys: a duplicate message stores nothing new."""
        digest = hashlib.sha256(self.model_dump_json(exclude_none=True).encode()).hexdigest()[:16]
        return f"{self.at.isoformat()}#{_KIND_ORDER[self.kind]}#{digest}"


class SessionState(StrEnum):
    ACTIVE = "active"
    STOPPED = "stopped"  # StopTransaction received, car still plugged in
    COMPLETED = "completed"  # stopped and the connector is free: ready to bill
    NEEDS_REVIEW = "needs_review"
    VOIDED = "voided"


# Billing made the record final; a late message must not reopen it (corrections are credit records).
FINAL_STATES = frozenset({"billed", SessionState.VOIDED.value})


@dataclass(frozen=True)
class Period:
    """A stretch of the session with one charging/parking state, for the tariff engine."""

    start: datetime
    seconds: Decimal
    energy_wh: Decimal
    current_a: Decimal | None
    parking: bool

    @property
    def power_kw(self) -> Decimal | None:
        if self.seconds <= 0:
            return None
        return self.energy_wh / self.seconds * Decimal(3600) / Decimal(1000)


class AnomalyCode(StrEnum):
    """Why a session goes to review instead of billing; each also opens a metering fault."""

    NO_START = "NoStartTransaction"
    STOP_BELOW_START = "StopBelowStart"
    METER_RESET = "MeterReset"
    REGISTER_BACKWARDS = "RegisterBackwards"
    IMPOSSIBLE_JUMP = "ImpossibleEnergyJump"
    POWER_ABOVE_RATING = "PowerAboveRating"
    NO_READINGS = "NoReadings"
    CHARGER_REVOKED = "ChargerRevoked"
    NO_START_REGISTER = "NoStartRegister"  # 2.0.1: no register at the start, none known before it
    MISSING_EVENTS = "MissingTransactionEvents"  # 2.0.1: a seqNo up to the Ended never came


@dataclass(frozen=True)
class Anomaly:
    code: AnomalyCode
    detail: str
    at: datetime  # when it showed (charger clock)


@dataclass(frozen=True)
class SessionFacts:
    started_at: datetime | None
    connector_id: int | None
    id_tag: str | None
    meter_start_wh: int | None
    stopped_at: datetime | None
    meter_stop_wh: int | None
    stop_reason: str | None
    freed_at: datetime | None
    energy_wh: Decimal
    peak_power_w: Decimal
    charging_seconds: Decimal
    parking_seconds: Decimal
    periods: list[Period]
    state: SessionState
    anomalies: list[Anomaly] = field(default_factory=list)  # cleared by settling
    last_reading_at: datetime | None = None
    # The last energy register by the charger's clock (the start's, the stop's): where the hot
    # path (domain.running_meter) goes on from.
    last_register: tuple[datetime, Decimal] | None = None

    @property
    def review_reasons(self) -> list[str]:
        return [a.detail for a in self.anomalies]

    @property
    def ended_at(self) -> datetime | None:
        return self.freed_at or self.stopped_at


def fold(events: list[SessionEvent], rated_power_w: Decimal | None = None) -> SessionFacts:
    """The session these events describe, independent of their order and repeats."""
    unique = sorted({e.key: e for e in events}.values(), key=lambda e: e.key)
    start = next((e for e in unique if e.kind is EventKind.START), None)
    revoked = next((e for e in unique if e.kind is EventKind.REVOKED), None)
    # The charger's own stop wins: it may still arrive if it was in flight before the revocation.
    stop = next((e for e in unique if e.kind is EventKind.STOP), revoked)
    settle = next((e for e in reversed(unique) if e.kind is EventKind.SETTLE), None)
    freed_at = _freed_at(unique, stop)
    registers = _registers(unique, start, stop)
    anomalies = _anomalies(unique, start, stop, registers, rated_power_w) + _revocation(revoked)
    energy = _billable_energy(start, registers, settle)
    periods = _periods(unique, start, stop, freed_at, registers, energy)
    state = _state(start, stop, freed_at, anomalies, settle)
    return SessionFacts(
        started_at=start.at if start else None,
        connector_id=start.connector_id if start else None,
        id_tag=_driver(unique, start),
        meter_start_wh=start.meter_start_wh if start else None,
        stopped_at=stop.at if stop else None,
        meter_stop_wh=stop.meter_stop_wh if stop else None,
        stop_reason=stop.stop_reason if stop else None,
        freed_at=freed_at,
        energy_wh=energy,
        peak_power_w=_peak_power_w(unique, periods),
        charging_seconds=sum((p.seconds for p in periods if not p.parking), Decimal(0)),
        parking_seconds=sum((p.seconds for p in periods if p.parking), Decimal(0)),
        periods=periods,
        state=state,
        anomalies=[] if settle else anomalies,
        last_reading_at=max((e.at for e in unique if e.kind is EventKind.METER), default=None),
        last_register=registers[-1] if registers else None,
    )


def _driver(events: list[SessionEvent], start: SessionEvent | None) -> str | None:
    """The tag the session is billed to: the last one the charger authorized, else the start's."""
    authorized = [e.id_tag for e in events if e.kind is EventKind.AUTHORIZED and e.id_tag]
    return authorized[-1] if authorized else (start.id_tag if start else None)


def _freed_at(events: list[SessionEvent], stop: SessionEvent | None) -> datetime | None:
    """The connector became free (Available...) at or after the stop, or the idle limit passed."""
    if stop is None:
        return None
    frees = [e.at for e in events if e.at >= stop.at and _frees_connector(e)]
    return min(frees, default=None)


def _frees_connector(event: SessionEvent) -> bool:
    if event.kind in (EventKind.IDLE_LIMIT, EventKind.REVOKED, EventKind.NEXT_SESSION):
        return True
    return event.kind is EventKind.STATUS and event.status in FREE_STATUSES


def _registers(
    events: list[SessionEvent], start: SessionEvent | None, stop: SessionEvent | None
) -> list[tuple[datetime, Decimal]]:
    """Energy register readings in charger-time order, start and stop included."""
    points: dict[datetime, Decimal] = {}
    if start and start.meter_start_wh is not None:
        points[start.at] = Decimal(start.meter_start_wh)
    for event in events:
        energy_wh = event.reading.energy_wh if event.kind is EventKind.METER and event.reading else None
        if energy_wh is not None and (start is None or event.at >= start.at):
            points.setdefault(event.at, energy_wh)
    if stop and stop.meter_stop_wh is not None:
        points[stop.at] = Decimal(stop.meter_stop_wh)
    return sorted(points.items())


def _anomalies(
    events: list[SessionEvent],
    start: SessionEvent | None,
    stop: SessionEvent | None,
    registers: list[tuple[datetime, Decimal]],
    rated_power_w: Decimal | None,
) -> list[Anomaly]:
    if start is None:
        first = min(e.at for e in events)
        return [Anomaly(AnomalyCode.NO_START, "no StartTransaction for this transaction", first)]
    found = _missing_transaction_events(events, start, stop)
    if start.meter_start_wh is None:
        detail = "no energy register at the start, and none known from before it"
        found.append(Anomaly(AnomalyCode.NO_START_REGISTER, detail, start.at))
    if (
        stop
        and stop.meter_stop_wh is not None
        and start.meter_start_wh is not None
        and stop.meter_stop_wh < start.meter_start_wh
    ):
        detail = f"stop register {stop.meter_stop_wh} Wh below start register {start.meter_start_wh} Wh"
        found.append(Anomaly(AnomalyCode.STOP_BELOW_START, detail, stop.at))
    previous = start.previous_register_wh
    if start.meter_start_wh == 0 and previous is not None and previous >= METER_RESET_MIN_WH:
        detail = f"start register 0 Wh after {previous} Wh before this session (meter reset?)"
        found.append(Anomaly(AnomalyCode.METER_RESET, detail, start.at))
    jump = _register_jump(registers, rated_power_w)
    if jump is not None:
        found.append(jump)
    overload = _power_above_rating(events, start, rated_power_w)
    if overload is not None:
        found.append(overload)
    has_samples = any(
        e.kind is EventKind.METER and e.reading and e.reading.energy_wh is not None for e in events
    )
    if stop and not has_samples and stop.at - start.at > NO_READINGS_GRACE:
        found.append(Anomaly(AnomalyCode.NO_READINGS, "no energy readings between start and stop", stop.at))
    return found


def _missing_transaction_events(
    events: list[SessionEvent], start: SessionEvent, stop: SessionEvent | None
) -> list[Anomaly]:
    """Sequence numbers from the Started's to the Ended's that never arrived: the charger may
    still send them (an offline queue), so the session waits for review until they come."""
    if stop is None or start.seq_no is None or stop.seq_no is None:
        return []
    first, last = start.seq_no, stop.seq_no
    seen = {e.seq_no for e in events if e.seq_no is not None and first <= e.seq_no <= last}
    missing_count = last - first + 1 - len(seen)
    if missing_count <= 0:
        return []
    # Lazy: bounded by what was seen, however far apart the charger's numbers are.
    shown = list(itertools.islice((n for n in range(first, last + 1) if n not in seen), _MISSING_SHOWN))
    detail = (
        f"{missing_count} TransactionEvent(s) between seqNo {first} and {last} not received "
        f"(seqNo {', '.join(map(str, shown))}{', ...' if missing_count > len(shown) else ''})"
    )
    return [Anomaly(AnomalyCode.MISSING_EVENTS, detail, stop.at)]


def _revocation(revoked: SessionEvent | None) -> list[Anomaly]:
    if revoked is None:
        return []
    why = revoked.stop_reason or "no reason given"
    detail = f"charger certificate revoked ({why}): session closed from its last reported reading"
    return [Anomaly(AnomalyCode.CHARGER_REVOKED, detail, revoked.at)]


def revocation_event(events: list[SessionEvent], at: datetime, reason: str | None) -> SessionEvent:
    """Close a session whose charger was revoked, at the last energy register it reported."""
    start = next((e for e in events if e.kind is EventKind.START), None)
    readings = [(e.at, e.reading.energy_wh) for e in events if e.kind is EventKind.METER and e.reading]
    known = [(t, wh) for t, wh in readings if wh is not None]
    last = max(known)[1] if known else (start.meter_start_wh if start else None)
    # After everything the charger said: its clock may run ahead of ours (skew, accelerated
    # simulation), and a close before the last reading would cut energy it did deliver.
    return SessionEvent(
        kind=EventKind.REVOKED,
        at=max([at, *(e.at for e in events)]),
        meter_stop_wh=int(last) if last is not None else None,
        stop_reason=reason,
    )


def _register_jump(
    registers: list[tuple[datetime, Decimal]], rated_power_w: Decimal | None
) -> Anomaly | None:
    """The first step of the register that goes back, or climbs faster than the charger can deliver."""
    for (t1, wh1), (t2, wh2) in itertools.pairwise(registers):
        if wh2 < wh1:
            detail = f"energy register went back from {wh1} Wh to {wh2} Wh at {t2.isoformat()}"
            return Anomaly(AnomalyCode.REGISTER_BACKWARDS, detail, t2)
        if rated_power_w and implied_power_w(t1, wh1, t2, wh2) > rated_power_w * RATED_POWER_TOLERANCE:
            detail = f"{wh2 - wh1} Wh between {t1.isoformat()} and {t2.isoformat()} exceeds the rated power"
            return Anomaly(AnomalyCode.IMPOSSIBLE_JUMP, detail, t2)
    return None


def _power_above_rating(
    events: list[SessionEvent], start: SessionEvent, rated_power_w: Decimal | None
) -> Anomaly | None:
    """The first sampled power beyond what the charger can deliver: a wrong meter or a real
    overload, either way not billable without a look, however the session ends."""
    if not rated_power_w:
        return None
    limit = rated_power_w * RATED_POWER_TOLERANCE
    for event in events:  # in charger-time order
        power = event.reading.power_w if event.kind is EventKind.METER and event.reading else None
        if power is not None and power > limit and event.at >= start.at:
            detail = f"{power} W at {event.at.isoformat()} above the rated {rated_power_w} W"
            return Anomaly(AnomalyCode.POWER_ABOVE_RATING, detail, event.at)
    return None


def implied_power_w(t1: datetime, wh1: Decimal, t2: datetime, wh2: Decimal) -> Decimal:
    seconds = Decimal((t2 - t1).total_seconds())
    if seconds <= 0:
        return Decimal("Infinity") if wh2 > wh1 else Decimal(0)
    return (wh2 - wh1) * Decimal(3600) / seconds


def _billable_energy(
    start: SessionEvent | None, registers: list[tuple[datetime, Decimal]], settle: SessionEvent | None
) -> Decimal:
    if start is None or start.meter_start_wh is None:
        return Decimal(0)
    if settle is not None:
        return (
            Decimal(0)
            if settle.void
            else Decimal(max(0, (settle.settle_reading_wh or 0) - start.meter_start_wh))
        )
    last = registers[-1][1] if registers else Decimal(start.meter_start_wh)
    return max(Decimal(0), last - Decimal(start.meter_start_wh))


def _periods(
    events: list[SessionEvent],
    start: SessionEvent | None,
    stop: SessionEvent | None,
    freed_at: datetime | None,
    registers: list[tuple[datetime, Decimal]],
    energy_wh: Decimal,
) -> list[Period]:
    """Cut the session at every reading and status change; energy shared out by time."""
    if start is None:
        return []
    end = freed_at or (stop.at if stop else max((e.at for e in events), default=start.at))
    statuses = [(e.at, e.status) for e in events if e.kind is EventKind.STATUS and e.status]
    cuts = sorted({start.at, end, *(t for t, _ in registers), *(t for t, _ in statuses)})
    cuts = [t for t in cuts if start.at <= t <= end]
    energy_at = _energy_curve(registers, start, energy_wh)
    periods = []
    for t1, t2 in itertools.pairwise(cuts):
        seconds = Decimal((t2 - t1).total_seconds())
        energy = max(Decimal(0), energy_at(t2) - energy_at(t1))
        status = _status_at(statuses, t1)
        drawing = seconds > 0 and energy * Decimal(3600) / seconds >= IDLE_POWER_W
        # The charger's own statuses say when the car stopped drawing; meter readings, taken
        # minutes apart, would smear the last energy into the idle time.
        after_stop = stop is not None and t1 >= stop.at
        parking = after_stop or status in IDLE_STATUSES or (not drawing and energy_at(t1) > 0)
        periods.append(Period(t1, seconds, energy, _current_at(events, t1, t2), parking))
    return _trickle_to_charging(periods)


def _trickle_to_charging(periods: list[Period]) -> list[Period]:
    """Parking draws no energy (OCPI): a trickle below the idle threshold joins the charging before it.

    The energy total is unchanged, so what is billed still equals what the meter counted.
    """
    result: list[Period] = []
    for period in periods:
        if not period.parking or period.energy_wh == 0:
            result.append(period)
            continue
        charging = [i for i, earlier in enumerate(result) if not earlier.parking]
        if not charging:
            result.append(replace(period, parking=False))
            continue
        last = charging[-1]
        result[last] = replace(result[last], energy_wh=result[last].energy_wh + period.energy_wh)
        result.append(replace(period, energy_wh=Decimal(0)))
    return result


def _energy_curve(
    registers: list[tuple[datetime, Decimal]], start: SessionEvent, billable_wh: Decimal
) -> Callable[[datetime], Decimal]:
    """Energy delivered since the start at any instant, interpolated between readings.

    Scaled to the billable energy so the periods always add up to what is billed
    (they differ only when the operator settled the session with another reading).
    """
    base = Decimal(start.meter_start_wh or 0)
    points = [(t, max(Decimal(0), wh - base)) for t, wh in registers if t >= start.at] or [
        (start.at, Decimal(0))
    ]
    measured = max((wh for _, wh in points), default=Decimal(0))
    scale = billable_wh / measured if measured > 0 else Decimal(0)

    def at(instant: datetime) -> Decimal:
        previous = points[0]
        for point in points:
            if point[0] >= instant:
                if point[0] == previous[0]:
                    return point[1] * scale
                share = Decimal((instant - previous[0]).total_seconds()) / Decimal(
                    (point[0] - previous[0]).total_seconds()
                )
                return (previous[1] + (point[1] - previous[1]) * share) * scale
            previous = point
        return previous[1] * scale

    return at


def _status_at(statuses: list[tuple[datetime, str]], instant: datetime) -> str | None:
    current = None
    for at, status in statuses:
        if at > instant:
            break
        current = status
    return current


def _current_at(events: list[SessionEvent], t1: datetime, t2: datetime) -> Decimal | None:
    currents = [
        e.reading.current_a
        for e in events
        if e.kind is EventKind.METER and e.reading and e.reading.current_a is not None and t1 <= e.at <= t2
    ]
    return max(currents, default=None)


def _peak_power_w(events: list[SessionEvent], periods: list[Period]) -> Decimal:
    """The highest sampled power; chargers that sample none get the best interval average."""
    sampled = [
        e.reading.power_w for e in events if e.kind is EventKind.METER and e.reading and e.reading.power_w
    ]
    if sampled:
        return max(sampled)
    return max(
        (p.power_kw * 1000 for p in periods if p.power_kw is not None and not p.parking), default=Decimal(0)
    )


def _state(
    start: SessionEvent | None,
    stop: SessionEvent | None,
    freed_at: datetime | None,
    anomalies: list[Anomaly],
    settle: SessionEvent | None,
) -> SessionState:
    if settle is not None:
        return SessionState.VOIDED if settle.void else SessionState.COMPLETED
    if stop is None:
        return SessionState.ACTIVE
    if anomalies:
        return SessionState.NEEDS_REVIEW
    return SessionState.COMPLETED if freed_at else SessionState.STOPPED
