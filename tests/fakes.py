"""In-memory stand-ins for the ports (chargenet.ports), for unit tests only; each names the port it implements."""

from __future__ import annotations

import builtins
import hashlib
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from chargenet.domain.alerts import AlertDecision, AlertKind, AlertRecord
from chargenet.domain.certificates import CertificateStatus, ChargerCertificate
from chargenet.domain.clock import from_epoch_ms
from chargenet.domain.faults import Fault, FaultState
from chargenet.domain.meter_values import MeterReading
from chargenet.domain.models import (
    BootNotification,
    Charger,
    ConnectorStatus,
    PendingCall,
    PresenceEvent,
    SessionRecord,
    TagAuthorization,
    TagStatus,
)
from chargenet.domain.ocpp201_messages import DeviceModel, DeviceModelPart
from chargenet.domain.running_meter import RunningMeter, latest_register
from chargenet.domain.sessions import FINAL_STATES, SessionEvent, SessionFacts
from chargenet.domain.time_zones import site_clock
from chargenet.domain.transactions201 import transaction_key
from chargenet.ocpp.versions import OcppVersion
from chargenet.ports.certificates import CertificateAuthority
from chargenet.ports.faults import AlertPublisher, FaultStore
from chargenet.ports.messaging import ChargerChannel, Deduplicator, PendingCalls
from chargenet.ports.registry import ChargerRegistry, ChargerView, ConnectorLink
from chargenet.ports.sessions import SessionDriver, SessionStart, SessionStore, StartOutcome, StartResult
from chargenet.ports.tags_tariffs import TagDirectory, TariffBook


class InMemoryRegistry(ChargerRegistry):
    def __init__(self) -> None:
        self.chargers: dict[str, Charger] = {}
        self.statuses: dict[tuple[str, int], ConnectorStatus] = {}
        self.status_history: list[ConnectorStatus] = []  # the history entries written by the registry
        self.seen_writes = 0
        self.sessions: dict[tuple[str, int], tuple[str, datetime]] = {}
        self.registers: dict[tuple[str, int], tuple[int, datetime]] = {}
        self.status_faults: dict[tuple[str, int], bool] = {}
        self.site_zones: dict[str, str] = {}
        self.deployment_zone = "UTC"
        self.device_model_parts: dict[str, dict[int, DeviceModelPart]] = {}

    def add(self, charger_id: str, at: datetime, site_id: str = "", time_zone: str | None = None) -> None:
        self.chargers[charger_id] = Charger(
            charger_id=charger_id, site_id=site_id, registered_at=at, time_zone=time_zone
        )

    def time_zone_of(self, charger: Charger) -> str:
        return site_clock(charger.time_zone, self.site_zones.get(charger.site_id), self.deployment_zone)

    def _update(self, charger_id: str, **changes: object) -> None:
        self.chargers[charger_id] = self.chargers[charger_id].model_copy(update=changes)

    def get(self, charger_id: str) -> Charger | None:
        return self.chargers.get(charger_id)

    def view(self, charger_id: str) -> ChargerView | None:
        charger = self.chargers.get(charger_id)
        if charger is None:
            return None
        known = (*self.sessions, *self.registers, *self.status_faults, *self.statuses)
        keys = {key for key in known if key[0] == charger_id}
        links = {
            connector_id: ConnectorLink(
                self.connector_session(charger_id, connector_id),
                self.last_register(charger_id, connector_id),
                self.status_faults.get((charger_id, connector_id)),
                self._linked_at(charger_id, connector_id),
                self._status(charger_id, connector_id),
            )
            for _, connector_id in keys
        }
        return ChargerView(charger, links)

    def _status(self, charger_id: str, connector_id: int) -> str | None:
        stored = self.statuses.get((charger_id, connector_id))
        return stored.status if stored else None

    def list(self) -> list[Charger]:
        return sorted(self.chargers.values(), key=lambda c: c.charger_id)

    def record_boot(
        self,
        charger_id: str,
        boot: BootNotification,
        at: datetime,
        ocpp_version: OcppVersion = OcppVersion.V16,
        rebooted: bool = True,
    ) -> Charger:
        charger = self.chargers[charger_id]
        self._update(
            charger_id,
            **boot.reported_facts(),  # like the adapter: what the boot leaves out is kept
            last_boot_at=at if rebooted else charger.last_boot_at,
            last_seen_at=at,
            recent_boots=[*charger.recent_boots, at][-10:] if rebooted else charger.recent_boots,
            ocpp_version=ocpp_version.value,
        )
        return self.chargers[charger_id]

    def record_device_model_part(self, charger_id: str, part: DeviceModelPart) -> None:
        self.device_model_parts.setdefault(charger_id, {})[part.seq_no] = part

    def device_model(self, charger_id: str) -> DeviceModel | None:
        return DeviceModel.of_parts(list(self.device_model_parts.get(charger_id, {}).values()))

    def record_device_status(self, charger_id: str, field: str, status: str) -> None:
        self._update(charger_id, **{field: status})

    def record_seen(self, charger_id: str, at: datetime) -> None:
        self.seen_writes += 1
        last = self.chargers[charger_id].last_seen_at
        if last is None or last < at:
            self._update(charger_id, last_seen_at=at)

    def record_connector_status(self, status: ConnectorStatus, raises_fault: bool = False) -> bool:
        self.record_status_history(status)
        return self.record_latest_status(status, raises_fault)

    def record_status_history(self, status: ConnectorStatus) -> None:
        self.status_history.append(status)

    def record_latest_status(self, status: ConnectorStatus, raises_fault: bool = False) -> bool:
        key = (status.charger_id, status.connector_id)
        current = self.statuses.get(key)
        if current is not None and current.status_at > status.status_at:
            return False
        self.statuses[key] = status
        if raises_fault:
            self.status_faults[key] = True
        return True

    def clear_status_fault(self, charger_id: str, connector_id: int, status_at: datetime) -> None:
        current = self.statuses.get((charger_id, connector_id))
        if current is not None and current.status_at <= status_at:
            self.status_faults[(charger_id, connector_id)] = False

    def connectors(self, charger_id: str) -> builtins.list[ConnectorStatus]:
        return sorted(
            (s for (c, _), s in self.statuses.items() if c == charger_id), key=lambda s: s.connector_id
        )

    def apply_presence(self, event: PresenceEvent) -> bool:
        charger = self.chargers.get(event.client_id)
        if charger is None or charger.presence_version >= event.version_number:
            return False
        self._update(
            event.client_id,
            online=event.event_type == "connected",
            presence_version=event.version_number,
            presence_changed_at=from_epoch_ms(event.timestamp),
            disconnect_reason=event.disconnect_reason,
        )
        return True

    def link_session(self, charger_id: str, connector_id: int, session_id: str, at: datetime) -> None:
        current = self.sessions.get((charger_id, connector_id))
        if current is None or current[1] <= at:
            self.sessions[(charger_id, connector_id)] = (session_id, at)

    def connector_session(self, charger_id: str, connector_id: int) -> str | None:
        current = self.sessions.get((charger_id, connector_id))
        return current[0] if current else None

    def _linked_at(self, charger_id: str, connector_id: int) -> datetime | None:
        current = self.sessions.get((charger_id, connector_id))
        return current[1] if current else None

    def record_register(self, charger_id: str, connector_id: int, energy_wh: int, at: datetime) -> None:
        current = self.registers.get((charger_id, connector_id))
        if current is None or current[1] <= at:
            self.registers[(charger_id, connector_id)] = (energy_wh, at)

    def last_register(self, charger_id: str, connector_id: int) -> int | None:
        current = self.registers.get((charger_id, connector_id))
        return current[0] if current else None

    def record_certificate(self, charger_id: str, not_after: datetime) -> None:
        self._update(charger_id, certificate_not_after=not_after)


class InMemorySessionStore(SessionStore):
    def __init__(self, tags: TagDirectory | None = None, registry: ChargerRegistry | None = None) -> None:
        # What start() writes besides the session (the tag's claim, the connector's link):
        # needed only where StartTransaction runs.
        self.tags, self.registry = tags, registry
        self.records: dict[str, SessionRecord] = {}
        self.event_log: dict[str, dict[str, SessionEvent]] = {}
        self.start_keys: dict[str, int] = {}
        self.orphans: list[tuple[str, int, dict[str, Any]]] = []
        self.status_history: list[ConnectorStatus] = []  # the history entries written with an event
        # What the hot path goes on from: the start's register, the last register (at, Wh).
        self.running: dict[str, tuple[int | None, tuple[datetime, Decimal] | None]] = {}
        self._next_id = 1

    def in_state(self, state: str) -> list[SessionRecord]:
        return [r for r in self.records.values() if r.state == state]

    def next_transaction_id(self) -> int:
        self._next_id += 1
        return self._next_id - 1

    def start(self, start: SessionStart) -> StartResult:
        record = start.record
        if start.start_key in self.start_keys or record.session_id in self.records:
            return StartResult(StartOutcome.COPY, record)
        previous = self.records.get(start.previous_session_id or "")
        if previous and previous.state in ("active", "stopped") and previous.started_at < record.started_at:
            return StartResult(StartOutcome.PREVIOUS_UNFINISHED, record)
        assert self.tags is not None and self.registry is not None, "InMemorySessionStore(tags, registry)"
        if start.claim_tag:
            claim = self.tags.authorize_and_claim(record.id_tag, record.session_id, record.started_at)
            record = record.model_copy(update={"tag_status": claim.status})
        if start.start_key is not None:
            self.start_keys[start.start_key] = record.transaction_id
        self.open(record, start.facts, event_count=len({e.key for e in start.events}))
        for event in start.events:
            self.append(record.session_id, event)
        self.registry.link_session(
            record.charger_id, record.connector_id, record.session_id, record.started_at
        )
        return StartResult(StartOutcome.OPENED, record)

    def allocate_transaction(self, start_key: str) -> tuple[int, bool]:
        first = start_key not in self.start_keys
        if first:
            self.start_keys[start_key] = self._next_id
            self._next_id += 1
        return self.start_keys[start_key], first

    def transaction_of(self, start_key: str) -> int | None:
        return self.start_keys.get(start_key)

    def session_id_of_transaction(self, charger_id: str, charger_transaction_id: str) -> str | None:
        number = self.transaction_of(transaction_key(charger_id, charger_transaction_id))
        return str(number) if number is not None else None

    def get(self, session_id: str) -> SessionRecord | None:
        return self.records.get(session_id)

    def open(
        self, record: SessionRecord, start_facts: SessionFacts | None = None, event_count: int = 1
    ) -> bool:
        if record.session_id in self.records:
            return False
        self.records[record.session_id] = record
        if start_facts is not None:
            self.save_facts(record.session_id, start_facts, event_count=event_count)
        return True

    def assign_driver(self, session_id: str, driver: SessionDriver, replacing_tag: str) -> bool:
        record = self.records[session_id]
        if record.id_tag != replacing_tag or record.state in ("billed", "voided"):
            return False
        tariff_id, tariff_json = driver.tariff or (None, None)
        self.records[session_id] = record.model_copy(
            update={
                "id_tag": driver.id_tag,
                "tag_status": driver.tag_status,
                "tariff_id": tariff_id,
                "tariff_json": tariff_json,
            }
        )
        return True

    def append(
        self, session_id: str, event: SessionEvent, status_history: ConnectorStatus | None = None
    ) -> None:
        self.event_log.setdefault(session_id, {})[event.key] = event
        if status_history is not None:
            self.status_history.append(status_history)

    def events(self, session_id: str) -> list[SessionEvent]:
        return list(self.event_log.get(session_id, {}).values())

    def unfinished_on_connector(
        self, charger_id: str, connector_id: int, started_by: datetime
    ) -> list[SessionRecord]:
        return [
            r
            for r in self.records.values()
            if (r.charger_id, r.connector_id) == (charger_id, connector_id)
            and r.state in ("active", "stopped")
            and r.started_at <= started_by
        ]

    def save_facts(self, session_id: str, facts: SessionFacts, event_count: int) -> bool:
        record = self.records[session_id]
        misses_a_reading = record.last_reading_at is not None and (
            facts.last_reading_at is None or facts.last_reading_at < record.last_reading_at
        )
        if record.event_count > event_count or misses_a_reading:
            return False
        self.records[session_id] = record.model_copy(
            update={
                "state": facts.state.value,
                "energy_wh": int(facts.energy_wh),
                "stopped_at": facts.stopped_at,
                "freed_at": facts.freed_at,
                "review_reasons": facts.review_reasons,
                "last_reading_at": facts.last_reading_at,
                "event_count": event_count,
            }
        )
        self.running[session_id] = (facts.meter_start_wh, facts.last_register)
        return True

    def save_folded(
        self, session_id: str, events: list[SessionEvent], facts: SessionFacts, event_count: int
    ) -> bool:
        stored = session_id in self.records and self.records[session_id].state not in FINAL_STATES
        if not stored or not self.save_facts(session_id, facts, event_count):
            return False
        for event in events:
            self.append(session_id, event)
        return True

    def advance_meter(
        self, session_id: str, charger_id: str, connector_id: int, readings: list[MeterReading]
    ) -> RunningMeter | None:
        record = self.records.get(session_id)
        meter_start_wh, last_register = self.running.get(session_id, (None, None))
        first_at = min(r.at for r in readings)
        if (
            record is None
            or (record.charger_id, record.connector_id, record.state) != (charger_id, connector_id, "active")
            or record.started_at > first_at
            or record.review_reasons
            or meter_start_wh is None
            or last_register is None
            or last_register[0] >= first_at
            or (record.last_reading_at is not None and record.last_reading_at >= first_at)
        ):
            return None
        update: dict[str, Any] = {
            "last_reading_at": max(r.at for r in readings),
            "event_count": record.event_count + len({r.at for r in readings}),
        }
        register = latest_register(readings)
        if register is not None:
            update["energy_wh"] = int(register[1]) - meter_start_wh
            self.running[session_id] = (meter_start_wh, register)
        self.records[session_id] = record.model_copy(update=update)
        rated = Decimal(record.rated_power_w) if record.rated_power_w else None
        return RunningMeter(register_at=last_register[0], register_wh=last_register[1], rated_power_w=rated)

    def record_orphan_stop(
        self, charger_id: str, transaction_id: int, payload: dict[str, Any], at: datetime
    ) -> None:
        self.orphans.append((charger_id, transaction_id, payload))

    def record_orphan_end(
        self, charger_id: str, transaction_id: int, payload: dict[str, Any], at: datetime
    ) -> None:
        self.resolve_orphan_end(charger_id, transaction_id)
        self.orphans.append((charger_id, transaction_id, payload))

    def resolve_orphan_end(self, charger_id: str, transaction_id: int) -> None:
        self.orphans = [o for o in self.orphans if (o[0], o[1]) != (charger_id, transaction_id)]


class InMemoryTags(TagDirectory):
    def __init__(self, tags: dict[str, TagAuthorization] | None = None) -> None:
        self.tags = tags or {}
        self.active: dict[str, set[str]] = {}

    def authorize(self, id_tag: str, at: datetime) -> TagAuthorization:
        return self.tags.get(id_tag, TagAuthorization(status=TagStatus.INVALID))

    def authorize_and_claim(self, id_tag: str, session_id: str, at: datetime) -> TagAuthorization:
        authorization = self.authorize(id_tag, at)
        if authorization.status is not TagStatus.ACCEPTED:
            return authorization
        active = self.active.setdefault(id_tag, set())
        if session_id not in active and len(active) >= authorization.max_concurrent_sessions:
            return authorization.model_copy(update={"status": TagStatus.CONCURRENT_TX})
        active.add(session_id)
        return authorization

    def release(self, id_tag: str, session_id: str, at: datetime) -> TagAuthorization:
        self.active.get(id_tag, set()).discard(session_id)
        return self.authorize(id_tag, at)


class InMemoryTariffs(TariffBook):
    def __init__(self, tariff: tuple[str, str] | None = None) -> None:
        self.tariff = tariff
        self.members: dict[str, tuple[str, str]] = {}  # member tariffs by tag

    def in_force(self, charger_id: str, connector_id: int) -> tuple[str, str] | None:
        return self.tariff

    def session_tariff(self, id_tag: str, charger_id: str, connector_id: int) -> tuple[str, str] | None:
        return self.members.get(id_tag) or self.in_force(charger_id, connector_id)


class InMemoryPendingCalls(PendingCalls):
    def __init__(self) -> None:
        self.calls: dict[tuple[str, str], dict[str, Any]] = {}

    def add(
        self, charger_id: str, message_id: str, action: str, payload: dict[str, Any], at: datetime
    ) -> None:
        self.calls[(charger_id, message_id)] = {"action": action, "payload": payload, "sent_at": at}

    def action_of(self, charger_id: str, message_id: str) -> str | None:
        call = self.calls.get((charger_id, message_id))
        return call["action"] if call else None

    def resolve(self, charger_id: str, message_id: str, outcome: dict[str, Any], at: datetime) -> bool:
        call = self.calls.get((charger_id, message_id))
        if call is None or "outcome" in call:
            return False
        call.update(outcome=outcome, answered_at=at)
        return True

    def get(self, charger_id: str, message_id: str) -> PendingCall | None:
        call = self.calls.get((charger_id, message_id))
        return PendingCall(charger_id=charger_id, message_id=message_id, **call) if call else None

    def of_charger(self, charger_id: str) -> list[PendingCall]:
        return [c for (cid, mid) in self.calls if cid == charger_id and (c := self.get(cid, mid))]


class FakeCertificateAuthority(CertificateAuthority):
    """Signs CSRs with a throwaway CA (real certificates, so serials and expiries can be read)."""

    def __init__(self, days: int = 365, clock: Callable[[], datetime] | None = None) -> None:
        from cryptography.hazmat.primitives.asymmetric import ec

        self.days = days
        self._clock = clock or (lambda: datetime.now(UTC))
        self._key = ec.generate_private_key(ec.SECP256R1())
        self.by_charger: dict[str, list[ChargerCertificate]] = {}

    def issue(self, charger_id: str, csr_pem: str) -> ChargerCertificate:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.x509.oid import NameOID

        csr = x509.load_pem_x509_csr(csr_pem.encode())
        now = datetime.now(UTC)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(csr.subject)
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fake CA")]))
            .public_key(csr.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=self.days))
            .sign(self._key, hashes.SHA256())
        )
        pem = certificate.public_bytes(serialization.Encoding.PEM).decode()
        # IoT's certificate id: the SHA-256 of the DER, what the rule's principal() gives.
        certificate_id = hashlib.sha256(certificate.public_bytes(serialization.Encoding.DER)).hexdigest()
        issued = ChargerCertificate(certificate_id, pem, CertificateStatus.ACTIVE, self._clock())
        self.by_charger.setdefault(charger_id, []).append(issued)
        return issued

    def certificates_of(self, charger_id: str) -> list[ChargerCertificate]:
        return list(self.by_charger.get(charger_id, []))

    def retire(self, certificate_id: str) -> None:
        for certificates in self.by_charger.values():
            for i, certificate in enumerate(certificates):
                if certificate.certificate_id == certificate_id:
                    certificates[i] = replace(certificate, status=CertificateStatus.INACTIVE)

    def status(self, charger_id: str, pem: str) -> CertificateStatus:
        return next(c.status for c in self.by_charger[charger_id] if c.pem == pem)


class RecordingChannel(ChargerChannel):
    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    def send(self, charger_id: str, frame: str) -> None:
        self.sent.append((charger_id, frame))


class DictDeduplicator(Deduplicator):
    def __init__(self) -> None:
        self.results: dict[str, str] = {}
        self.in_flight: set[str] = set()
        self.computed = 0

    def once(self, key: str, compute: Callable[[], str]) -> str | None:
        if key in self.in_flight:
            return None
        if key not in self.results:
            self.computed += 1
            self.results[key] = compute()
        return self.results[key]


class InMemoryFaultStore(FaultStore):
    def __init__(self) -> None:
        self.faults: dict[str, tuple[Fault, list[AlertRecord]]] = {}

    def get(self, fault_id: str) -> tuple[Fault, list[AlertRecord]] | None:
        return self.faults.get(fault_id)

    def of_charger(self, charger_id: str) -> list[tuple[Fault, list[AlertRecord]]]:
        return [entry for entry in self.faults.values() if entry[0].charger_id == charger_id]

    def save(
        self, fault: Fault, alerts: list[AlertRecord], previous: tuple[Fault, list[AlertRecord]] | None
    ) -> bool:
        if self.faults.get(fault.fault_id) != previous:
            return False
        self.faults[fault.fault_id] = (fault, alerts)
        return True

    def watched(self) -> list[tuple[Fault, list[AlertRecord]]]:
        return [
            (fault, alerts)
            for fault, alerts in self.faults.values()
            if fault.state is not FaultState.RESOLVED
            or any(a.kind is AlertKind.FLAPPING or not a.published for a in alerts)
        ]


class RecordingPublisher(AlertPublisher):
    def __init__(self) -> None:
        self.published: list[AlertDecision] = []

    def publish(self, decision: AlertDecision) -> None:
        self.published.append(decision)


if TYPE_CHECKING:
    from chargenet.ports.certificates import CertificateAuthority
    from chargenet.ports.faults import AlertPublisher, FaultStore
    from chargenet.ports.messaging import ChargerChannel, Deduplicator, PendingCalls
    from chargenet.ports.registry import ChargerRegistry, ChargerView, ConnectorLink
    from chargenet.ports.sessions import SessionStore
    from chargenet.ports.tags_tariffs import TagDirectory, TariffBook

    # Each fake stands in for a port (structurally): `make lint` fails here when they part ways.
    def _fakes_fit_their_ports() -> None:
        _registry: ChargerRegistry = InMemoryRegistry()
        _sessions: SessionStore = InMemorySessionStore()
        _tags: TagDirectory = InMemoryTags()
        _tariffs: TariffBook = InMemoryTariffs()
        _pending: PendingCalls = InMemoryPendingCalls()
        _authority: CertificateAuthority = FakeCertificateAuthority()
        _channel: ChargerChannel = RecordingChannel()
        _deduplicator: Deduplicator = DictDeduplicator()
        _faults: FaultStore = InMemoryFaultStore()
        _publisher: AlertPublisher = RecordingPublisher()
