"""OCPP-J 1.6 frames in and out: parse, validate against the official schemas, answer.

The `ocpp` package provides the frame types and the JSON schemas; this module adds
what a backend behind an at-least-once pipe needs on top: a size limit, a reply to
every frame that can be answered (message id "-1" when none can be read), and the
OCPP 1.6 spellings of the error codes (the package uses the 2.0 ones).
"""

from __future__ import annotations

import json
from typing import Any

from jsonschema.exceptions import ValidationError as SchemaValidationError
from ocpp import exceptions as ocpp_errors
from ocpp.messages import Call, CallError, CallResult, get_validator, unpack

OCPP_VERSION = "1.6"
UNKNOWN_MESSAGE_ID = "-1"
MAX_MESSAGE_ID_LENGTH = 36

Frame = Call | CallResult | CallError


class FrameRejected(Exception):
    """A frame that cannot be applied; `reply` is the CALLERROR to send back."""

    def __init__(self, message_id: str, code: str, description: str) -> None:
        super().__init__(f"{code}: {description}")
        self.message_id = message_id
        self.code = code
        self.description = description

    @property
    def reply(self) -> str:
        return call_error(self.message_id, self.code, self.description)


# jsonschema keyword -> OCPP 1.6 error code (section 4.2.3 of OCPP-J 1.6).
_SCHEMA_ERROR_CODES = {
    "type": "TypeConstraintViolation",
    "required": "OccurenceConstraintViolation",
    "minItems": "OccurenceConstraintViolation",
    "maxItems": "OccurenceConstraintViolation",
    "enum": "PropertyConstraintViolation",
    "maxLength": "PropertyConstraintViolation",
    "minLength": "PropertyConstraintViolation",
    "minimum": "PropertyConstraintViolation",
    "maximum": "PropertyConstraintViolation",
    "pattern": "PropertyConstraintViolation",
    "format": "PropertyConstraintViolation",
}
_V16_SPELLING = {
    "FormatViolation": "FormationViolation",
    "OccurrenceConstraintViolation": "OccurenceConstraintViolation",
}


def call_error(message_id: str, code: str, description: str, details: dict[str, Any] | None = None) -> str:
    return json.dumps([4, message_id, code, description[:255], details or {}], separators=(",", ":"))


def call_result(message_id: str, payload: dict[str, Any]) -> str:
    return json.dumps([3, message_id, payload], separators=(",", ":"))


def call(message_id: str, action: str, payload: dict[str, Any]) -> str:
    return json.dumps([2, message_id, action, payload], separators=(",", ":"))


def _peek_message_id(raw: bytes) -> str:
    """Best effort: the message id of a frame we are about to refuse, for the reply."""
    try:
        frame = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return UNKNOWN_MESSAGE_ID
    if isinstance(frame, list) and len(frame) > 1 and isinstance(frame[1], str):
        return frame[1][:MAX_MESSAGE_ID_LENGTH]
    return UNKNOWN_MESSAGE_ID


def decode(raw: bytes, *, max_bytes: int) -> Frame:
    """Parse one frame; raise FrameRejected with the right 1.6 error code."""
    if len(raw) > max_bytes:
        raise FrameRejected(
            _peek_message_id(raw), "GenericError", f"frame of {len(raw)} bytes exceeds {max_bytes}"
        )
    try:
        frame = unpack(raw)
    except ocpp_errors.OCPPError as exc:
        code = _V16_SPELLING.get(exc.code, exc.code)
        raise FrameRejected(_peek_message_id(raw), code, _cause(exc)) from exc
    message_id = frame.unique_id
    if not isinstance(message_id, str) or not 0 < len(message_id) <= MAX_MESSAGE_ID_LENGTH:
        raise FrameRejected(
            UNKNOWN_MESSAGE_ID, "ProtocolError", "message id must be a string of 1-36 characters"
        )
    if isinstance(frame, Call) and not (isinstance(frame.action, str) and isinstance(frame.payload, dict)):
        raise FrameRejected(
            message_id, "FormationViolation", "a CALL needs an action name and an object payload"
        )
    return frame


def _cause(exc: ocpp_errors.OCPPError) -> str:
    cause = (exc.details or {}).get("cause") if isinstance(exc.details, dict) else None
    return str(cause or exc.description)


def validate(message_type_id: int, action: str, payload: dict[str, Any], message_id: str) -> None:
    """Check a payload against the official OCPP 1.6 JSON schema for its action."""
    try:
        validator = get_validator(message_type_id, action, OCPP_VERSION)
    except (OSError, ValueError) as exc:
        raise FrameRejected(message_id, "NotImplemented", f"unknown action {action!r}") from exc
    error = next(iter(sorted(validator.iter_errors(payload), key=lambda e: e.path)), None)
    if error is not None:
        raise FrameRejected(message_id, _code_for(error), _describe(error))


def _code_for(error: SchemaValidationError) -> str:
    return _SCHEMA_ERROR_CODES.get(str(error.validator), "FormationViolation")


def _describe(error: SchemaValidationError) -> str:
    where = "/".join(str(p) for p in error.absolute_path) or "payload"
    return f"{where}: {error.message}"
