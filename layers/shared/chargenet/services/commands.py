"""Operator commands to chargers (OCPP 1.6J CALLs from the backend), correlated with their answers.

A command is validated against the official schema, recorded as a pending call, and
published to the charger's out topic. The ingest function matches the charger's
CALLRESULT or CALLERROR to it; a command nobody answers in time is recorded as a
timeout, and an answer arriving after that is not applied.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from chargenet.domain.locations import redacted_location
from chargenet.domain.models import PendingCall
from chargenet.ocpp import codec
from chargenet.ocpp.codec import MessageType
from chargenet.ports.messaging import ChargerChannel, PendingCalls
from chargenet.ports.registry import ChargerRegistry

# What the backend may ask of a charger (OCPP 1.6 Core, Remote Trigger, Firmware diagnostics).
COMMANDS = frozenset(
    {
        "Reset",
        "UnlockConnector",
        "ChangeAvailability",
        "TriggerMessage",
        "GetConfiguration",
        "ChangeConfiguration",
        "GetDiagnostics",
        "ClearCache",
        "RemoteStartTransaction",
        "RemoteStopTransaction",
        "DataTransfer",
        "UpdateFirmware",
    }
)


class CommandRefused(ValueError):
    """Not sent: unknown charger, unknown command, or a payload the schema refuses."""


@dataclass(frozen=True)
class ChargerCommands:
    registry: ChargerRegistry
    pending: PendingCalls
    channel: ChargerChannel
    clock: Callable[[], datetime]
    new_message_id: Callable[[], str] = field(default=lambda: str(uuid.uuid4()))

    def send(self, charger_id: str, action: str, payload: dict[str, Any]) -> PendingCall:
        if action not in COMMANDS:
            raise CommandRefused(
                f"{action} is not a command chargers accept (one of: {', '.join(sorted(COMMANDS))})"
            )
        if self.registry.get(charger_id) is None:
            raise CommandRefused(f"no charger {charger_id}")
        message_id = self.new_message_id()
        try:
            codec.validate(MessageType.Call, action, payload, message_id)
        except codec.FrameRejected as invalid:
            raise CommandRefused(f"{action} payload refused: {invalid.description}") from invalid
        sent_at = self.clock()
        kept = recorded_payload(payload)
        # Recorded before it is sent: an answer can never arrive for a call we do not know.
        self.pending.add(charger_id, message_id, action, kept, sent_at)
        self.channel.send(charger_id, codec.call(message_id, action, payload))
        return PendingCall(
            charger_id=charger_id, message_id=message_id, action=action, payload=kept, sent_at=sent_at
        )

    def time_out(self, charger_id: str, message_id: str) -> PendingCall | None:
        """Record that no answer came; returns the call as it stands (answered calls stay answered)."""
        self.pending.resolve(charger_id, message_id, {"timeout": True}, self.clock())
        return self.pending.get(charger_id, message_id)


def recorded_payload(payload: dict[str, Any]) -> dict[str, Any]:
    """What the command history keeps of a payload: the charger gets the location whole, the
    history (and whatever prints it) never its credentials or a pre-signed URL's signature."""
    location = payload.get("location")
    if not isinstance(location, str):
        return payload
    return {**payload, "location": redacted_location(location)}
