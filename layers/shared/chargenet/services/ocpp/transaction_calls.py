"""Authorize, StartTransaction, MeterValues and StopTransaction (OCPP 1.6J)."""

from __future__ import annotations

import hashlib

from ocpp.v16.enums import Action

from chargenet.domain.meter_values import parse_meter_values
from chargenet.domain.models import (
    Authorize,
    MeterValues,
    SessionRecord,
    StartTransaction,
    StopTransaction,
    TagStatus,
)
from chargenet.domain.sessions import EventKind, SessionEvent
from chargenet.ocpp.router import Payload, on
from chargenet.services.ocpp.context import Ctx
from chargenet.services.ocpp.session_log import free_connector_for, record_events


@on(Action.authorize)
def authorize(ctx: Ctx, payload: Payload) -> Payload:
    request = Authorize.model_validate(payload)
    return {"idTagInfo": _tag_info(ctx, request.id_tag)}


def _tag_info(ctx: Ctx, id_tag: str) -> Payload:
    authorization = ctx.deps.tags.authorize(id_tag, ctx.received_at)
    info: Payload = {"status": authorization.status.value}
    if authorization.expires_at:
        info["expiryDate"] = authorization.expires_at.isoformat().replace("+00:00", "Z")
    return info


@on(Action.start_transaction)
def start_transaction(ctx: Ctx, payload: Payload) -> Payload:
    request = StartTransaction.model_validate(payload)
    # A repeated StartTransaction (same charger, connector, tag, time, register) is the same one.
    start_key = hashlib.sha256(
        f"{ctx.charger_id}|{request.connector_id}|{request.id_tag}|{request.timestamp.isoformat()}|"
        f"{request.meter_start}".encode()
    ).hexdigest()
    transaction_id = ctx.deps.sessions.allocate_transaction(start_key)
    session_id = str(transaction_id)
    authorization = ctx.deps.tags.authorize(request.id_tag, request.timestamp)
    status = authorization.status
    if status is TagStatus.ACCEPTED and not ctx.deps.tags.claim(
        request.id_tag, session_id, authorization.max_concurrent_sessions
    ):
        status = TagStatus.CONCURRENT_TX
    session = ctx.deps.sessions.get(session_id) or _open_session(
        ctx, request, session_id, transaction_id, status
    )
    start = SessionEvent(
        kind=EventKind.START,
        at=request.timestamp,
        connector_id=request.connector_id,
        id_tag=request.id_tag,
        meter_start_wh=request.meter_start,
        previous_register_wh=ctx.deps.registry.last_register(ctx.charger_id, request.connector_id),
    )
    free_connector_for(ctx, session, request.timestamp)
    record_events(ctx, session, [start])
    ctx.deps.registry.link_session(ctx.charger_id, request.connector_id, session_id, request.timestamp)
    return {"transactionId": transaction_id, "idTagInfo": {"status": status.value}}


def _open_session(
    ctx: Ctx, request: StartTransaction, session_id: str, transaction_id: int, status: TagStatus
) -> SessionRecord:
    # A subscriber's sessions are priced with the plan's member tariff, on any charger.
    tariff = ctx.deps.tariffs.member_tariff(request.id_tag) or ctx.deps.tariffs.in_force(
        ctx.charger_id, request.connector_id
    )
    charger = ctx.deps.registry.get(ctx.charger_id)
    record = SessionRecord(
        session_id=session_id,
        transaction_id=transaction_id,
        charger_id=ctx.charger_id,
        connector_id=request.connector_id,
        id_tag=request.id_tag,
        tag_status=status,
        started_at=request.timestamp,
        tariff_id=tariff[0] if tariff else None,
        tariff_json=tariff[1] if tariff else None,
        time_zone=ctx.deps.registry.time_zone_of(charger) if charger else None,
        rated_power_w=charger.rated_power_w if charger else None,
        site_id=charger.site_id if charger else "",
    )
    ctx.deps.sessions.open(record)
    # Another copy of this StartTransaction may have opened it first: theirs stands.
    return ctx.deps.sessions.get(session_id) or record


@on(Action.meter_values)
def meter_values(ctx: Ctx, payload: Payload) -> Payload:
    request = MeterValues.model_validate(payload)
    readings = parse_meter_values(request.meter_value)
    registers = [(r.at, r.energy_wh) for r in readings if r.energy_wh is not None]
    if registers:
        latest_at, latest_wh = max(registers, key=lambda register: register[0])
        ctx.deps.registry.record_register(ctx.charger_id, request.connector_id, int(latest_wh), latest_at)
    session = _session_for(ctx, request.connector_id, request.transaction_id)
    if session is not None:
        events = [
            SessionEvent(kind=EventKind.METER, at=r.at, reading=r)
            for r in readings
            if r.at >= session.started_at
        ]
        record_events(ctx, session, events)
    return {}


def _session_for(ctx: Ctx, connector_id: int, transaction_id: int | None) -> SessionRecord | None:
    """The transaction's session, or else the connector's current one; never another charger's."""
    session_id = str(transaction_id) if transaction_id is not None else None
    session_id = session_id or ctx.deps.registry.connector_session(ctx.charger_id, connector_id)
    session = ctx.deps.sessions.get(session_id) if session_id else None
    if session is None or session.charger_id != ctx.charger_id or session.connector_id != connector_id:
        return None
    return session


@on(Action.stop_transaction)
def stop_transaction(ctx: Ctx, payload: Payload) -> Payload:
    request = StopTransaction.model_validate(payload)
    session = ctx.deps.sessions.get(str(request.transaction_id))
    if session is None or session.charger_id != ctx.charger_id:
        # Unknown or another charger's transaction: change nothing, keep it for review,
        # and still answer, or the charger would retry it forever.
        ctx.deps.sessions.record_orphan_stop(ctx.charger_id, request.transaction_id, payload, ctx.received_at)
        return {}
    readings = parse_meter_values(request.transaction_data or [])
    events = [
        SessionEvent(kind=EventKind.METER, at=r.at, reading=r) for r in readings if r.at >= session.started_at
    ]
    events.append(
        SessionEvent(
            kind=EventKind.STOP,
            at=request.timestamp,
            meter_stop_wh=request.meter_stop,
            stop_reason=request.reason,
        )
    )
    record_events(ctx, session, events)
    ctx.deps.registry.record_register(
        ctx.charger_id, session.connector_id, request.meter_stop, request.timestamp
    )
    ctx.deps.tags.release(session.id_tag, session.session_id)
    return {"idTagInfo": _tag_info(ctx, request.id_tag)} if request.id_tag else {}
