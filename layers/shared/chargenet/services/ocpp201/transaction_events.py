"""Authorize, TransactionEvent and MeterValues (OCPP 2.0.1): the same sessions, CDRs and tags as 1.6.

A 2.0.1 charger names its transactions itself, so its events can reach us in any order: each
is stored in the log of the session its transaction id maps to (a network-wide id allocated
for `ocpp2.0.1|<charger>|<transactionId>`), whether or not the session exists yet. The Started
opens the session and folds the whole log; events before it wait there (an Ended among them is
also kept for review, like 1.6's orphan stop, until its Started comes and resolves it).
Everything else is the 1.6 session log: appended events, one fold, the running-session hot path
for plain readings.

The driver sees the price before the start (the Authorize's and the Started's
idTokenInfo.personalMessage, in the pay page's words) and the cost so far (totalCost). While a
transaction runs its chargingState is the connector's status: a bare Occupied is a car plugged in
and waiting for its driver, who may then pay for it.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from aws_lambda_powertools import Logger

from chargenet.domain.clock import ocpp_time
from chargenet.domain.fault_rules import NO_ERROR, OUTAGE_STATUSES
from chargenet.domain.models import ConnectorStatus, SessionRecord, TagAuthorization, TagStatus
from chargenet.domain.running_meter import latest_register
from chargenet.domain.sessions import EventKind, SessionEvent, SessionFacts, fold
from chargenet.domain.transactions201 import (
    SOLE_EVSE_ID,
    AuthorizeRequest,
    MeterValuesRequest,
    TransactionEventRequest,
    TransactionEventType,
    connector_status,
    running_cost_due,
    session_events,
    transaction_key,
)
from chargenet.ocpp.actions import Action201
from chargenet.ocpp.router import Payload, on
from chargenet.ports.sessions import SessionDriver
from chargenet.services.ocpp.context import Ctx
from chargenet.services.ocpp.session_log import (
    free_connector_for,
    new_session,
    record_events,
    record_readings,
    stored_start,
)

# Plug & Charge (ISO 15118 contract certificates) is not supported: the network holds no
# mobility-operator roots to verify a contract with, so it says so (NoCertificateAvailable) and
# does not authorize the contract's eMAID on its own (Unknown): the charger falls back to the
# driver's other means (RFID, the pay link).
PNC_CERTIFICATE_STATUS = "NoCertificateAvailable"
PNC_TOKEN_STATUS = "Unknown"
PRICE_MESSAGE_FORMAT = "UTF8"  # a currency's sign or a name may be outside ASCII

logger = Logger(child=True)


# Replay-safe: a read (the tag, the tariff its price message quotes), answered as things are then.
@on(Action201.authorize, replay_safe=True)
def authorize(ctx: Ctx, payload: Payload) -> Payload:
    request = AuthorizeRequest.model_validate(payload)
    if request.plug_and_charge:
        return {"idTokenInfo": {"status": PNC_TOKEN_STATUS}, "certificateStatus": PNC_CERTIFICATE_STATUS}
    driver = request.id_token.id_token
    info = _token_info(_authorization(ctx, driver))
    tariff = _tariff_before_the_start(ctx, driver) if info["status"] == TagStatus.ACCEPTED.value else None
    if tariff is not None:
        _with_price(info, tariff, ctx.received_at, _time_zone(ctx))
    return {"idTokenInfo": info}


def _tariff_before_the_start(ctx: Ctx, driver: str) -> tuple[str, str] | None:
    """The tariff the driver's session will be billed at: their plan's member tariff, else the
    connector's. An Authorize names no EVSE: a station with one (as far as the registry knows)
    has its connector's, a larger one the station's (connector 0: its own, else the network's)."""
    evses = [connector_id for connector_id in ctx.deps.view.connectors if connector_id > 0]
    connector_id = evses[0] if len(evses) == 1 else 0
    return ctx.deps.tariffs.session_tariff(driver, ctx.charger_id, connector_id)


def _time_zone(ctx: Ctx) -> str:
    return ctx.deps.registry.time_zone_of(ctx.deps.view.charger)


def _with_price(info: Payload, tariff: tuple[str, str], at: datetime, time_zone: str | None) -> None:
    """Add the price the session is billed at to an idTokenInfo, for the station to show its
    driver before the start (personalMessage). Nothing when the tariff cannot be shown: the
    authorization stands all the same."""
    # Imported here: the tariff engine is for priced sessions only (see domain.running_cost).
    from chargenet.domain.running_cost import price_message
    from chargenet.domain.tariffs import TariffError

    try:
        content = price_message(tariff[1], at, time_zone)
    except TariffError as error:
        logger.warning("price not shown", extra={"tariff_id": tariff[0], "error": str(error)})
        return
    if content:
        info["personalMessage"] = {"format": PRICE_MESSAGE_FORMAT, "language": "en", "content": content}


def _authorization(ctx: Ctx, id_tag: str) -> TagAuthorization:
    # An empty idToken (type NoAuthorization) is nobody's: the tag directory has no such key.
    return (
        ctx.deps.tags.authorize(id_tag, ctx.received_at)
        if id_tag
        else TagAuthorization(status=TagStatus.INVALID)
    )


def _token_info(authorization: TagAuthorization) -> Payload:
    info: Payload = {"status": authorization.status.value}  # 1.6's statuses are all 2.0.1 ones
    if authorization.expires_at:
        info["cacheExpiryDateTime"] = ocpp_time(authorization.expires_at)
    return info


# Replay-safe: every write is keyed on the event's own facts (a copy stores nothing new, a tag
# is claimed once per session); a copy is answered with the running cost as it is by then.
@on(Action201.transaction_event, replay_safe=True)
def transaction_event(ctx: Ctx, payload: Payload) -> Payload:
    request = TransactionEventRequest.model_validate(payload)
    transaction_id, first = _transaction_id(ctx, request)
    session = None if first else ctx.deps.sessions.get(str(transaction_id))
    facts: SessionFacts | None
    if request.event_type is TransactionEventType.STARTED:
        session, facts = _started(ctx, request, transaction_id, session, first)
    elif session is None and (session := _before_the_start(ctx, request, transaction_id, payload)) is None:
        _record_connector_status(ctx, request, None)
        return _reply(ctx, request, None, None)
    else:
        facts = _continued(ctx, request, session)
    if facts is not None:
        session = _billed_to_the_driver(ctx, request, session, facts)
        if facts.stopped_at is not None and request.event_type is not TransactionEventType.UPDATED:
            _after_the_stop(ctx, session, facts)
            if request.event_type is TransactionEventType.STARTED:
                # Its Ended came first (or at once) and was kept for review: the session now
                # accounts for it. Rare: only a Started whose fold already has the stop deletes.
                ctx.deps.sessions.resolve_orphan_end(ctx.charger_id, transaction_id)
    _record_connector_status(ctx, request, session)
    return _reply(ctx, request, session, facts)


def _record_connector_status(
    ctx: Ctx, request: TransactionEventRequest, session: SessionRecord | None
) -> None:
    """The connector's status as the transaction tells it (see transactions201.connector_status),
    written only when it changes (the frame's view has the stored one: no read). It never
    replaces Faulted or Unavailable: only the charger's StatusNotification says the connector is
    back, and the outage timeline (uptime) must not end early."""
    status = connector_status(request)
    connector_id = request.evse.id if request.evse else session.connector_id if session else None
    if status is None or connector_id is None:
        return
    stored = ctx.deps.view.status_of(connector_id)
    if stored == status or stored in OUTAGE_STATUSES:
        return
    ctx.deps.registry.record_connector_status(
        ConnectorStatus(
            charger_id=ctx.charger_id,
            connector_id=connector_id,
            status=status,
            error_code=NO_ERROR,
            status_at=request.timestamp,
            received_at=ctx.received_at,
        )
    )


def _transaction_id(ctx: Ctx, request: TransactionEventRequest) -> tuple[int, bool]:
    """The transaction's network-wide id, and whether this event allocated it. A Started almost
    always does; other events almost always find it (one read, no id wasted)."""
    key = transaction_key(ctx.charger_id, request.transaction_info.transaction_id)
    if request.event_type is not TransactionEventType.STARTED:
        known = ctx.deps.sessions.transaction_of(key)
        if known is not None:
            return known, False
    return ctx.deps.sessions.allocate_transaction(key)


def _events(ctx: Ctx, request: TransactionEventRequest) -> list[SessionEvent]:
    evse_id = request.evse.id if request.evse else SOLE_EVSE_ID
    return session_events(request, previous_register_wh=ctx.deps.view.register_of(evse_id))


def _started(
    ctx: Ctx, request: TransactionEventRequest, transaction_id: int, stored: SessionRecord | None, first: bool
) -> tuple[SessionRecord, SessionFacts]:
    events = _events(ctx, request)
    if stored is not None:  # a copy of the Started: it stores the start the first one did
        start = stored_start(ctx, stored.session_id)
        copied = [start if start and event.kind is EventKind.START else event for event in events]
        record, facts = stored, record_events(ctx, stored, copied)
    else:
        record, facts = _opened(ctx, request, transaction_id, events, first)
    # Also for a copy: the first may have crashed before the connector knew its session.
    free_connector_for(ctx, record, request.timestamp)
    ctx.deps.registry.link_session(ctx.charger_id, record.connector_id, record.session_id, request.timestamp)
    return record, facts


def _opened(
    ctx: Ctx, request: TransactionEventRequest, transaction_id: int, events: list[SessionEvent], first: bool
) -> tuple[SessionRecord, SessionFacts]:
    """The session opened with the Started's events. Events that came before the Started are in
    its log: they are part of the session from its opening (its driver may be among them). The
    log is read after the session exists, even when this Started allocated the transaction id:
    an event processed meanwhile either is in that read or finds the session (see
    _before_the_start), so none is left out of both."""
    session_id = str(transaction_id)
    earlier = [] if first else ctx.deps.sessions.events(session_id)
    record = _new_record(ctx, request, transaction_id, fold(earlier + events))
    facts = record_events(ctx, record, events) if ctx.deps.sessions.open(record) else None
    if facts is None:  # a copy of this Started opened it first: theirs stands
        record = ctx.deps.sessions.get(session_id) or record
        facts = record_events(ctx, record, events)
    return record, facts


def _new_record(
    ctx: Ctx, request: TransactionEventRequest, transaction_id: int, facts: SessionFacts
) -> SessionRecord:
    connector_id = facts.connector_id or SOLE_EVSE_ID
    driver = facts.id_tag or ""
    status = _claim(ctx, driver, str(transaction_id), request.timestamp, stopped=facts.stopped_at is not None)
    return new_session(
        ctx,
        transaction_id,
        connector_id,
        (driver, status),
        request.timestamp,
        _tariff_for(ctx, driver, connector_id),
        charger_transaction_id=request.transaction_info.transaction_id,
    )


def _tariff_for(ctx: Ctx, driver: str, connector_id: int) -> tuple[str, str] | None:
    """A subscriber's sessions are priced with the plan's member tariff; nobody's with the connector's."""
    if not driver:
        return ctx.deps.tariffs.in_force(ctx.charger_id, connector_id)
    return ctx.deps.tariffs.session_tariff(driver, ctx.charger_id, connector_id)


def _claim(ctx: Ctx, driver: str, session_id: str, at: datetime, stopped: bool) -> TagStatus:
    """The driver's authorization, the session counted against the tag while it runs. Without
    an idToken the charger started it on its own (plug-in start, free vend): nothing to refuse."""
    if not driver:
        return TagStatus.ACCEPTED
    if stopped:  # its stop is already in: counting it now would hold the tag forever
        return ctx.deps.tags.authorize(driver, at).status
    return ctx.deps.tags.authorize_and_claim(driver, session_id, at).status


def _before_the_start(
    ctx: Ctx, request: TransactionEventRequest, transaction_id: int, payload: Payload
) -> SessionRecord | None:
    """Kept in the log for the Started to fold; then the session, if its Started opened it
    meanwhile (read after the events are stored: either the Started's read of the log has them
    or this read finds the session, and the caller folds them in). An Ended whose session still
    does not exist is also kept for review, as 1.6's StopTransaction for an unknown transaction
    is, in case the Started never comes."""
    session_id = str(transaction_id)
    for event in _events(ctx, request):
        ctx.deps.sessions.append(session_id, event)
    opened = ctx.deps.sessions.get(session_id)
    if opened is None and request.event_type is TransactionEventType.ENDED:
        ctx.deps.sessions.record_orphan_end(ctx.charger_id, transaction_id, payload, ctx.received_at)
    return opened


def _continued(ctx: Ctx, request: TransactionEventRequest, session: SessionRecord) -> SessionFacts | None:
    """The session folded over the event, or None when the hot path took plain readings (no
    running cost to tell: the session has no tariff, or none is due yet)."""
    events = _events(ctx, request)
    readings = [event.reading for event in events if event.reading is not None]
    plain_readings = bool(readings) and all(event.kind is EventKind.METER for event in events)
    hot = plain_readings and (
        session.tariff_json is None
        or not running_cost_due(session.started_at, session.last_reading_at, readings)
    )
    if hot and record_readings(
        ctx, session.session_id, session.connector_id, readings, seq_no=request.seq_no
    ):
        return None
    return record_events(ctx, session, events)


def _billed_to_the_driver(
    ctx: Ctx, request: TransactionEventRequest, session: SessionRecord, facts: SessionFacts
) -> SessionRecord:
    """Make the session the tag the fold says it is billed to (authorized after the start, or
    changed), at that tag's member tariff; the tag before it no longer counts it."""
    driver = facts.id_tag or ""
    if not driver or driver == session.id_tag:
        return session
    stopped = facts.stopped_at is not None
    status = _claim(ctx, driver, session.session_id, request.timestamp, stopped=stopped)
    tariff = _tariff_for(ctx, driver, session.connector_id)
    if tariff is None or tariff[0] == session.tariff_id:
        # The same tariff: the snapshot taken at the start stands.
        tariff = (
            (session.tariff_id, session.tariff_json) if session.tariff_id and session.tariff_json else None
        )
    assigned = SessionDriver(id_tag=driver, tag_status=status, tariff=tariff)
    if not ctx.deps.sessions.assign_driver(session.session_id, assigned, replacing_tag=session.id_tag):
        return ctx.deps.sessions.get(session.session_id) or session
    if session.id_tag:
        ctx.deps.tags.release(session.id_tag, session.session_id, ctx.received_at)
    return session.model_copy(
        update={
            "id_tag": driver,
            "tag_status": status,
            "tariff_id": tariff[0] if tariff else None,
            "tariff_json": tariff[1] if tariff else None,
        }
    )


def _after_the_stop(ctx: Ctx, session: SessionRecord, facts: SessionFacts) -> None:
    """The tag no longer counts the session; the connector keeps the register it ended on."""
    if session.id_tag:
        ctx.deps.tags.release(session.id_tag, session.session_id, ctx.received_at)
    if facts.last_register is not None:
        at, energy_wh = facts.last_register
        ctx.deps.registry.record_register(ctx.charger_id, session.connector_id, int(energy_wh), at)


def _reply(
    ctx: Ctx, request: TransactionEventRequest, session: SessionRecord | None, facts: SessionFacts | None
) -> Payload:
    reply: Payload = {}
    total = _running_cost(session, facts) if session and facts else None
    if total is not None and request.event_type is not TransactionEventType.STARTED:
        reply["totalCost"] = total  # a Decimal: the codec writes its exact digits
    if request.id_token is not None:
        token = request.id_token.id_token
        if session is not None and token == session.id_tag:
            # The session's own tag: its authorization is on the session (no read).
            reply["idTokenInfo"] = {"status": session.tag_status.value}
            if _tells_the_price(request, session) and session.tariff_json is not None:
                # The price its tariff snapshot bills, whichever tariff is in force by now.
                tariff = (session.tariff_id or "", session.tariff_json)
                _with_price(reply["idTokenInfo"], tariff, session.started_at, session.time_zone)
        else:
            reply["idTokenInfo"] = _token_info(_authorization(ctx, token))
    return reply


def _tells_the_price(request: TransactionEventRequest, session: SessionRecord) -> bool:
    """A Started tells its accepted driver the price (an Updated's token changes no price shown)."""
    return request.event_type is TransactionEventType.STARTED and session.tag_status is TagStatus.ACCEPTED


def _running_cost(session: SessionRecord, facts: SessionFacts) -> Decimal | None:
    """The running cost the charger shows, None when the session's snapshot cannot be priced: the
    event is recorded all the same (refusing it would only have the charger resend it), and
    billing, which prices the same snapshot, holds the session and says why."""
    # Imported here: the tariff engine is for priced sessions only (see domain.running_cost).
    from chargenet.domain.running_cost import running_total
    from chargenet.domain.tariffs import TariffError

    try:
        total = running_total(session, facts)
    except TariffError as error:
        logger.warning(
            "running cost not priced", extra={"session_id": session.session_id, "error": str(error)}
        )
        return None
    return total[0] if total else None


@on(Action201.meter_values, replay_safe=True)
def meter_values(ctx: Ctx, payload: Payload) -> Payload:
    """Readings outside a transaction (2.0.1 sends a transaction's in its TransactionEvents): the
    connector's register, which the next session's start is checked against."""
    request = MeterValuesRequest.model_validate(payload)
    register = latest_register([meter_value.reading() for meter_value in request.meter_value])
    if register is not None and request.evse_id > 0:  # EVSE 0 is the station's main meter
        ctx.deps.registry.record_register(ctx.charger_id, request.evse_id, int(register[1]), register[0])
    return {}
