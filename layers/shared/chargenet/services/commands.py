"""Commands to chargers (OCPP CALLs from the backend) in the charger's own version, correlated with
their answers.

A charger is written to in the OCPP version its last BootNotification came in
(`Charger.ocpp_version`; none recorded means 1.6: it booted before versions were recorded). A
command is checked against that version's commands and schema, recorded as a pending call, and
published to the charger's out topic. A command of the other version is refused, naming the one
that does its job. The ingest function matches the charger's CALLRESULT or CALLERROR to it; a
command nobody answers in time is recorded as a timeout, and an answer arriving after that is not
applied.

The backend's own calls say what they want done, and the charger's version decides the message:
`start_remotely` (RemoteStartTransaction / RequestStartTransaction), `stop_remotely`
(RemoteStopTransaction / RequestStopTransaction), `request_log` (GetDiagnostics / GetLog).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from chargenet.domain.locations import redacted_location
from chargenet.domain.models import Charger, PendingCall, SessionRecord
from chargenet.ocpp import codec
from chargenet.ocpp.codec import MessageType
from chargenet.ocpp.versions import OcppVersion
from chargenet.ports.messaging import ChargerChannel, PendingCalls
from chargenet.ports.registry import ChargerRegistry

# What the backend may ask of a charger, per version (1.6: Core, Remote Trigger, Firmware
# diagnostics; 2.0.1: the same jobs, the device model and the transaction queries). CertificateSigned
# is the backend's own answer to a SignCertificate, never an operator's command.
COMMANDS: dict[OcppVersion, frozenset[str]] = {
    OcppVersion.V16: frozenset(
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
    ),
    OcppVersion.V201: frozenset(
        {
            "Reset",
            "UnlockConnector",
            "ChangeAvailability",
            "TriggerMessage",
            "GetVariables",
            "SetVariables",
            "GetBaseReport",
            "GetLog",
            "ClearCache",
            "RequestStartTransaction",
            "RequestStopTransaction",
            "GetTransactionStatus",
            "CostUpdated",
            "DataTransfer",
            "UpdateFirmware",
        }
    ),
}
# For a charger of the key's version: the other version's command -> the one that does its job.
INSTEAD: dict[OcppVersion, dict[str, str]] = {
    OcppVersion.V201: {
        "GetConfiguration": "GetVariables (or GetBaseReport for everything)",
        "ChangeConfiguration": "SetVariables",
        "GetDiagnostics": "GetLog",
        "RemoteStartTransaction": "RequestStartTransaction",
        "RemoteStopTransaction": "RequestStopTransaction",
    },
    OcppVersion.V16: {
        "GetVariables": "GetConfiguration",
        "GetBaseReport": "GetConfiguration",
        "SetVariables": "ChangeConfiguration",
        "GetLog": "GetDiagnostics",
        "RequestStartTransaction": "RemoteStartTransaction",
        "RequestStopTransaction": "RemoteStopTransaction",
    },
}
# 2.0.1 request ids (remoteStartId, GetLog's requestId) are integers; chargers keep them in 32 bits.
MAX_REQUEST_ID = 2**31 - 1


class CommandRefused(ValueError):
    """Not sent: unknown charger, a command its version does not have, or a payload the schema refuses."""


@dataclass(frozen=True)
class ChargerCommands:
    registry: ChargerRegistry
    pending: PendingCalls
    channel: ChargerChannel
    clock: Callable[[], datetime]
    new_message_id: Callable[[], str] = field(default=lambda: str(uuid.uuid4()))

    def send(self, charger_id: str, action: str, payload: dict[str, Any]) -> PendingCall:
        """An operator's command, in the charger's version."""
        version = speaks(self._charger(charger_id))
        _check_command(charger_id, version, action)
        return self._sent(charger_id, version, action, payload)

    def start_remotely(
        self, charger_id: str, connector_id: int, id_tag: str, remote_start_id: int
    ) -> PendingCall:
        """Start a transaction on the connector for `id_tag` (the pay link's start)."""
        version = speaks(self._charger(charger_id))
        if version is OcppVersion.V201:
            start = {
                # Central: an id the CSMS generated (the payment's tag), not a card the driver holds.
                "idToken": {"idToken": id_tag, "type": "Central"},
                "remoteStartId": remote_start_id,
                "evseId": connector_id,
            }
            return self._sent(charger_id, version, "RequestStartTransaction", start)
        return self._sent(
            charger_id, version, "RemoteStartTransaction", {"connectorId": connector_id, "idTag": id_tag}
        )

    def stop_remotely(self, session: SessionRecord) -> PendingCall:
        """Stop the session's transaction, by the id its charger knows it by."""
        version = speaks(self._charger(session.charger_id))
        started_in = OcppVersion.V16 if session.charger_transaction_id is None else OcppVersion.V201
        if version is not started_in:
            raise CommandRefused(
                f"session {session.session_id} started over {_named(started_in)} and "
                f"{session.charger_id} now speaks {_named(version)}: it does not know that transaction"
            )
        if session.charger_transaction_id is not None:
            stop = {"transactionId": session.charger_transaction_id}
            return self._sent(session.charger_id, version, "RequestStopTransaction", stop)
        stop_16 = {"transactionId": session.transaction_id}
        return self._sent(session.charger_id, version, "RemoteStopTransaction", stop_16)

    def request_log(self, charger_id: str, location: str, request_id: int) -> PendingCall:
        """Ask the charger to upload its diagnostics log to `location` (an HTTP PUT URL)."""
        version = speaks(self._charger(charger_id))
        if version is OcppVersion.V201:
            get_log = {
                "logType": "DiagnosticsLog",
                "requestId": request_id,
                "log": {"remoteLocation": location},
            }
            return self._sent(charger_id, version, "GetLog", get_log)
        return self._sent(charger_id, version, "GetDiagnostics", {"location": location})

    def time_out(self, charger_id: str, message_id: str) -> PendingCall | None:
        """Record that no answer came; returns the call as it stands (answered calls stay answered)."""
        self.pending.resolve(charger_id, message_id, {"timeout": True}, self.clock())
        return self.pending.get(charger_id, message_id)

    def _charger(self, charger_id: str) -> Charger:
        charger = self.registry.get(charger_id)
        if charger is None:
            raise CommandRefused(f"no charger {charger_id}")
        return charger

    def _sent(
        self, charger_id: str, version: OcppVersion, action: str, payload: dict[str, Any]
    ) -> PendingCall:
        message_id = self.new_message_id()
        try:
            codec.validate(MessageType.Call, action, payload, message_id, version=version)
        except codec.FrameRejected as invalid:
            raise CommandRefused(
                f"{action} payload refused by the {_named(version)} schema: {invalid.description}"
            ) from invalid
        sent_at = self.clock()
        kept = recorded_payload(payload)
        # Recorded before it is sent: an answer can never arrive for a call we do not know.
        self.pending.add(charger_id, message_id, action, kept, sent_at)
        self.channel.send(charger_id, codec.call(message_id, action, payload))
        return PendingCall(
            charger_id=charger_id, message_id=message_id, action=action, payload=kept, sent_at=sent_at
        )


def speaks(charger: Charger) -> OcppVersion:
    """The version the backend writes to the charger in: its last boot's (none recorded: 1.6)."""
    return OcppVersion(charger.ocpp_version) if charger.ocpp_version else OcppVersion.V16


def request_id(seed: str) -> int:
    """A 2.0.1 request id derived from `seed` (a payment, an upload): the same on every retry."""
    return int.from_bytes(hashlib.sha256(seed.encode()).digest()[:4]) & MAX_REQUEST_ID


def _check_command(charger_id: str, version: OcppVersion, action: str) -> None:
    if action in COMMANDS[version]:
        return
    instead = INSTEAD[version].get(action)
    if instead is not None:
        raise CommandRefused(f"{charger_id} speaks {_named(version)}: send {instead} instead of {action}")
    (other,) = set(OcppVersion) - {version}
    if action in COMMANDS[other]:
        raise CommandRefused(
            f"{charger_id} speaks {_named(version)}: {action} is an {_named(other)} command "
            f"with no {_named(version)} equivalent"
        )
    raise CommandRefused(
        f"{action} is not a command {_named(version)} chargers accept "
        f"(one of: {', '.join(sorted(COMMANDS[version]))})"
    )


def _named(version: OcppVersion) -> str:
    return f"OCPP {version.schemas}"


def recorded_payload(payload: dict[str, Any]) -> dict[str, Any]:
    """What the command history keeps of a payload: the charger gets its upload or download URL
    whole (1.6's `location`, 2.0.1's `log.remoteLocation` and `firmware.location`), the history
    (and whatever prints it) never its credentials or a pre-signed URL's signature."""
    kept = _without_credentials(payload, "location")
    for part, name in (("log", "remoteLocation"), ("firmware", "location")):
        inner = kept.get(part)
        if isinstance(inner, dict):
            kept = {**kept, part: _without_credentials(inner, name)}
    return kept


def _without_credentials(payload: dict[str, Any], name: str) -> dict[str, Any]:
    location = payload.get(name)
    if not isinstance(location, str):
        return payload
    return {**payload, name: redacted_location(location)}
