import json

import pytest

from chargenet.ocpp import codec


def reject(raw: bytes, max_bytes: int = 1000) -> list:
    with pytest.raises(codec.FrameRejected) as err:
        codec.decode(raw, max_bytes=max_bytes)
    return json.loads(err.value.reply)


@pytest.mark.parametrize(
    ("raw", "message_id", "code"),
    [
        (b"{not json", "-1", "FormationViolation"),
        (b"\xff\xfe", "-1", "FormationViolation"),
        (b'{"a": 1}', "-1", "ProtocolError"),
        (b"[]", "-1", "ProtocolError"),
        (b"[2]", "-1", "ProtocolError"),
        (b'[2, "m1", "Heartbeat", {}, "extra"]', "m1", "ProtocolError"),
        (b'[7, "m1", "Heartbeat", {}]', "m1", "PropertyConstraintViolation"),
        (b'[2, 17, "Heartbeat", {}]', "-1", "ProtocolError"),
        (b'[2, "", "Heartbeat", {}]', "-1", "ProtocolError"),
        (b'[2, "' + b"x" * 37 + b'", "Heartbeat", {}]', "-1", "ProtocolError"),
        (b'[2, "m1", "Heartbeat", []]', "m1", "FormationViolation"),
        (b'[2, "m1", 5, {}]', "m1", "FormationViolation"),
    ],
)
def test_malformed_frames_get_a_callerror_with_the_16_code(raw, message_id, code):
    frame = reject(raw)
    assert frame[:3] == [4, message_id, code]
    assert frame[3]  # a description the charger's log can show


def test_oversized_frame_is_refused_with_its_message_id():
    raw = json.dumps([2, "big-1", "DataTransfer", {"vendorId": "v", "data": "x" * 2000}]).encode()
    frame = reject(raw, max_bytes=1024)
    assert frame[:3] == [4, "big-1", "GenericError"]
    assert "exceeds 1024" in frame[3]


def test_well_formed_call_decodes():
    frame = codec.decode(b'[2, "m1", "Heartbeat", {}]', max_bytes=100)
    assert (frame.unique_id, frame.action, frame.payload) == ("m1", "Heartbeat", {})


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ({}, "OccurenceConstraintViolation"),
        ({"chargePointVendor": 1, "chargePointModel": "m"}, "TypeConstraintViolation"),
        ({"chargePointVendor": "v" * 21, "chargePointModel": "m"}, "PropertyConstraintViolation"),
        ({"chargePointVendor": "v", "chargePointModel": "m", "colour": "red"}, "FormationViolation"),
    ],
)
def test_schema_violations_map_to_16_codes(payload, code):
    with pytest.raises(codec.FrameRejected) as err:
        codec.validate(2, "BootNotification", payload, "m9")
    assert json.loads(err.value.reply)[:3] == [4, "m9", code]


def test_status_enum_violation_is_a_property_constraint():
    payload = {"connectorId": 1, "errorCode": "NoError", "status": "Dancing"}
    with pytest.raises(codec.FrameRejected) as err:
        codec.validate(2, "StatusNotification", payload, "m2")
    assert err.value.code == "PropertyConstraintViolation"
    assert "status" in err.value.description


def test_unknown_action_is_not_implemented():
    with pytest.raises(codec.FrameRejected) as err:
        codec.validate(2, "MakeCoffee", {}, "m3")
    assert err.value.code == "NotImplemented"


def test_frames_are_compact_json():
    assert codec.call_result("a", {"x": 1}) == '[3,"a",{"x":1}]'
    assert codec.call("b", "Reset", {"type": "Soft"}) == '[2,"b","Reset",{"type":"Soft"}]'
    assert json.loads(codec.call_error("c", "GenericError", "d" * 400))[3] == "d" * 255
