"""OCPP 2.0.1 frames: the same hardening as 1.6, answered with OCPP-J 2.0.1's error codes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import ocpp
import pytest

from chargenet.ocpp import codec
from chargenet.ocpp.versions import OcppVersion

V201 = OcppVersion.V201
SCHEMAS = Path(ocpp.__file__).parent / "v201" / "schemas"


def reject(raw: bytes, max_bytes: int = 100_000) -> list[Any]:
    with pytest.raises(codec.FrameRejected) as err:
        codec.decode(raw, max_bytes=max_bytes, version=V201)
    return json.loads(err.value.reply)


def refusal(message_type: int, action: str, payload: dict[str, Any]) -> codec.FrameRejected:
    with pytest.raises(codec.FrameRejected) as err:
        codec.validate(message_type, action, payload, "m9", V201)
    return err.value


@pytest.mark.parametrize(
    ("raw", "message_id", "code"),
    [
        (b"{not json", "-1", "FormatViolation"),
        (b"\xff\xfe", "-1", "FormatViolation"),
        (b'[2, "m1", "Heartbeat", {}, NaN]', "m1", "FormatViolation"),
        (b'[2, "m1", "Authorize", {"a": 1, "a": 2}]', "m1", "FormatViolation"),
        (b'{"a": 1}', "-1", "RpcFrameworkError"),
        (b"[]", "-1", "RpcFrameworkError"),
        (b"[2]", "-1", "RpcFrameworkError"),
        (b'[2, "m1", "Heartbeat", {}, "extra"]', "m1", "RpcFrameworkError"),
        (b'[3, "r1", {}, "Reset"]', "r1", "RpcFrameworkError"),
        (b'[2, 17, "Heartbeat", {}]', "-1", "RpcFrameworkError"),
        (b'[2, "", "Heartbeat", {}]', "-1", "RpcFrameworkError"),
        (b'[2, "m\\n1", "Heartbeat", {}]', "-1", "RpcFrameworkError"),
        (b'[7, "m1", "Heartbeat", {}]', "m1", "MessageTypeNotSupported"),
        (b'[5, "m1", "Heartbeat", {}]', "m1", "MessageTypeNotSupported"),  # 2.1's CALLRESULTERROR
        (b'["2", "m1", "Heartbeat", {}]', "m1", "MessageTypeNotSupported"),
        (b'[2, "m1", "Heartbeat", []]', "m1", "FormatViolation"),
        (b'[2, "m1", 5, {}]', "m1", "FormatViolation"),
        (b'[4, "r1", "NotSupported", null, {}]', "r1", "FormatViolation"),
        (b'[2, "m1", "Authorize", {"n": 9007199254740992}]', "m1", "PropertyConstraintViolation"),
        (b'[2, "m1", "Authorize", {"n": 1e400}]', "m1", "PropertyConstraintViolation"),
    ],
)
def test_malformed_frames_get_a_callerror_with_the_201_code(raw: bytes, message_id: str, code: str) -> None:
    frame = reject(raw)
    assert frame[:3] == [4, message_id, code]
    assert frame[3]


def test_oversized_frame_is_a_generic_error_with_its_message_id() -> None:
    raw = json.dumps([2, "big-1", "DataTransfer", {"vendorId": "v", "data": "x" * 2000}]).encode()
    assert reject(raw, max_bytes=1024)[:3] == [4, "big-1", "GenericError"]


def test_nesting_beyond_the_limit_is_a_format_violation() -> None:
    depth = codec.MAX_DEPTH
    raw = f'[2, "m1", "DataTransfer", {{"x": {"[" * depth}{"]" * depth}}}]'.encode()
    assert reject(raw)[:3] == [4, "m1", "FormatViolation"]


def _schema_depth(schema: dict[str, Any], definitions: dict[str, Any], seen: tuple[str, ...] = ()) -> int:
    """How deep a payload of this schema nests arrays and objects (customData left out: it is open)."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return 0 if name in seen else _schema_depth(definitions[name], definitions, (*seen, name))
    if schema.get("type") == "object":
        inner = [
            _schema_depth(value, definitions, seen)
            for key, value in schema.get("properties", {}).items()
            if key != "customData"
        ]
        return 1 + max(inner, default=0)
    if schema.get("type") == "array":
        return 1 + _schema_depth(schema.get("items", {}), definitions, seen)
    return 0


def test_every_201_schema_nests_within_max_depth_with_the_frame_around_it() -> None:
    depths = {}
    for path in SCHEMAS.glob("*.json"):
        schema = json.loads(path.read_text(encoding="utf-8-sig"))
        depths[path.stem] = _schema_depth(schema, schema.get("definitions", {}))
    deepest = max(depths, key=depths.__getitem__)
    assert (deepest, depths[deepest]) == ("ReportChargingProfilesRequest", 12)
    assert depths["TransactionEventRequest"] == 6 and depths["NotifyReportRequest"] == 5
    assert depths[deepest] + 1 <= codec.MAX_DEPTH  # the frame's array is one more level


@pytest.mark.parametrize(
    "field", ["techInfo", "csr", "certificateChain", "additionalInfo", "data", "content"]
)
def test_201_free_text_fields_may_span_lines(field: str) -> None:
    payload = {field: "-----BEGIN\r\nABC\n-----END"}
    frame = codec.decode(json.dumps([2, "m1", "X", payload]).encode(), max_bytes=10_000, version=V201)
    assert frame.payload == payload


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"info": "line\n2"}, "info"),  # 1.6's free text, an identifier-like field in 2.0.1
        ({"idToken": {"idToken": "TAG\n1", "type": "ISO14443"}}, "idToken/idToken"),
        ({"techInfo": "bell\u0007"}, "techInfo"),  # free text takes line breaks, not other controls
    ],
)
def test_other_control_characters_are_a_property_constraint_violation(
    payload: dict[str, Any], field: str
) -> None:
    with pytest.raises(codec.FrameRejected) as err:
        codec.decode(json.dumps([2, "m1", "X", payload]).encode(), max_bytes=10_000, version=V201)
    assert (err.value.code, err.value.field) == ("PropertyConstraintViolation", field)


def test_a_16_frame_keeps_its_16_codes() -> None:
    with pytest.raises(codec.FrameRejected) as err:
        codec.decode(b'[7, "m1", "Heartbeat", {}]', max_bytes=100)
    assert err.value.code == "PropertyConstraintViolation"
    with pytest.raises(codec.FrameRejected) as err:
        codec.validate(2, "BootNotification", {}, "m1")
    assert err.value.code == "OccurenceConstraintViolation"


@pytest.mark.parametrize(
    ("payload", "code", "field"),
    [
        ({"reason": "PowerUp"}, "OccurrenceConstraintViolation", "payload"),
        (
            {"reason": 1, "chargingStation": {"model": "m", "vendorName": "v"}},
            "TypeConstraintViolation",
            "reason",
        ),
        (
            {"reason": "Dancing", "chargingStation": {"model": "m", "vendorName": "v"}},
            "PropertyConstraintViolation",
            "reason",
        ),
        (
            {"reason": "PowerUp", "chargingStation": {"model": "m" * 21, "vendorName": "v"}},
            "PropertyConstraintViolation",
            "chargingStation/model",
        ),
        (
            {"reason": "PowerUp", "chargingStation": {"model": "m", "vendorName": "v"}, "x": 1},
            "FormatViolation",
            "payload",
        ),
    ],
)
def test_schema_violations_map_to_201_codes(payload: dict[str, Any], code: str, field: str) -> None:
    refused = refusal(2, "BootNotification", payload)
    assert (refused.code, refused.field, refused.action) == (code, field, "BootNotification")


def test_a_valid_201_payload_passes_its_201_schema_and_not_the_16_one() -> None:
    boot = {"reason": "PowerUp", "chargingStation": {"model": "AC22", "vendorName": "Acme"}}
    codec.validate(2, "BootNotification", boot, "m1", V201)
    with pytest.raises(codec.FrameRejected):
        codec.validate(2, "BootNotification", boot, "m1")


def test_results_are_checked_against_201_response_schemas() -> None:
    codec.validate(3, "RequestStartTransaction", {"status": "Accepted"}, "r1", V201)
    assert refusal(3, "RequestStartTransaction", {"status": "Maybe"}).code == "PropertyConstraintViolation"


def test_an_action_201_does_not_define_is_not_implemented() -> None:
    assert refusal(2, "StartTransaction", {}).code == "NotImplemented"  # 1.6 only
    assert not codec.is_defined("StartTransaction", V201)
    assert not codec.is_defined("MakeCoffee", V201)
    assert codec.is_defined("NotifyDisplayMessages", V201)
    assert codec.is_defined("StartTransaction", OcppVersion.V16)


def test_schema_violations_never_quote_the_value() -> None:
    refused = refusal(2, "Authorize", {"idToken": {"idToken": "SECRET" * 10, "type": "ISO14443"}})
    assert "SECRET" not in refused.reply
