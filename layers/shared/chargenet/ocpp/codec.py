"""OCPP-J 1.6 and 2.0.1 frames in and out: parse, validate against the official schemas, answer.

The `ocpp` package provides the frame types and the JSON schemas; this module adds
what a backend behind an at-least-once pipe needs on top: a reply to every frame that
can be answered (message id "-1" when none can be read), each version's spelling of the
error codes (the package mixes them), and a parser hardened against hostile input.

Every frame is checked before it reaches a schema, in this order, with the same hardening for
both versions; only the codes differ (OCPP-J 1.6 section 4.2.3, OCPP-J 2.0.1 section 4.3):

| rule                                                                  | 1.6 CALLERROR               | 2.0.1 CALLERROR               |
|-----------------------------------------------------------------------|-----------------------------|-------------------------------|
| more than `max_bytes`                                                 | GenericError                | GenericError                  |
| not UTF-8; not JSON (NaN/Infinity tokens included); a repeated key in | FormationViolation          | FormatViolation               |
| an object; arrays and objects nested deeper than MAX_DEPTH            |                             |                               |
| an integer beyond +-MAX_SAFE_INTEGER, a number beyond a double (1e400)| PropertyConstraintViolation | PropertyConstraintViolation   |
| not an array                                                          | ProtocolError               | RpcFrameworkError             |
| message type other than the integers 2, 3, 4                          | PropertyConstraintViolation | MessageTypeNotSupported       |
| wrong element count; message id not 1-36 characters without controls | ProtocolError               | RpcFrameworkError             |
| (answered with id "-1")                                               |                             |                               |
| action not a name; payload or details not an object; error code or    | FormationViolation          | FormatViolation               |
| description not a string                                              |                             |                               |
| a string with control characters (line breaks only in free text) or   | PropertyConstraintViolation | PropertyConstraintViolation   |
| an unpaired surrogate                                                 |                             |                               |

Schema violations: `required`, `minItems`, `maxItems` are OccurenceConstraintViolation (1.6's
spelling) / OccurrenceConstraintViolation (2.0.1); `type` TypeConstraintViolation; value rules
PropertyConstraintViolation; anything else (an unknown property) the version's Format(ion)Violation.
An action with no schema in the version is NotImplemented ("not known by receiver").

Until the frame parses, the reply echoes its message id only if it plainly leads the frame
(`[2, "<printable ASCII>"`), and "-1" otherwise.

Descriptions name the field and the rule, never the value: a CALLERROR is published and may
be logged, and a value can be an idTag, a password or a certificate.
"""

from __future__ import annotations

import functools
import json
import math
import re
from decimal import Decimal
from enum import IntEnum, StrEnum
from typing import TYPE_CHECKING, Any, NoReturn, TypeAlias

from chargenet.ocpp.versions import OcppVersion

if TYPE_CHECKING:
    # `ocpp.messages` imports jsonschema (~0.16 baselines of cold start): the frame types and the
    # validators are imported where a frame is decoded or validated, so a function that only might
    # send a command (payments, operator commands) does not load them at its cold start.
    from jsonschema import Draft4Validator
    from jsonschema.exceptions import ValidationError as SchemaValidationError
    from ocpp.messages import Call, CallError, CallResult

    Frame: TypeAlias = Call | CallResult | CallError

UNKNOWN_MESSAGE_ID = "-1"
MAX_MESSAGE_ID_LENGTH = 36
# The deepest 1.6 frames (MeterValues, SetChargingProfile) nest 6 levels, the frame's array included;
# the deepest 2.0.1 ones 13 (ReportChargingProfiles; TransactionEvent with signed meter values 7,
# NotifyReport 6), measured over the `ocpp` package's v201 schemas (tests/unit/test_codec_201.py).
# 2.0.1's customData objects are open: the limit is what bounds them.
MAX_DEPTH = 16
# Beyond this a JSON number cannot round-trip through an IEEE double (RFC 8259 section 6),
# and no OCPP integer (ids, Wh registers, seconds) comes anywhere near it.
MAX_SAFE_INTEGER = 2**53 - 1
# Free text may span lines (a PEM CSR, a vendor's diagnostics); every other string is an
# identifier, an enum, a timestamp or a number, and is one line of printable characters.
FREE_TEXT_FIELDS = frozenset({"info", "techInfo", "data", "csr"})
# 2.0.1's free text a charger sends: techInfo (SecurityEventNotification, NotifyEvent), csr,
# additionalInfo (StatusInfo in its answers), data (DataTransfer, NotifyCustomerInformation),
# content (NotifyDisplayMessages). certificateChain is free text though only the CSMS sends it.
FREE_TEXT_FIELDS_201 = frozenset({"techInfo", "csr", "certificateChain", "additionalInfo", "data", "content"})
_FREE_TEXT = {OcppVersion.V16: FREE_TEXT_FIELDS, OcppVersion.V201: FREE_TEXT_FIELDS_201}


class MessageType(IntEnum):
    """OCPP-J's message type ids, numbered and named as `ocpp.messages.MessageType`."""

    Call = 2
    CallResult = 3
    CallError = 4


class Violation(StrEnum):
    """What is wrong with a frame; each version spells it as its own CALLERROR code (`code_for`)."""

    TOO_LARGE = "too_large"
    FORMAT = "format"
    NOT_A_FRAME = "not_a_frame"
    MESSAGE_TYPE = "message_type"
    OCCURRENCE = "occurrence"
    TYPE = "type"
    PROPERTY = "property"


_CODES: dict[OcppVersion, dict[Violation, str]] = {
    OcppVersion.V16: {
        Violation.TOO_LARGE: "GenericError",
        Violation.FORMAT: "FormationViolation",
        Violation.NOT_A_FRAME: "ProtocolError",
        Violation.MESSAGE_TYPE: "PropertyConstraintViolation",
        Violation.OCCURRENCE: "OccurenceConstraintViolation",  # sic: OCPP-J 1.6's spelling
        Violation.TYPE: "TypeConstraintViolation",
        Violation.PROPERTY: "PropertyConstraintViolation",
    },
    OcppVersion.V201: {
        Violation.TOO_LARGE: "GenericError",
        Violation.FORMAT: "FormatViolation",
        Violation.NOT_A_FRAME: "RpcFrameworkError",
        Violation.MESSAGE_TYPE: "MessageTypeNotSupported",
        Violation.OCCURRENCE: "OccurrenceConstraintViolation",
        Violation.TYPE: "TypeConstraintViolation",
        Violation.PROPERTY: "PropertyConstraintViolation",
    },
}


def code_for(violation: Violation, version: OcppVersion) -> str:
    return _CODES[version][violation]


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
    """Raised from inside json.loads, before any message id (or the version's codes) is at hand."""

    def __init__(self, violation: Violation, description: str) -> None:
        super().__init__(description)
        self.violation = violation
        self.description = description


# jsonschema keyword -> what it found wrong (OCPP-J 1.6 section 4.2.3, 2.0.1 section 4.3).
_SCHEMA_VIOLATIONS = {
    "type": Violation.TYPE,
    "required": Violation.OCCURRENCE,
    "minItems": Violation.OCCURRENCE,
    "maxItems": Violation.OCCURRENCE,
    "enum": Violation.PROPERTY,
    "maxLength": Violation.PROPERTY,
    "minLength": Violation.PROPERTY,
    "minimum": Violation.PROPERTY,
    "maximum": Violation.PROPERTY,
    "multipleOf": Violation.PROPERTY,
    "pattern": Violation.PROPERTY,
    "format": Violation.PROPERTY,
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
    return to_json([4, message_id, code, description[:255], details or {}])


def call_result(message_id: str, payload: dict[str, Any]) -> str:
    return to_json([3, message_id, payload])


def call(message_id: str, action: str, payload: dict[str, Any]) -> str:
    return to_json([2, message_id, action, payload])


class _HasDecimal(Exception):
    """Raised from json's `default` hook: the value holds a Decimal, so it is written by the walk."""


def to_json(value: Any) -> str:
    """Compact JSON in which a Decimal is written as its exact digits: money (a 2.0.1 totalCost)
    never passes through a float. NaN and infinities are refused: they are not JSON."""
    try:  # the C encoder: most frames carry no Decimal (5x faster than the walk below)
        return json.dumps(value, separators=(",", ":"), allow_nan=False, default=_refuse_decimal)
    except _HasDecimal:
        return _with_decimals(value)


def _refuse_decimal(value: Any) -> NoReturn:
    if isinstance(value, Decimal):
        raise _HasDecimal
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _with_decimals(value: Any) -> str:
    if isinstance(value, Decimal):
        return _decimal_number(value)
    if isinstance(value, dict):
        # Keys as json writes them: payloads are dict[str, Any], an int key would be quoted.
        members = (f"{_json_scalar(str(key))}:{_with_decimals(inner)}" for key, inner in value.items())
        return "{" + ",".join(members) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(_with_decimals(inner) for inner in value) + "]"
    return _json_scalar(value)


def _json_scalar(value: Any) -> str:
    return json.dumps(value, allow_nan=False)


def _decimal_number(amount: Decimal) -> str:
    if not amount.is_finite():
        raise ValueError(f"{amount} is not a JSON number")
    # Fixed-point digits as stored ("16.50" stays 16.50): a valid JSON number, never an exponent.
    return f"{amount:f}"


def decode(raw: bytes, *, max_bytes: int, version: OcppVersion = OcppVersion.V16) -> Frame:
    """Parse one frame; raise FrameRejected with the right error code for `version`."""
    if len(raw) > max_bytes:
        raise FrameRejected(
            _leading_message_id(raw),
            code_for(Violation.TOO_LARGE, version),
            f"frame of {len(raw)} bytes exceeds {max_bytes}",
        )
    try:
        message = _parse(raw)
    except _Unparseable as bad:
        raise FrameRejected(
            _leading_message_id(raw), code_for(bad.violation, version), bad.description
        ) from None
    frame = _frame_of(message, version)
    _check_printable(frame, version)
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
        raise _Unparseable(Violation.FORMAT, "frame is not UTF-8") from None
    # json.loads recurses once per level: count first, so a deep frame never reaches it.
    if _nesting_exceeds(text, MAX_DEPTH):
        raise _Unparseable(Violation.FORMAT, f"frame nests deeper than {MAX_DEPTH} levels")
    try:
        return json.loads(
            text,
            parse_constant=_refuse_constant,
            parse_int=_bounded_int,
            parse_float=_finite_float,
            object_pairs_hook=_object_without_duplicates,
        )
    except json.JSONDecodeError as exc:
        raise _Unparseable(Violation.FORMAT, f"frame is not valid JSON: {exc.msg}") from None


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
    raise _Unparseable(Violation.FORMAT, f"{name} is not a JSON number")


def _bounded_int(digits: str) -> int:
    # Length first: converting a digit string is quadratic (CPython caps it at 4300 digits).
    if len(digits.lstrip("-")) > len(str(MAX_SAFE_INTEGER)) or abs(int(digits)) > MAX_SAFE_INTEGER:
        raise _Unparseable(Violation.PROPERTY, f"integer beyond +-{MAX_SAFE_INTEGER}")
    return int(digits)


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):  # 1e400 parses as infinity
        raise _Unparseable(Violation.PROPERTY, "number beyond the range of a double")
    return number


def _object_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # Parsers disagree on which copy of a repeated key wins (Python keeps the last, others the
    # first): a frame could be validated as one thing and acted on as another. Refuse it.
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise _Unparseable(Violation.FORMAT, "object has a repeated key")
    return obj


def _frame_of(message: Any, version: OcppVersion) -> Frame:
    """The parsed JSON as a CALL, CALLRESULT or CALLERROR of the right shape."""
    message_id = _readable_message_id(message)
    reply_id = message_id or UNKNOWN_MESSAGE_ID
    not_a_frame = code_for(Violation.NOT_A_FRAME, version)
    if not isinstance(message, list) or not message:
        raise FrameRejected(reply_id, not_a_frame, "a frame is an array starting with its type")
    kind = message[0]
    if type(kind) is not int or kind not in _FRAME_LENGTHS:
        raise FrameRejected(
            reply_id, code_for(Violation.MESSAGE_TYPE, version), "message type must be 2, 3 or 4"
        )
    length = _FRAME_LENGTHS[MessageType(kind)]
    if len(message) != length:
        raise FrameRejected(reply_id, not_a_frame, f"a frame of type {kind} has {length} elements")
    if message_id is None:
        raise FrameRejected(
            UNKNOWN_MESSAGE_ID, not_a_frame, "message id must be a string of 1-36 printable characters"
        )
    _check_elements(message, message_id, code_for(Violation.FORMAT, version))
    from ocpp.messages import Call, CallError, CallResult

    frame_type: type[Frame] = {2: Call, 3: CallResult, 4: CallError}[kind]
    return frame_type(*message[1:])


def _readable_message_id(message: Any) -> str | None:
    candidate = message[1] if isinstance(message, list) and len(message) > 1 else None
    if isinstance(candidate, str) and 0 < len(candidate) <= MAX_MESSAGE_ID_LENGTH:
        return None if _CONTROL.search(candidate) else candidate
    return None


def _check_elements(message: list[Any], message_id: str, format_violation: str) -> None:
    kind, _, *rest = message
    if kind == 2:
        action, payload = rest
        if not (isinstance(action, str) and _ACTION_NAME.fullmatch(action) and isinstance(payload, dict)):
            raise FrameRejected(
                message_id, format_violation, "a CALL needs an action name and an object payload"
            )
    elif kind == 3:
        if not isinstance(rest[0], dict):
            raise FrameRejected(message_id, format_violation, "a CALLRESULT needs an object payload")
    else:
        code, description, details = rest
        if not (isinstance(code, str) and isinstance(description, str) and isinstance(details, dict)):
            raise FrameRejected(
                message_id,
                format_violation,
                "a CALLERROR needs an error code, a description and an object of details",
            )


def _check_printable(frame: Frame, version: OcppVersion) -> None:
    from ocpp.messages import Call, CallError

    free_text = _FREE_TEXT[version]
    if isinstance(frame, CallError):
        found = (
            _unprintable(frame.error_code, ("errorCode",), free_text, in_free_text=False),
            _unprintable(frame.error_description, ("errorDescription",), free_text, in_free_text=True),
            _unprintable(frame.error_details, ("errorDetails",), free_text, in_free_text=False),
        )
        where = next((path for path in found if path is not None), None)
    else:
        where = _unprintable(frame.payload, (), free_text, in_free_text=False)
    if where is not None:
        field = "/".join(where) or "payload"
        raise FrameRejected(
            frame.unique_id,
            code_for(Violation.PROPERTY, version),
            f"{field}: control characters are not allowed",
            field=field,
            action=frame.action if isinstance(frame, Call) else None,
        )


def _unprintable(
    value: Any, path: tuple[str, ...], free_text: frozenset[str], *, in_free_text: bool
) -> tuple[str, ...] | None:
    """The path of the first string with characters it may not contain, or None."""
    if isinstance(value, str):
        pattern = _CONTROL_IN_TEXT if in_free_text else _CONTROL
        return path if pattern.search(value) else None
    if isinstance(value, dict):
        for key, inner in value.items():
            if _CONTROL.search(key):
                return (*path, "(a property name)")
            found = _unprintable(inner, (*path, key), free_text, in_free_text=key in free_text)
            if found is not None:
                return found
    if isinstance(value, list):
        for index, inner in enumerate(value):
            found = _unprintable(inner, (*path, str(index)), free_text, in_free_text=in_free_text)
            if found is not None:
                return found
    return None


def is_defined(action: str, version: OcppVersion) -> bool:
    """Whether `version` defines `action` as a CALL (it has a request schema for it)."""
    return _validator(MessageType.Call, action, version) is not None


def validate(
    message_type_id: int,
    action: str,
    payload: dict[str, Any],
    message_id: str,
    version: OcppVersion = OcppVersion.V16,
) -> None:
    """Check a payload against the official schema of `version` for its action (loaded on first use)."""
    validator = _validator(message_type_id, action, version)
    if validator is None:
        raise FrameRejected(message_id, "NotImplemented", f"unknown action {action!r}", action=action)
    error = next(iter(sorted(validator.iter_errors(payload), key=lambda e: e.path)), None)
    if error is not None:
        field = "/".join(str(p) for p in error.absolute_path) or "payload"
        raise FrameRejected(
            message_id,
            code_for(_SCHEMA_VIOLATIONS.get(str(error.validator), Violation.FORMAT), version),
            f"{field}: {_rule_of(error)}",
            field=field,
            action=action,
        )


# Bounded: an unknown action's miss is cached too, and a charger chooses its action names.
@functools.lru_cache(maxsize=512)
def _validator(message_type_id: int, action: str, version: OcppVersion) -> Draft4Validator | None:
    from ocpp.messages import get_validator

    try:
        validator = get_validator(message_type_id, action, version.schemas)
    except (OSError, ValueError):
        return None
    definitions = validator.schema.get("definitions")
    if not definitions:
        return validator  # 1.6: written out inline
    # 2.0.1's schemas name their types in `definitions` and refer to them with $ref; resolving the
    # references on every validation is ~40 % of its time (NotifyEvent of 5 events: 1.8 ms against
    # 1.1 ms). They are all local and none is recursive: resolved once, here.
    from jsonschema import Draft4Validator

    return Draft4Validator(_inlined(validator.schema, definitions))


def _inlined(node: Any, definitions: dict[str, Any]) -> Any:
    """`node` with every `{"$ref": "#/definitions/X"}` replaced by X, and no `definitions`."""
    if isinstance(node, dict):
        if "$ref" in node:
            return _inlined(definitions[node["$ref"].rsplit("/", 1)[-1]], definitions)
        return {key: _inlined(value, definitions) for key, value in node.items() if key != "definitions"}
    if isinstance(node, list):
        return [_inlined(value, definitions) for value in node]
    return node


def _rule_of(error: SchemaValidationError) -> str:
    keyword = str(error.validator)
    if keyword in _SCHEMA_MESSAGES_WITHOUT_VALUES:
        message: str = error.message  # jsonschema ships no types
        return message
    rule = _SCHEMA_RULES.get(keyword)
    return rule.format(error.validator_value) if rule else f"violates the schema's {keyword!r}"
