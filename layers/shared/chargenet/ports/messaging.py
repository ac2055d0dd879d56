"""OCPP messages between the backend and its chargers: the calls it sent, the channel, once-only replies."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

from chargenet.domain.models import PendingCall


class PendingCalls(Protocol):
    """CALLs the backend sent to chargers, awaiting their CALLRESULT or CALLERROR."""

    def add(
        self, charger_id: str, message_id: str, action: str, payload: dict[str, Any], at: datetime
    ) -> None: ...

    def action_of(self, charger_id: str, message_id: str) -> str | None: ...

    def resolve(self, charger_id: str, message_id: str, outcome: dict[str, Any], at: datetime) -> bool:
        """Record the charger's answer once; False when unknown or already answered."""
        ...

    def get(self, charger_id: str, message_id: str) -> PendingCall | None: ...

    def of_charger(self, charger_id: str) -> list[PendingCall]: ...


class CommandHistory(Protocol):
    """The operator API's view of the calls sent to one charger, a page (one Query) at a time."""

    def page_of_charger(
        self, charger_id: str, limit: int, start: dict[str, Any] | None
    ) -> tuple[list[PendingCall], dict[str, Any] | None]: ...


class ChargerChannel(Protocol):
    """Sends a frame to one charger (IoT Data publish to its out topic)."""

    def send(self, charger_id: str, frame: str) -> None: ...


class Deduplicator(Protocol):
    def once(self, key: str, compute: Callable[[], str]) -> str | None:
        """Run `compute` once per key and return its stored result to every copy.

        None means another copy with this key is being processed right now.
        """
        ...
