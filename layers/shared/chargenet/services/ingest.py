"""One OCPP frame from one charger, as the IoT rule delivers it: check, apply once, answer."""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol

from ocpp.messages import Call, CallError, CallResult, MessageType
from pydantic import BaseModel, Field, ValidationError

from chargenet.domain import charger_calls, transaction_calls
from chargenet.domain.clock import from_epoch_ms
from chargenet.domain.ports import (
    ChargerChannel,
    ChargerRegistry,
    FaultMonitor,
    PendingCalls,
    SessionStore,
    TagDirectory,
    TariffBook,
)
from chargenet.domain.routing import CallDeps, router
from chargenet.ocpp import codec
from chargenet.ocpp.router import CallContext

# The modules whose @router.on handlers answer charger CALLs.
HANDLER_MODULES = (charger_calls, transaction_calls)
CHARGER_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
# Writing last_seen on every frame would double the write units for no gain.
SEEN_WRITE_INTERVAL = timedelta(seconds=60)


class IngestEvent(BaseModel):
    """What the ingest rule's SQL selects (see OcppIngestRule in template.yaml)."""

    charger_id: str = Field(pattern=CHARGER_ID_PATTERN)
    client_id: str | None = None
    payload: str  # base64 of the raw MQTT payload
    received_at: int  # ms since epoch, IoT's timestamp()


class Outcome(StrEnum):
    ANSWERED = "answered"
    REFUSED = "refused"  # answered with a CALLERROR
    DUPLICATE_IN_FLIGHT = "duplicate_in_flight"
    RESULT_MATCHED = "result_matched"
    RESULT_UNMATCHED = "result_unmatched"
    UNKNOWN_CHARGER = "unknown_charger"
    CLIENT_MISMATCH = "client_mismatch"


class Deduplicator(Protocol):
    def once(self, key: str, compute: Callable[[], str]) -> str | None:
        """Run `compute` once per key and return its stored result to every copy.

        None means another copy with this key is being processed right now.
        """
        ...


@dataclass(frozen=True)
class IngestSettings:
    heartbeat_interval_s: int
    max_frame_bytes: int


@dataclass(frozen=True)
class OcppIngest:
    registry: ChargerRegistry
    sessions: SessionStore
    tags: TagDirectory
    tariffs: TariffBook
    faults: FaultMonitor
    pending: PendingCalls
    channel: ChargerChannel
    dedupe: Deduplicator
    settings: IngestSettings
    clock: Callable[[], datetime]

    def handle(self, event: IngestEvent) -> Outcome:
        if event.client_id is not None and event.client_id != event.charger_id:
            return Outcome.CLIENT_MISMATCH
        charger = self.registry.get(event.charger_id)
        if charger is None:
            return Outcome.UNKNOWN_CHARGER
        received_at = from_epoch_ms(event.received_at)
        if charger.last_seen_at is None or received_at - charger.last_seen_at >= SEEN_WRITE_INTERVAL:
            self.registry.record_seen(event.charger_id, received_at)

        raw = _decode_base64(event.payload)
        try:
            frame = codec.decode(raw, max_bytes=self.settings.max_frame_bytes)
        except codec.FrameRejected as rejected:
            self.channel.send(event.charger_id, rejected.reply)
            return Outcome.REFUSED
        if isinstance(frame, Call):
            return self._answer_call(event.charger_id, frame, raw, received_at)
        return self._record_answer(event.charger_id, frame, received_at)

    def _answer_call(self, charger_id: str, frame: Call, raw: bytes, received_at: datetime) -> Outcome:
        # The payload hash is part of the key so that a charger reusing a message id
        # after a reboot (some restart their counters) is not answered from the cache.
        key = f"{charger_id}#{frame.unique_id}#{hashlib.sha256(raw).hexdigest()[:32]}"
        reply = self.dedupe.once(key, lambda: self._apply(charger_id, frame, received_at))
        if reply is None:
            return Outcome.DUPLICATE_IN_FLIGHT
        self.channel.send(charger_id, reply)
        return Outcome.REFUSED if reply.startswith("[4,") else Outcome.ANSWERED

    def _apply(self, charger_id: str, frame: Call, received_at: datetime) -> str:
        try:
            if not router.handles(frame.action):
                raise codec.FrameRejected(
                    frame.unique_id, "NotImplemented", f"{frame.action} is not implemented"
                )
            codec.validate(MessageType.Call, frame.action, frame.payload, frame.unique_id)
            deps = CallDeps(
                self.registry,
                self.sessions,
                self.tags,
                self.tariffs,
                self.faults,
                self.settings.heartbeat_interval_s,
                self.clock,
            )
            ctx = CallContext(charger_id, frame.unique_id, received_at, deps)
            return codec.call_result(frame.unique_id, router.dispatch(ctx, frame.action, frame.payload))
        except codec.FrameRejected as rejected:
            return rejected.reply
        except ValidationError as invalid:
            # Schema-valid but not meaningful (e.g. an impossible timestamp).
            return codec.call_error(frame.unique_id, "PropertyConstraintViolation", _first_error(invalid))

    def _record_answer(
        self, charger_id: str, frame: CallResult | CallError, received_at: datetime
    ) -> Outcome:
        action = self.pending.action_of(charger_id, frame.unique_id)
        if action is None:
            return Outcome.RESULT_UNMATCHED
        if isinstance(frame, CallResult):
            outcome: dict = {"result": frame.payload}
            try:
                codec.validate(MessageType.CallResult, action, frame.payload, frame.unique_id)
            except codec.FrameRejected as invalid:
                outcome["invalid"] = invalid.description
        else:
            outcome = {"error": {"code": frame.error_code, "description": frame.error_description}}
        self.pending.resolve(charger_id, frame.unique_id, outcome, received_at)
        return Outcome.RESULT_MATCHED


def _decode_base64(payload: str) -> bytes:
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        # Not what the rule produces; keep the bytes so the codec refuses them visibly.
        return payload.encode()


def _first_error(invalid: ValidationError) -> str:
    error = invalid.errors()[0]
    where = "/".join(str(p) for p in error["loc"]) or "payload"
    return f"{where}: {error['msg']}"
