"""The fake backend's answers and records, shared by the MQTT CloudBackend and the in-process FakeLink.

It answers a repeated message id with the reply it gave the first time and processes it
only once (what the real ingest must do under at-least-once delivery), while `processed`
keeps what it acted on, per charger, in arrival order.

It answers OCPP 2.0.1 chargers too (the messages whose names both versions share answer
either's payload): TransactionEvents are kept per transactionId in arrival order (`events`);
it never numbers a 2.0.1 transaction, as 2.0.1 chargers name their own.
"""

from __future__ import annotations

import datetime as dt
import itertools
import threading
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Processed:
    unique_id: str
    action: str
    payload: dict[str, Any]


@dataclass
class Transaction:
    charger_id: str
    connector_id: int
    id_tag: str
    meter_start: int
    meter_stop: int | None = None
    meter_values: list[dict[str, Any]] = field(default_factory=list)


class FakeCentralSystem:
    def __init__(self) -> None:
        # Callers may answer from another thread (awscrt's) than the test reads from.
        self.lock = threading.RLock()
        self.boot_replies: dict[str, list[dict[str, Any]]] = {}
        self.heartbeat_interval = 300
        self.blocked_tags: set[str] = set()
        # Actions answered with a CALLERROR InternalError (and not processed).
        self.failing_actions: set[str] = set()
        self.transactions: dict[int, Transaction] = {}
        self.processed: dict[str, list[Processed]] = {}
        self._answered: dict[tuple[str, str], list[Any]] = {}
        self.events: dict[str, list[dict[str, Any]]] = {}
        self._transaction_ids = itertools.count(1)

    def answer(self, charger_id: str, message: list[Any]) -> list[Any]:
        """The reply frame to a CALL from `charger_id`."""
        _, unique_id, action, payload = message
        with self.lock:
            key = (charger_id, unique_id)
            if key not in self._answered:
                self._answered[key] = self._process(charger_id, unique_id, action, payload)
            return self._answered[key]

    def calls(self, charger_id: str, action: str) -> list[dict[str, Any]]:
        with self.lock:
            return [p.payload for p in self.processed.get(charger_id, []) if p.action == action]

    def actions(self, charger_id: str) -> list[str]:
        with self.lock:
            return [p.action for p in self.processed.get(charger_id, [])]

    def _process(self, charger_id: str, unique_id: str, action: str, payload: dict[str, Any]) -> list[Any]:
        if action in self.failing_actions:
            return [4, unique_id, "InternalError", f"{action} failed on purpose", {}]
        handler = getattr(self, f"_on_{action}", None)
        if handler is None:
            return [4, unique_id, "NotImplemented", f"{action} is not handled by this backend", {}]
        self.processed.setdefault(charger_id, []).append(Processed(unique_id, action, payload))
        return [3, unique_id, handler(charger_id, payload)]

    def _on_BootNotification(self, charger_id: str, payload: dict[str, Any]) -> dict[str, Any]:
        queued = self.boot_replies.get(charger_id)
        reply = queued.pop(0) if queued else {"status": "Accepted", "interval": self.heartbeat_interval}
        return {"currentTime": _now(), **reply}

    def _on_Heartbeat(self, charger_id: str, payload: dict[str, Any]) -> dict[str, Any]:
        return {"currentTime": _now()}

    def _on_StatusNotification(self, charger_id: str, payload: dict[str, Any]) -> dict[str, Any]:
        return {}

    def _on_DiagnosticsStatusNotification(self, charger_id: str, payload: dict[str, Any]) -> dict[str, Any]:
        return {}

    def _on_FirmwareStatusNotification(self, charger_id: str, payload: dict[str, Any]) -> dict[str, Any]:
        return {}

    def _on_Authorize(self, charger_id: str, payload: dict[str, Any]) -> dict[str, Any]:
        if "idToken" in payload:
            return {"idTokenInfo": self._tag_info(payload["idToken"]["idToken"])}
        return {"idTagInfo": self._tag_info(payload["idTag"])}

    def _on_TransactionEvent(self, charger_id: str, payload: dict[str, Any]) -> dict[str, Any]:
        self.events.setdefault(payload["transactionInfo"]["transactionId"], []).append(payload)
        if "idToken" not in payload:
            return {}
        return {"idTokenInfo": self._tag_info(payload["idToken"]["idToken"])}

    def _on_NotifyReport(self, charger_id: str, payload: dict[str, Any]) -> dict[str, Any]:
        return {}

    def _on_NotifyEvent(self, charger_id: str, payload: dict[str, Any]) -> dict[str, Any]:
        return {}

    def _on_LogStatusNotification(self, charger_id: str, payload: dict[str, Any]) -> dict[str, Any]:
        return {}

    def _on_SecurityEventNotification(self, charger_id: str, payload: dict[str, Any]) -> dict[str, Any]:
        return {}

    def _on_StartTransaction(self, charger_id: str, payload: dict[str, Any]) -> dict[str, Any]:
        transaction_id = next(self._transaction_ids)
        self.transactions[transaction_id] = Transaction(
            charger_id, payload["connectorId"], payload["idTag"], payload["meterStart"]
        )
        return {"transactionId": transaction_id, "idTagInfo": self._tag_info(payload["idTag"])}

    def _on_MeterValues(self, charger_id: str, payload: dict[str, Any]) -> dict[str, Any]:
        transaction = self.transactions.get(payload.get("transactionId", -1))
        if transaction is not None:
            transaction.meter_values.extend(payload["meterValue"])
        return {}

    def _on_StopTransaction(self, charger_id: str, payload: dict[str, Any]) -> dict[str, Any]:
        transaction = self.transactions.get(payload["transactionId"])
        if transaction is not None:
            transaction.meter_stop = payload["meterStop"]
        return {"idTagInfo": self._tag_info(payload.get("idTag", ""))}

    def _tag_info(self, id_tag: str) -> dict[str, str]:
        return {"status": "Blocked" if id_tag in self.blocked_tags else "Accepted"}


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
