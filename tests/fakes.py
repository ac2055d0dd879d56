"""In-memory stand-ins for the domain's ports, for unit tests only."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from chargenet.domain.models import BootNotification, Charger, ConnectorStatus, PresenceEvent


class InMemoryRegistry:
    def __init__(self) -> None:
        self.chargers: dict[str, Charger] = {}
        self.statuses: dict[tuple[str, int], ConnectorStatus] = {}
        self.seen_writes = 0

    def add(self, charger_id: str, at: datetime, site_id: str = "") -> None:
        self.chargers[charger_id] = Charger(charger_id=charger_id, site_id=site_id, registered_at=at)

    def _update(self, charger_id: str, **changes: object) -> None:
        self.chargers[charger_id] = self.chargers[charger_id].model_copy(update=changes)

    def get(self, charger_id: str) -> Charger | None:
        return self.chargers.get(charger_id)

    def record_boot(self, charger_id: str, boot: BootNotification, at: datetime) -> None:
        self._update(
            charger_id,
            vendor=boot.charge_point_vendor,
            model=boot.charge_point_model,
            serial_number=boot.charge_point_serial_number or boot.charge_box_serial_number,
            firmware_version=boot.firmware_version,
            last_boot_at=at,
            last_seen_at=at,
        )

    def record_seen(self, charger_id: str, at: datetime) -> None:
        self.seen_writes += 1
        last = self.chargers[charger_id].last_seen_at
        if last is None or last < at:
            self._update(charger_id, last_seen_at=at)

    def record_connector_status(self, status: ConnectorStatus) -> bool:
        key = (status.charger_id, status.connector_id)
        current = self.statuses.get(key)
        if current is not None and current.status_at > status.status_at:
            return False
        self.statuses[key] = status
        return True

    def connectors(self, charger_id: str) -> list[ConnectorStatus]:
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
            disconnect_reason=event.disconnect_reason,
        )
        return True


class InMemoryPendingCalls:
    def __init__(self) -> None:
        self.calls: dict[tuple[str, str], dict] = {}

    def add(self, charger_id: str, message_id: str, action: str, payload: dict, at: datetime) -> None:
        self.calls[(charger_id, message_id)] = {"action": action, "payload": payload, "sent_at": at}

    def action_of(self, charger_id: str, message_id: str) -> str | None:
        call = self.calls.get((charger_id, message_id))
        return call["action"] if call else None

    def resolve(self, charger_id: str, message_id: str, outcome: dict, at: datetime) -> bool:
        call = self.calls.get((charger_id, message_id))
        if call is None or "outcome" in call:
            return False
        call.update(outcome=outcome, answered_at=at)
        return True


class RecordingChannel:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    def send(self, charger_id: str, frame: str) -> None:
        self.sent.append((charger_id, frame))


class DictDeduplicator:
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
