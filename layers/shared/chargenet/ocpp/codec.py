"""OCPP-J 1.6 frames in and out: parse, validate against the official schemas, answer.

The `ocpp` package provides the frame types and the JSON schemas; this module adds
what a backend behind an at-least-once pipe needs on top: a reply to every frame that
can be answered (message id "-1" when none can be read), the OCPP 1.6 spellings of the
error codes (the package uses the 2.0 ones), and a parser hardened against hostile input.

Every frame is checked before it reaches a schema, in this order (OCPP-J 1.6 4.2.3 codes):

| rule                                                                  | CALLERROR                   |
|-----------------------------------------------------------------------|-----------------------------|
| more than `max_bytes`                                                 | GenericError                |
| not UTF-8; not JSON (NaN/Infinity tokens included); a repeated key in | FormationViolation          |
| an object; arrays and objects nested deeper than MAX_DEPTH            |                             |
| an integer beyond +-MAX_SAFE_INTEGER, a number beyond a double (1e400)| PropertyConstraintViolation |
| not an array                                                          | ProtocolError               |
| message type other than the integers 2, 3, 4                          | PropertyConstraintViolation |
| wrong element count; message id not 1-36 characters without controls | ProtocolError               |
| (answered with id "-1")                                               |                             |
| action not a name; payload or details not an object; error code or    | FormationViolation          |
| description not a string                                              |                             |
| a string with control characters (line breaks only in free text) or   | PropertyConstraintViolation |
| an unpaired surrogate                                                 |                             |

Until the frame parses, the reply echoes its message id only if it plainly leads the frame
(`[2, "<printable ASCII>"`), and "-1" otherwise.

Descriptions name the field and the rule, never the value: a CALLERROR is published and may
be logged, and a value can be an idTag, a password or a certificate.
"""

from __future__ import annotations

import json
import math
import re
from enum import IntEnum
from typing import TYPE_CHECKING, Any, NoReturn, TypeAlias

if TYPE_CHECKING:
    # `ocpp.messages` imports jsonschema (~0.16 baselines of cold start): the frame types and the
    # validators are imported where a frame is decoded or validated, so a function that only might
    # send a command (payments, operator commands) does not load them at its cold start.
    from jsonschema.exceptions import ValidationError as SchemaValidationError
    from ocpp.messages import Call, CallError, CallResult

    Frame: TypeAlias = Call | CallResult | CallError

OCPP_VERSION = "1.6"
UNKNOWN_MESSAGE_ID = "-1"
MAX_MESSAGE_ID_LENGTH = 36
# The deepest 1.6 frames (MeterValues, SetChargingProfile) nest 6 levels, the frame's array included.
MAX_DEPTH = 16
# Beyond this a JSON number cannot round-trip through an IEEE double (RFC 8259 section 6),
# and no OCPP integer (ids, Wh registers, seconds) comes anywhere near it.
MAX_SAFE_INTEGER = 2**53 - 1
# Free text may span lines (a PEM CSR, a vendor's diagnostics); every other string is an
# identifier, an enum, a timestamp or a number, and is one line of printable characters.
FREE_TEXT_FIELDS = frozenset({"info", "techInfo", "data", "csr"})


class MessageType(IntEnum):
    """OCPP-J's message type ids, numbered and named as `ocpp.messages.MessageType`."""

    Call = 2
    CallResult = 3
    CallError = 4


# message type -> elements of its frame
_FRAME_LENGTHS = {MessageType.Call: 4, MessageType.CallResult: 3, MessageType.CallError: 5}
_ACTION_NAME = re.compile(r"[A-Za-z][A-Za-z0-9]{0,63}")
# A string token (escapes included) or a bracket: strings are skipped when counting depth.
_STRING_OR_BRACKET = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]', re.DOTALL)
# Before the frame parses, its id is echoed only when it plainly is one: `[2, "<printable>"`.
_LEADING_MESSAGE_ID = re.compile(rb'\s*\[\s*[234]\s*,\s*"([\x20\x21\x23-\x5b\x5d-\x7e]{1,36})"')
# C0 and C1 controls, DEL, and UTF-16 surrogates (only a lone "\ud800" escape can produce one).
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_CONTROL_IN_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


class FrameRejected(Exception):
    """A frame that cannot be applied; `reply` is the CALLERROR to send back.

    `action` and `field` (where in the payload, when one place is to blame) are known once the
    frame has parsed; like the id and the code they are safe to log, unlike the description.
    """

    def __init__(
        self,
        message_id: str,
        code: str,
        description: str,
        *,
        field: str | None = None,
        action: str | None = None,
    ) -> None:
        super().__init__(f"{code}: {description}")
        self.message_id = message_id
        self.code = code
        self.description = description
        self.field = field
        self.action = action

    @property
    def reply(self) -> str:
        return call_error(self.message_id, self.code, self.description)


class _Unparseable(Exception):
    """Raised from inside json.loads, before any message id is known."""

    def __init__(self, code: str, description: str) -> None:
        super().__init__(description)
        self.code = code
        self.description = description


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
    "multipleOf": "PropertyConstraintViolation",
    "pattern": "PropertyConstraintViolation",
    "format": "PropertyConstraintViolation",
}
# What each keyword demands, in the schema's terms: never the rejected value.
_SCHEMA_RULES = {
    "type": "must be of type {}",
    "enum": "must be one of {}",
    "maxLength": "must be at most {} characters",
    "minLength": "must be at least {} characters",
    "maximum": "must be at most {}",
    "minimum": "must be at least {}",
    "multipleOf": "must be a multiple of {}",
    "minItems": "must have at least {} items",
    "maxItems": "must have at most {} items",
    "pattern": "must match {}",
    "format": "must be a valid {}",
}
# jsonschema's own message for these names properties only, which is what the charger needs.
_SCHEMA_MESSAGES_WITHOUT_VALUES = frozenset({"required", "additionalProperties"})


def call_error(message_id: str, code: str, description: str, details: dict[str, Any] | None = None) -> str:
    return json.dumps([4, message_id, code, description[:255], details or {}], separators=(",", ":"))


def call_result(message_id: str, payload: dict[str, Any]) -> str:
    return json.dumps([3, message_id, payload], separators=(",", ":"))


def call(message_id: str, action: str, payload: dict[str, Any]) -> str:
    return json.dumps([2, message_id, action, payload], separators=(",", ":"))


def decode(raw: bytes, *, max_bytes: int) -> Frame:
    """Parse one frame; raise FrameRejected with the right 1.6 error code."""
    if len(raw) > max_bytes:
        raise FrameRejected(
            _leading_message_id(raw), "GenericError", f"frame of {len(raw)} bytes exceeds {max_bytes}"
        )
    try:
        message = _parse(raw)
    except _Unparseable as bad:
        raise FrameRejected(_leading_message_id(raw), bad.code, bad.description) from None
    frame = _frame_of(message)
    _check_printable(frame)
    return frame


def _leading_message_id(raw: bytes) -> str:
    """The message id of a frame refused before it parsed, when it can be read safely."""
    match = _LEADING_MESSAGE_ID.match(raw)
    return match.group(1).decode("ascii") if match else UNKNOWN_MESSAGE_ID


def _parse(raw: bytes) -> Any:
    try:
        # Explicitly UTF-8 (OCPP-J 1.6 section 3.1): json.loads on bytes would also accept UTF-16/32.
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _Unparseable("FormationViolation", "frame is not UTF-8") from None
    # json.loads recurses once per level: count first, so a deep frame never reaches it.
    if _nesting_exceeds(text, MAX_DEPTH):
        raise _Unparseable("FormationViolation", f"frame nests deeper than {MAX_DEPTH} levels")
    try:
        return json.loads(
            text,
            parse_constant=_refuse_constant,
            parse_int=_bounded_int,
            parse_float=_finite_float,
            object_pairs_hook=_object_without_duplicates,
        )
    except json.JSONDecodeError as exc:
        raise _Unparseable("FormationViolation", f"frame is not valid JSON: {exc.msg}") from None


def _nesting_exceeds(text: str, limit: int) -> bool:
    """True if arrays and objects nest deeper than `limit`; linear, and stops at the first excess.

    On valid JSON this is the parser's own depth; on invalid JSON the parser stops at the
    first error, before it could go deeper than the valid prefix counted here.
    """
    depth = 0
    for match in _STRING_OR_BRACKET.finditer(text):
        token = match.group()
        if token == "[" or token == "{":
            depth += 1
            if depth > limit:
                return True
        elif token == "]" or token == "}":
            depth -= 1
    return False


def _refuse_constant(name: str) -> NoReturn:
    # NaN, Infinity and -Infinity are Python's extension, not JSON (RFC 8259 section 6).
    raise _Unparseable("FormationViolation", f"{name} is not a JSON number")


def _bounded_int(digits: str) -> int:
    # Length first: converting a digit string is quadratic (CPython caps it at 4300 digits).
    if len(digits.lstrip("-")) > len(str(MAX_SAFE_INTEGER)) or abs(int(digits)) > MAX_SAFE_INTEGER:
        raise _Unparseable("PropertyConstraintViolation", f"integer beyond +-{MAX_SAFE_INTEGER}")
    return int(digits)


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):  # 1e400 parses as infinity
        raise _Unparseable("PropertyConstraintViolation", "number beyond the range of a double")
    return number


def _object_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # Parsers disagree on which copy of a repeated key wins (Python keeps the last, others the
    # first): a frame could be validated as one thing and acted on as another. Refuse it.
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise _Unparseable("FormationViolation", "object has a repeated key")
    return obj


def _frame_of(message: Any) -> Frame:
    """The parsed JSON as a CALL, CALLRESULT or CALLERROR of the right shape."""
    message_id = _readable_message_id(message)
    reply_id = message_id or UNKNOWN_MESSAGE_ID
    if not isinstance(message, list) or not message:
        raise FrameRejected(reply_id, "ProtocolError", "a frame is an array starting with its type")
    kind = message[0]
    if type(kind) is not int or kind not in _FRAME_LENGTHS:
        raise FrameRejected(reply_id, "PropertyConstraintViolation", "message type must be 2, 3 or 4")
    length = _FRAME_LENGTHS[MessageType(kind)]
    if len(message) != length:
        raise FrameRejected(reply_id, "ProtocolError", f"a frame of type {kind} has {length} elements")
    if message_id is None:
        raise FrameRejected(
            UNKNOWN_MESSAGE_ID, "ProtocolError", "message id must be a string of 1-36 printable characters"
        )
    _check_elements(message, message_id)
    from ocpp.messages import Call, CallError, CallResult

    frame_type: type[Frame] = {2: Call, 3: CallResult, 4: CallError}[kind]
    return frame_type(*message[1:])


def _readable_message_id(message: Any) -> str | None:
    candidate = message[1] if isinstance(message, list) and len(message) > 1 else None
    if isinstance(candidate, str) and 0 < len(candidate) <= MAX_MESSAGE_ID_LENGTH:
        return None if _CONTROL.search(candidate) else candidate
    return None


def _check_elements(message: list[Any], message_id: str) -> None:
    kind, _, *rest = message
    if kind == 2:
        action, payload = rest
        if not (isinstance(action, str) and _ACTION_NAME.fullmatch(action) and isinstance(payload, dict)):
            raise FrameRejected(
                message_id, "FormationViolation", "a CALL needs an action name and an object payload"
            )
    elif kind == 3:
        if not isinstance(rest[0], dict):
            raise FrameRejected(message_id, "FormationViolation", "a CALLRESULT needs an object payload")
    else:
        code, description, details = rest
        if not (isinstance(code, str) and isinstance(description, str) and isinstance(details, dict)):
            raise FrameRejected(
                message_id,
                "FormationViolation",
                "a CALLERROR needs an error code, a description and an object of details",
            )


def _check_printable(frame: Frame) -> None:
    from ocpp.messages import Call, CallError

    if isinstance(frame, CallError):
        found = (
            _unprintable(frame.error_code, ("errorCode",), free_text=False),
            _unprintable(frame.error_description, ("errorDescription",), free_text=True),
            _unprintable(frame.error_details, ("errorDetails",), free_text=False),
        )
        where = next((path for path in found if path is not None), None)
    else:
        where = _unprintable(frame.payload, (), free_text=False)
    if where is not None:
        field = "/".join(where) or "payload"
        raise FrameRejected(
            frame.unique_id,
            "PropertyConstraintViolation",
            f"{field}: control characters are not allowed",
            field=field,
            action=frame.action if isinstance(frame, Call) else None,
        )


def _unprintable(value: Any, path: tuple[str, ...], *, free_text: bool) -> tuple[str, ...] | None:
    """The path of the first string with characters it may not contain, or None."""
    if isinstance(value, str):
        pattern = _CONTROL_IN_TEXT if free_text else _CONTROL
        return path if pattern.search(value) else None
    if isinstance(value, dict):
        for key, inner in value.items():
            if _CONTROL.search(key):
                return (*path, "(a property name)")
            found = _unprintable(inner, (*path, key), free_text=key in FREE_TEXT_FIELDS)
            if found is not None:
                return found
    if isinstance(value, list):
        for index, inner in enumerate(value):
            found = _unprintable(inner, (*path, str(index)), free_text=free_text)
            if found is not None:
                return found
    return None


def validate(message_type_id: int, action: str, payload: dict[str, Any], message_id: str) -> None:
    """Check a payload against the official OCPP 1.6 JSON schema for its action (loaded on first use)."""
    from ocpp.messages import get_validator

    try:
        validator = get_validator(message_type_id, action, OCPP_VERSION)
    except (OSError, ValueError) as exc:
        raise FrameRejected(
            message_id, "NotImplemented", f"unknown action {action!r}", action=action
        ) from exc
    error = next(iter(sorted(validator.iter_errors(payload), key=lambda e: e.path)), None)
    if error is not None:
        field = "/".join(str(p) for p in error.absolute_path) or "payload"
        raise FrameRejected(
            message_id, _code_for(error), f"{field}: {_rule_of(error)}", field=field, action=action
        )


def _code_for(error: SchemaValidationError) -> str:
    return _SCHEMA_ERROR_CODES.get(str(error.validator), "FormationViolation")


def _rule_of(error: SchemaValidationError) -> str:
    keyword = str(error.validator)
    if keyword in _SCHEMA_MESSAGES_WITHOUT_VALUES:
        message: str = error.message  # jsonschema ships no types
        return message
    rule = _SCHEMA_RULES.get(keyword)
    return rule.format(error.validator_value) if rule else f"violates the schema's {keyword!r}"
