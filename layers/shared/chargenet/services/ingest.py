"""One OCPP frame from one charger, as the IoT rule delivers it: check, apply once, answer."""

from __future__ import annotations

import base64
import binascii
import hashlib
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from functools import partial
from typing import Any

from aws_lambda_powertools import Logger
from ocpp.messages import Call, CallError, CallResult, MessageType
from pydantic import BaseModel, Field, ValidationError

from chargenet.domain.charger_ids import CHARGER_ID_PATTERN
from chargenet.domain.clock import from_epoch_ms
from chargenet.ocpp import codec
from chargenet.ocpp.actions import Action
from chargenet.ocpp.router import CallContext, CallRefused, Router
from chargenet.ocpp.versions import OcppVersion
from chargenet.ports.certificates import CertificateAuthority
from chargenet.ports.errors import is_unavailable
from chargenet.ports.faults import FaultMonitor
from chargenet.ports.messaging import ChargerChannel, Deduplicator, PendingCalls
from chargenet.ports.registry import ChargerRegistry, ChargerView
from chargenet.ports.sessions import SessionStore
from chargenet.ports.tags_tariffs import TagDirectory, TariffBook
from chargenet.services.ocpp.certificate_calls import certificate_signed_message_id
from chargenet.services.ocpp.context import CallDeps
from chargenet.services.ocpp.routes import router_for

# last_seen_at is read by the offline check (fault_rules.offline_check: silent past two heartbeat
# intervals and a slack) and shown to operators (to the minute). Written only once it is half a
# heartbeat interval old, the stored time lags the last frame by less than that: a charger on
# time never looks silent, and readings every minute no longer cost a write each. Never more
# often than once a minute (short test intervals).
SEEN_WRITE_INTERVAL = timedelta(seconds=60)
# What a handler raises is either the frame's fault or the infrastructure's. The infrastructure's
# (a port's StoreUnavailable, see ports.errors.is_unavailable) propagates: the invocation fails
# and Lambda retries it (twice, then the dead-letter queue), by when DynamoDB is usually back.
# Anything else is answered InternalError, because a retry would fail the same way and the
# charger, left without a reply, would resend forever. Input is bounded before a handler sees it
# (codec: size, depth, integers; models: timestamps, readings), so DynamoDB never refuses it as
# data: a store that fails is an outage or throttling.

# A child of the function's Powertools logger: its records carry the function's keys.
logger = Logger(child=True)


class IngestEvent(BaseModel):
    """What the ingest rule's SQL selects (see OcppIngestRule in template.yaml)."""

    charger_id: str = Field(pattern=CHARGER_ID_PATTERN)
    client_id: str | None = None
    # principal(): the id of the certificate the publishing connection was made with (the SHA-256
    # of its DER, IoT's certificate id). None from an event made before the rule selected it:
    # such frames are processed, but nothing that needs proof of the certificate is accepted.
    # Not pattern-checked: an unexpected form must fail the certificate checks closed, not every frame.
    principal: str | None = Field(default=None, max_length=256)
    payload: str  # base64 of the raw MQTT payload
    received_at: int  # ms since epoch, IoT's timestamp()
    # The rule the frame came through says it (design: the version travels in the topic);
    # events from before the 2.0.1 rule carry none, and were 1.6.
    ocpp_version: OcppVersion = OcppVersion.V16


class Outcome(StrEnum):
    ANSWERED = "answered"
    REFUSED = "refused"  # answered with a CALLERROR
    DUPLICATE_IN_FLIGHT = "duplicate_in_flight"
    RESULT_MATCHED = "result_matched"
    RESULT_UNMATCHED = "result_unmatched"
    UNKNOWN_CHARGER = "unknown_charger"
    CLIENT_MISMATCH = "client_mismatch"
    REVOKED = "revoked"  # a CALL answered SecurityError, anything else dropped unrecorded


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
    certificates: CertificateAuthority

    def handle(self, event: IngestEvent) -> Outcome:
        if event.client_id is not None and event.client_id != event.charger_id:
            return Outcome.CLIENT_MISMATCH
        view = self.registry.view(event.charger_id)
        if view is None:
            return Outcome.UNKNOWN_CHARGER
        charger = view.charger
        if charger.revoked_at is not None:
            return self._refuse_revoked(event)
        received_at = from_epoch_ms(event.received_at)
        seen_write_interval = max(
            SEEN_WRITE_INTERVAL, timedelta(seconds=self.settings.heartbeat_interval_s / 2)
        )
        if charger.last_seen_at is None or received_at - charger.last_seen_at >= seen_write_interval:
            self.registry.record_seen(event.charger_id, received_at)

        raw = _decode_base64(event.payload)
        version = event.ocpp_version
        try:
            frame = codec.decode(raw, max_bytes=self.settings.max_frame_bytes, version=version)
        except codec.FrameRejected as rejected:
            return self._refuse(event.charger_id, rejected)
        if isinstance(frame, Call):
            return self._answer_call(view, frame, raw, received_at, event.principal, version)
        return self._record_answer(event.charger_id, frame, received_at, version)

    def _refuse_revoked(self, event: IngestEvent) -> Outcome:
        """Revocation is absolute, whichever path the frame took (its own link, a gateway): before
        the idempotency cache, so not even an answer stored earlier goes out, and no handler runs,
        so no certificate is signed or delivered. A CALLRESULT or CALLERROR cannot be refused in
        OCPP: it is dropped, and the pending call it answers stays unanswered."""
        try:
            frame = codec.decode(
                _decode_base64(event.payload),
                max_bytes=self.settings.max_frame_bytes,
                version=event.ocpp_version,
            )
        except codec.FrameRejected as rejected:
            return self._refuse(event.charger_id, rejected)
        if isinstance(frame, Call):
            refusal = codec.FrameRejected(
                frame.unique_id, "SecurityError", "this charger is revoked", action=frame.action
            )
            self.channel.send(event.charger_id, refusal.reply)
        return Outcome.REVOKED  # logged as a rejection by the function

    def _answer_call(
        self,
        view: ChargerView,
        frame: Call,
        raw: bytes,
        received_at: datetime,
        principal: str | None,
        version: OcppVersion,
    ) -> Outcome:
        charger_id = view.charger.charger_id
        router = router_for(version)
        apply = partial(self._apply, view, frame, received_at, principal, version, router)
        try:
            reply = apply() if router.replay_safe(frame.action) else self._once(charger_id, frame, raw, apply)
        except codec.FrameRejected as rejected:
            # A refusal is not stored: it changed nothing, so a copy is simply refused again.
            return self._refuse(charger_id, rejected)
        if reply is None:
            return Outcome.DUPLICATE_IN_FLIGHT
        self.channel.send(charger_id, reply)
        if frame.action == Action.sign_certificate:
            self._deliver_signed_certificate(charger_id, frame.unique_id)
        return Outcome.ANSWERED

    def _once(self, charger_id: str, frame: Call, raw: bytes, apply: Callable[[], str]) -> str | None:
        """The reply cache (a conditional put and an update per CALL), for the actions whose
        handlers are not replay safe by construction (see `ocpp.router.on`)."""
        # The payload hash is part of the key so that a charger reusing a message id
        # after a reboot (some restart their counters) is not answered from the cache.
        key = f"{charger_id}#{frame.unique_id}#{hashlib.sha256(raw).hexdigest()[:32]}"
        return self.dedupe.once(key, apply)

    def _deliver_signed_certificate(self, charger_id: str, sign_message_id: str) -> None:
        """CertificateSigned after the SignCertificate reply, as OCPP orders them; a repeated
        request gets it again until the charger has answered it."""
        message_id = certificate_signed_message_id(charger_id, sign_message_id)
        signed = self.pending.get(charger_id, message_id)
        if signed is not None and signed.outcome is None:
            self.channel.send(charger_id, codec.call(message_id, signed.action, signed.payload))

    def _refuse(self, charger_id: str, rejected: codec.FrameRejected) -> Outcome:
        # Never the payload or the description: they can hold idTags, passwords, certificates.
        logger.warning(
            "frame refused",
            extra={
                "charger_id": charger_id,
                "message_id": rejected.message_id,
                "action": rejected.action,
                "error_code": rejected.code,
                "field": rejected.field,
            },
        )
        self.channel.send(charger_id, rejected.reply)
        return Outcome.REFUSED

    def _apply(
        self,
        view: ChargerView,
        frame: Call,
        received_at: datetime,
        principal: str | None,
        version: OcppVersion,
        router: Router[CallDeps],
    ) -> str:
        """The CALLRESULT for a CALL, or FrameRejected with the CALLERROR."""
        charger_id = view.charger.charger_id
        if not router.handles(frame.action):
            raise _unhandled(frame, version)
        codec.validate(MessageType.Call, frame.action, frame.payload, frame.unique_id, version)
        deps = CallDeps(
            self.registry,
            self.sessions,
            self.tags,
            self.tariffs,
            self.faults,
            self.settings.heartbeat_interval_s,
            self.clock,
            self.certificates,
            self.pending,
            view,
        )
        ctx = CallContext(charger_id, frame.unique_id, received_at, deps, principal)
        try:
            return codec.call_result(frame.unique_id, router.dispatch(ctx, frame.action, frame.payload))
        except CallRefused as refused:
            raise codec.FrameRejected(
                frame.unique_id, refused.code, refused.description, action=frame.action
            ) from refused
        except ValidationError as invalid:
            # Schema-valid but not meaningful (e.g. an impossible timestamp).
            field, rule = _first_error(invalid)
            raise codec.FrameRejected(
                frame.unique_id,
                "PropertyConstraintViolation",
                f"{field}: {rule}",
                field=field,
                action=frame.action,
            ) from invalid
        except Exception as failure:
            if is_unavailable(failure):
                raise
            _log_failure(charger_id, frame, failure)
            raise codec.FrameRejected(
                frame.unique_id,
                "InternalError",
                f"{frame.action} could not be processed",
                action=frame.action,
            ) from failure

    def _record_answer(
        self, charger_id: str, frame: CallResult | CallError, received_at: datetime, version: OcppVersion
    ) -> Outcome:
        action = self.pending.action_of(charger_id, frame.unique_id)
        if action is None:
            return Outcome.RESULT_UNMATCHED
        if isinstance(frame, CallResult):
            outcome: dict[str, Any] = {"result": frame.payload}
            try:
                codec.validate(MessageType.CallResult, action, frame.payload, frame.unique_id, version)
            except codec.FrameRejected as invalid:
                outcome["invalid"] = invalid.description
        else:
            outcome = {"error": {"code": frame.error_code, "description": frame.error_description}}
        self.pending.resolve(charger_id, frame.unique_id, outcome, received_at)
        return Outcome.RESULT_MATCHED


def _unhandled(frame: Call, version: OcppVersion) -> codec.FrameRejected:
    """OCPP-J 2.0.1 section 4.3 tells an action the version defines but the receiver does not
    support (NotSupported) from one it does not know (NotImplemented); 1.6 answers NotImplemented
    to both, as it always has here."""
    if version is OcppVersion.V201 and codec.is_defined(frame.action, version):
        code, what = "NotSupported", "is not supported"
    else:
        code, what = "NotImplemented", "is not implemented"
    return codec.FrameRejected(frame.unique_id, code, f"{frame.action} {what}", action=frame.action)


def _decode_base64(payload: str) -> bytes:
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        # Not what the rule produces; keep the bytes so the codec refuses them visibly.
        return payload.encode()


def _first_error(invalid: ValidationError) -> tuple[str, str]:
    """Where and what was wrong, never the input itself (str(invalid) would quote it)."""
    error = invalid.errors(include_input=False, include_url=False)[0]
    return "/".join(str(p) for p in error["loc"]) or "payload", error["msg"]


def _log_failure(charger_id: str, frame: Call, failure: Exception) -> None:
    # The type and the line, not the message: an exception's text can quote the payload.
    origin = traceback.extract_tb(failure.__traceback__)[-1]
    logger.error(
        "handler failed",
        extra={
            "charger_id": charger_id,
            "message_id": frame.unique_id,
            "action": frame.action,
            "error_type": type(failure).__name__,
            "raised_at": f"{origin.filename}:{origin.lineno} in {origin.name}",
        },
    )
