"""Authorize, StartTransaction, MeterValues and StopTransaction (OCPP 1.6J)."""

from __future__ import annotations

import hashlib

from chargenet.domain.meter_values import parse_meter_values
from chargenet.domain.models import (
    Authorize,
    MeterValues,
    SessionRecord,
    StartTransaction,
    StopTransaction,
    TagAuthorization,
    TagStatus,
)
from chargenet.domain.running_meter import latest_register
from chargenet.domain.sessions import EventKind, SessionEvent
from chargenet.ocpp.actions import Action
from chargenet.ocpp.router import Payload, on
from chargenet.services.ocpp.context import Ctx
from chargenet.services.ocpp.session_log import (
    free_connector_for,
    new_session,
    record_events,
    record_readings,
    start_session,
    stored_start,
)


# Replay-safe: a read. A copy is answered with the tag as it is then (a tag blocked meanwhile is
# refused), which is the answer OCPP asks for; nothing is stored, so nothing is stored twice.
@on(Action.authorize, replay_safe=True)
def authorize(ctx: Ctx, payload: Payload) -> Payload:
    request = Authorize.model_validate(payload)
    return {"idTagInfo": _tag_info(ctx, request.id_tag)}


def _tag_info(ctx: Ctx, id_tag: str) -> Payload:
    return _info(ctx.deps.tags.authorize(id_tag, ctx.received_at))


def _info(authorization: TagAuthorization) -> Payload:
    info: Payload = {"status": authorization.status.value}
    if authorization.expires_at:
        info["expiryDate"] = authorization.expires_at.isoformat().replace("+00:00", "Z")
    return info


@on(Action.start_transaction, replay_safe=True)
def start_transaction(ctx: Ctx, payload: Payload) -> Payload:
    request = StartTransaction.model_validate(payload)
    # A repeated StartTransaction (same charger, connector, tag, time, register) is the same one.
    start_key = hashlib.sha256(
        f"{ctx.charger_id}|{request.connector_id}|{request.id_tag}|{request.timestamp.isoformat()}|"
        f"{request.meter_start}".encode()
    ).hexdigest()
    # Not read first: the start's one write tells a copy, which is rare (it only wastes an id).
    transaction_id = ctx.deps.sessions.next_transaction_id()
    session = _open_session(ctx, request, transaction_id, start_key) or _repeated_start(
        ctx, request, start_key
    )
    return {"transactionId": session.transaction_id, "idTagInfo": {"status": session.tag_status.value}}


def _open_session(
    ctx: Ctx, request: StartTransaction, transaction_id: int, start_key: str | None
) -> SessionRecord | None:
    """The session this call opened, its tag claimed (the claim decides its status); None when
    a copy of this StartTransaction opened it first."""
    # A subscriber's sessions are priced with the plan's member tariff, on any charger.
    tariff = ctx.deps.tariffs.session_tariff(request.id_tag, ctx.charger_id, request.connector_id)
    driver = (request.id_tag, TagStatus.ACCEPTED)  # until its claim says otherwise
    record = new_session(ctx, transaction_id, request.connector_id, driver, request.timestamp, tariff)
    return start_session(ctx, record, [_start_event(ctx, request)], start_key=start_key)


def _start_event(ctx: Ctx, request: StartTransaction) -> SessionEvent:
    return SessionEvent(
        kind=EventKind.START,
        at=request.timestamp,
        connector_id=request.connector_id,
        id_tag=request.id_tag,
        meter_start_wh=request.meter_start,
        previous_register_wh=ctx.deps.view.register_of(request.connector_id),
    )


def _repeated_start(ctx: Ctx, request: StartTransaction, start_key: str) -> SessionRecord:
    """A copy answers what the first answered, from the session: its tag was authorized (and
    claimed) once, and a copy after the stop must not claim it again. It stores the start event
    the first stored, not one with the connector's register as it is now (a second, different
    start for the fold to choose from), and frees and links the connector as the first did
    (which an earlier version did after the session was written: a crash could skip them)."""
    transaction_id = ctx.deps.sessions.transaction_of(start_key)
    if transaction_id is None:  # a copy is told by its start key, written with its session
        raise RuntimeError("a StartTransaction's copy without its start key")
    stored = ctx.deps.sessions.get(str(transaction_id))
    if stored is None:
        # Its key was allocated before the session (an earlier version's crash): open it now.
        opened = _open_session(ctx, request, transaction_id, None)
        return opened or _repeated_start(ctx, request, start_key)
    # An earlier version stored the start event after the session: a crash could leave none.
    record_events(ctx, stored, [stored_start(ctx, stored.session_id) or _start_event(ctx, request)])
    free_connector_for(ctx, stored, request.timestamp)
    ctx.deps.registry.link_session(ctx.charger_id, request.connector_id, stored.session_id, request.timestamp)
    return stored


@on(Action.meter_values, replay_safe=True)
def meter_values(ctx: Ctx, payload: Payload) -> Payload:
    request = MeterValues.model_validate(payload)
    readings = parse_meter_values(request.meter_value)
    session_id = _session_id_for(ctx, request.connector_id, request.transaction_id)
    if readings and session_id and record_readings(ctx, session_id, request.connector_id, readings):
        # A running session keeps its register itself; its stop records it on the connector.
        return {}
    register = latest_register(readings)
    if register is not None:
        ctx.deps.registry.record_register(ctx.charger_id, request.connector_id, int(register[1]), register[0])
    session = _own_session(ctx, request.connector_id, session_id)
    if session is not None:
        events = [
            SessionEvent(kind=EventKind.METER, at=r.at, reading=r)
            for r in readings
            if r.at >= session.started_at
        ]
        record_events(ctx, session, events)
    return {}


def _session_id_for(ctx: Ctx, connector_id: int, transaction_id: int | None) -> str | None:
    """The transaction's session, or else the connector's current one (whoever's: check it)."""
    if transaction_id is not None:
        return str(transaction_id)
    return ctx.deps.view.session_on(connector_id)


def _own_session(ctx: Ctx, connector_id: int, session_id: str | None) -> SessionRecord | None:
    """The session, if it is this connector's; never another charger's."""
    session = ctx.deps.sessions.get(session_id) if session_id else None
    if session is None or session.charger_id != ctx.charger_id or session.connector_id != connector_id:
        return None
    return session


@on(Action.stop_transaction, replay_safe=True)
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
    released = ctx.deps.tags.release(session.id_tag, session.session_id, ctx.received_at)
    if not request.id_tag:
        return {}
    # Usually the tag that started it: the release's answer is its authorization (no read).
    same_tag = request.id_tag == session.id_tag
    return {"idTagInfo": _info(released) if same_tag else _tag_info(ctx, request.id_tag)}
