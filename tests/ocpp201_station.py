"""An OCPP 2.0.1 charging station calling the 2.0.1 transaction handlers over in-memory ports.

Every CALL is checked against the `ocpp` package's 2.0.1 request schema and every reply against
its response schema, so the tests speak real 2.0.1. The charger's view is read per frame, as the
ingest service reads it.
"""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from ocpp.messages import MessageType, get_validator

from chargenet.domain.models import ConnectorStatus, SessionRecord, TagAuthorization, TagStatus
from chargenet.domain.sessions import SessionEvent, SessionFacts, fold
from chargenet.ocpp.router import CallContext
from chargenet.services.billing import Biller
from chargenet.services.fault_tracking import FaultTracker
from chargenet.services.ocpp.context import CallDeps
from chargenet.services.ocpp.session_log import record_status
from chargenet.services.ocpp201 import transaction_events
from tests.fakes import (
    FakeCertificateAuthority,
    InMemoryFaultStore,
    InMemoryPendingCalls,
    InMemoryRegistry,
    InMemorySessionStore,
    InMemoryTags,
    InMemoryTariffs,
    RecordingPublisher,
)

T0 = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)
STATION = "CS-201"
# 0.50 per session, 0.36/kWh, 6.00/h parking, 25 % VAT: the CDR is priced with this snapshot.
TARIFF_JSON = """{
  "country_code": "NL", "party_id": "CNT", "id": "T201", "currency": "EUR",
  "elements": [
    {"price_components": [{"type": "FLAT", "price": 0.50, "vat": 25, "step_size": 1}]},
    {"price_components": [{"type": "ENERGY", "price": 0.36, "vat": 25, "step_size": 1}]},
    {"price_components": [{"type": "PARKING_TIME", "price": 6.00, "vat": 25, "step_size": 60}]}
  ],
  "last_updated": "2025-01-01T00:00:00Z"
}"""
MEMBER_TARIFF_JSON = TARIFF_JSON.replace('"T201"', '"MEMBER"').replace("0.36", "0.20")

_HANDLERS = {
    "Authorize": transaction_events.authorize,
    "TransactionEvent": transaction_events.transaction_event,
    "MeterValues": transaction_events.meter_values,
}


def at(minutes: float) -> str:
    return (T0 + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")


def energy(wh: float, context: str = "Sample.Periodic", minutes: float = 0) -> dict[str, Any]:
    return meter_value(at(minutes), wh, context)


def meter_value(timestamp: str, wh: float, context: str) -> dict[str, Any]:
    """A meterValue with the energy register, as most stations send it (kWh with a unit), and
    the power drawn."""
    return {
        "timestamp": timestamp,
        "sampledValue": [
            {"value": wh / 1000, "context": context, "unitOfMeasure": {"unit": "kWh"}},
            {
                "value": 11000,
                "context": context,
                "measurand": "Power.Active.Import",
                "unitOfMeasure": {"unit": "W"},
            },
        ],
    }


def transaction_event(
    event_type: str,
    seq_no: int,
    minutes: float,
    *,
    register_wh: float | None = None,
    trigger: str = "MeterValuePeriodic",
    state: str | None = "Charging",
    token: str | None = None,
    stopped_reason: str | None = None,
    transaction_id: str = "TX-1",
    evse: int | None = 1,
    offline: bool = False,
) -> dict[str, Any]:
    info: dict[str, Any] = {"transactionId": transaction_id}
    if state is not None:
        info["chargingState"] = state
    if stopped_reason is not None:
        info["stoppedReason"] = stopped_reason
    payload: dict[str, Any] = {
        "eventType": event_type,
        "timestamp": at(minutes),
        "triggerReason": trigger,
        "seqNo": seq_no,
        "transactionInfo": info,
    }
    if register_wh is not None:
        context = {"Started": "Transaction.Begin", "Ended": "Transaction.End"}.get(
            event_type, "Sample.Periodic"
        )
        payload["meterValue"] = [energy(register_wh, context, minutes)]
    if evse is not None and event_type == "Started":
        payload["evse"] = {"id": evse, "connectorId": 1}
    if token is not None:
        payload["idToken"] = {"idToken": token, "type": "ISO14443"}
    if offline:
        payload["offline"] = True
    return payload


class Station:
    def __init__(self, tariff: tuple[str, str] | None = ("T201", TARIFF_JSON)) -> None:
        self.registry = InMemoryRegistry()
        self.registry.add(STATION, T0 - timedelta(days=1), site_id="S1", time_zone="UTC")
        self.sessions = InMemorySessionStore()
        self.tags = InMemoryTags(
            {
                "TAG-OK": TagAuthorization(status=TagStatus.ACCEPTED),
                "TAG-MEMBER": TagAuthorization(status=TagStatus.ACCEPTED),
                "TAG-BLOCKED": TagAuthorization(status=TagStatus.BLOCKED),
                "TAG-EXPIRING": TagAuthorization(
                    status=TagStatus.ACCEPTED, expires_at=datetime(2027, 1, 1, tzinfo=UTC)
                ),
            }
        )
        self.tariffs = InMemoryTariffs(tariff)
        self.tariffs.members["TAG-MEMBER"] = ("MEMBER", MEMBER_TARIFF_JSON)
        self.faults = FaultTracker(InMemoryFaultStore(), RecordingPublisher(), lambda: T0)

    def _context(self) -> CallContext[CallDeps]:
        view = self.registry.view(STATION)
        assert view is not None
        deps = CallDeps(
            registry=self.registry,
            sessions=self.sessions,
            tags=self.tags,
            tariffs=self.tariffs,
            faults=self.faults,
            heartbeat_interval_s=300,
            clock=lambda: T0,
            certificates=FakeCertificateAuthority(),
            pending=InMemoryPendingCalls(),
            view=view,
        )
        return CallContext(charger_id=STATION, message_id="m", received_at=T0, deps=deps)

    def call(self, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        get_validator(MessageType.Call, action, "2.0.1").validate(payload)
        reply = _HANDLERS[action](self._context(), payload)
        get_validator(MessageType.CallResult, action, "2.0.1").validate(reply)
        return reply

    def event(self, event_type: str, seq_no: int, minutes: float, **fields: Any) -> dict[str, Any]:
        return self.call("TransactionEvent", transaction_event(event_type, seq_no, minutes, **fields))

    def status(self, name: str, minutes: float, evse: int = 1) -> None:
        """A StatusNotification's effect on the session, as the 2.0.1 StatusNotification handler
        feeds it (Available frees the connector)."""
        status = ConnectorStatus(
            charger_id=STATION,
            connector_id=evse,
            status=name,
            error_code="NoError",
            status_at=T0 + timedelta(minutes=minutes),
            received_at=T0,
        )
        record_status(self._context(), status, self.registry.record_connector_status(status))

    def session(self, transaction_id: str = "TX-1") -> SessionRecord:
        number = self.sessions.transaction_of(f"ocpp2.0.1|{STATION}|{transaction_id}")
        session = self.sessions.get(str(number))
        assert session is not None, "no session for the transaction"
        return session

    def facts(self, transaction_id: str = "TX-1") -> SessionFacts:
        return fold(self.sessions.events(self.session(transaction_id).session_id))

    def cdr_total_incl_vat(self, transaction_id: str = "TX-1") -> Decimal:
        """What BillingFunction bills the completed session: fold, price, CDR (services.billing)."""
        session = self.session(transaction_id)
        cdrs: list[Any] = []
        Biller(_Billable(self.sessions), _Cdrs(cdrs), lambda: T0).bill(session.session_id)
        assert len(cdrs) == 1, "the session was not billed"
        return Decimal(cdrs[0].total_incl_vat)


class _Billable:
    def __init__(self, sessions: InMemorySessionStore) -> None:
        self.sessions = sessions

    def get(self, session_id: str) -> SessionRecord | None:
        return self.sessions.get(session_id)

    def events(self, session_id: str) -> list[SessionEvent]:
        return self.sessions.events(session_id)

    def mark_billed(self, session_id: str) -> bool:
        return True


class _Cdrs:
    def __init__(self, created: list[Any]) -> None:
        self.created = created

    def create(self, record: Any) -> bool:
        self.created.append(record)
        return True
