import json
from decimal import Decimal

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


@pytest.mark.parametrize(
    ("amount", "written"),
    [
        (Decimal("16.50"), "16.50"),
        (Decimal("0.1") + Decimal("0.2"), "0.3"),  # 0.30000000000000004 as floats
        (Decimal("5"), "5"),
        (Decimal("-0.07"), "-0.07"),
        (Decimal("1E+3"), "1000"),  # never an exponent a strict reader could take for a float
        (Decimal("123456789012345678.91"), "123456789012345678.91"),  # beyond a double's digits
    ],
)
def test_money_goes_on_the_wire_as_its_exact_digits(amount, written):
    frame = codec.call_result("a", {"totalCost": amount, "idTokenInfo": {"status": "Accepted"}})
    assert frame == f'[3,"a",{{"totalCost":{written},"idTokenInfo":{{"status":"Accepted"}}}}]'
    assert json.loads(frame, parse_float=Decimal)[2]["totalCost"] == amount


def test_the_writer_is_json_for_every_other_value():
    payload = {
        "s": 'quote " and \u00e9 \u20ac',
        "n": None,
        "b": [True, False],
        "i": -3,
        "f": 0.5,
        "t": ("x",),
    }
    assert json.loads(codec.call("m", "DataTransfer", payload)) == [
        2,
        "m",
        "DataTransfer",
        {**payload, "t": ["x"]},
    ]
    assert (
        codec.call_result("a", {"text": "\u00e9"}) == '[3,"a",{"text":"\\u00e9"}]'
    )  # ASCII, as json writes it


@pytest.mark.parametrize("not_a_number", [Decimal("NaN"), Decimal("Infinity"), float("nan"), float("-inf")])
def test_numbers_json_cannot_hold_are_refused_not_written(not_a_number):
    with pytest.raises(ValueError):
        codec.call_result("a", {"totalCost": not_a_number})


def test_values_json_cannot_hold_are_refused_with_or_without_a_decimal():
    for payload in ({"x": object()}, {"x": object(), "totalCost": Decimal("1.00")}):
        with pytest.raises(TypeError):
            codec.call_result("a", payload)


# --- hardening: every rule refuses before the schema, with its OCPP 1.6 code ---


def decoded(raw: bytes, max_bytes: int = 100_000):
    return codec.decode(raw, max_bytes=max_bytes)


def test_frame_in_another_encoding_than_utf8_is_a_formation_violation():
    raw = '[2, "m1", "Heartbeat", {}]'.encode("utf-16")
    assert reject(raw)[:3] == [4, "-1", "FormationViolation"]


def test_byte_order_mark_is_a_formation_violation():
    assert reject(b'\xef\xbb\xbf[2, "m1", "Heartbeat", {}]')[:3] == [4, "-1", "FormationViolation"]


def test_nesting_up_to_the_limit_decodes():
    depth_in_payload = codec.MAX_DEPTH - 2  # the frame and the payload are two levels
    payload = "[" * depth_in_payload + "]" * depth_in_payload
    frame = decoded(f'[2, "m1", "DataTransfer", {{"vendorId": "v", "x": {payload}}}]'.encode())
    assert frame.unique_id == "m1"


def test_nesting_beyond_the_limit_is_a_formation_violation_with_the_message_id():
    depth = codec.MAX_DEPTH
    raw = f'[2, "m1", "DataTransfer", {{"x": {"[" * depth}{"]" * depth}}}]'.encode()
    assert reject(raw)[:3] == [4, "m1", "FormationViolation"]


def test_deep_nesting_never_reaches_the_recursive_parser():
    raw = b"[" * 200_000 + b"]" * 200_000  # json.loads would raise RecursionError on this
    assert reject(raw, max_bytes=1_000_000)[:3] == [4, "-1", "FormationViolation"]


def test_brackets_inside_strings_do_not_count_as_nesting():
    brackets = "[{" * 40 + '\\"]'
    frame = decoded(f'[2, "m1", "DataTransfer", {{"vendorId": "{brackets}"}}]'.encode())
    assert frame.payload == {"vendorId": "[{" * 40 + '"]'}


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_not_json(token):
    raw = f'[2, "m1", "MeterValues", {{"connectorId": {token}}}]'.encode()
    assert reject(raw)[:3] == [4, "m1", "FormationViolation"]


@pytest.mark.parametrize("number", [str(2**53), str(-(2**53)), "9" * 5000, "1e400", "-1e400"])
def test_numbers_beyond_a_double_are_a_property_constraint_violation(number):
    raw = f'[2, "m1", "StartTransaction", {{"meterStart": {number}}}]'.encode()
    assert reject(raw, max_bytes=10_000)[:3] == [4, "m1", "PropertyConstraintViolation"]


def test_numbers_within_a_double_decode():
    frame = decoded(f'[2, "m1", "X", {{"a": {2**53 - 1}, "b": {-(2**53 - 1)}, "c": 1.5e300}}]'.encode())
    assert frame.payload == {"a": 2**53 - 1, "b": -(2**53 - 1), "c": 1.5e300}


@pytest.mark.parametrize(
    "raw",
    [
        b'[2, "m1", "Authorize", {"idTag": "A", "idTag": "B"}]',
        b'[2, "m1", "MeterValues", {"meterValue": [{"timestamp": "t", "timestamp": "t"}]}]',
    ],
)
def test_repeated_keys_are_a_formation_violation(raw):
    # Python keeps the last copy, other parsers the first: refuse rather than pick one.
    assert reject(raw)[:3] == [4, "m1", "FormationViolation"]


def test_object_keys_that_are_not_strings_are_not_json():
    assert reject(b'[2, "m1", "Authorize", {1: "A"}]')[:3] == [4, "m1", "FormationViolation"]


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ('{"idTag": "TAG\\u0000"}', "idTag"),
        ('{"idTag": "TAG\\n1"}', "idTag"),  # identifiers are one line
        ('{"idTag": "\\u001b[31mTAG"}', "idTag"),  # terminal escapes
        ('{"idTag": "TAG\\u007f"}', "idTag"),
        ('{"idTag": "TAG\\u0085"}', "idTag"),  # C1
        ('{"idTag": "TAG\\ud800"}', "idTag"),  # unpaired surrogate: not text, cannot be stored as UTF-8
        ('{"meterValue": [{"sampledValue": [{"value": "1\\u0000"}]}]}', "meterValue/0/sampledValue/0/value"),
        ('{"info": "line\\u0000"}', "info"),  # free text takes line breaks, not other controls
        ('{"id\\u0000Tag": "TAG"}', "(a property name)"),
    ],
)
def test_control_characters_in_strings_are_a_property_constraint_violation(payload, field):
    with pytest.raises(codec.FrameRejected) as err:
        decoded(f'[2, "m1", "Authorize", {payload}]'.encode())
    assert (err.value.message_id, err.value.code, err.value.field) == (
        "m1",
        "PropertyConstraintViolation",
        field,
    )


def test_free_text_fields_may_span_lines_and_text_may_be_any_language():
    payload = {
        "info": "line 1\r\n\tline 2",
        "csr": "-----BEGIN\nABC\n-----END",
        "idTag": "Zoë-東京-\U0001f600",
    }
    frame = decoded(json.dumps([2, "m1", "X", payload]).encode())
    assert frame.payload == payload


def test_raw_control_characters_in_a_string_are_not_json():
    assert reject(b'[2, "m1", "Authorize", {"idTag": "A\x01"}]')[:3] == [4, "m1", "FormationViolation"]


@pytest.mark.parametrize("message_id", ["m\\u00001", "m\\n1", "m\\ud8001"])
def test_message_id_with_control_characters_is_a_protocol_error_answered_as_minus_one(message_id):
    raw = f'[2, "{message_id}", "Heartbeat", {{}}]'.encode()
    assert reject(raw)[:3] == [4, "-1", "ProtocolError"]


def test_message_id_minus_one_is_a_message_id_like_any_other():
    assert decoded(b'[2, "-1", "Heartbeat", {}]').unique_id == "-1"


@pytest.mark.parametrize("kind", ["2.0", "true", '"2"', "null", "[2]"])
def test_message_type_must_be_the_integer_2_3_or_4(kind):
    raw = f'[{kind}, "m1", "Heartbeat", {{}}]'.encode()
    assert reject(raw)[:3] == [4, "m1", "PropertyConstraintViolation"]


@pytest.mark.parametrize(
    "raw",
    [
        b'[3, "r1", {}, "Reset"]',
        b'[4, "r1", "NotSupported", "no"]',
        b'[4, "r1", "NotSupported", "no", {}, 1]',
    ],
)
def test_results_and_errors_need_exactly_their_elements(raw):
    assert reject(raw)[:3] == [4, "r1", "ProtocolError"]


@pytest.mark.parametrize(
    "raw",
    [
        b'[3, "r1", "Accepted"]',
        b'[4, "r1", 5, "no", {}]',
        b'[4, "r1", "NotSupported", null, {}]',
        b'[4, "r1", "NotSupported", "no", []]',
        b'[2, "m1", "Heart beat", {}]',
        b'[2, "m1", "", {}]',
        b'[2, "m1", "' + b"A" * 65 + b'", {}]',
    ],
)
def test_frame_elements_of_the_wrong_kind_are_a_formation_violation(raw):
    assert reject(raw)[2] == "FormationViolation"


def test_call_error_description_is_free_text_but_its_code_is_not():
    frame = decoded(b'[4, "r1", "NotSupported", "no\\nway", {"detail": "x"}]')
    assert frame.error_description == "no\nway"
    with pytest.raises(codec.FrameRejected) as err:
        decoded(b'[4, "r1", "Not\\nSupported", "no", {}]')
    assert (err.value.code, err.value.field) == ("PropertyConstraintViolation", "errorCode")


def test_oversized_frame_is_refused_without_parsing_it():
    raw = b'[2, "big-2", "DataTransfer", ' + b"[" * 100_000 + b"]" * 100_000 + b"]"
    assert reject(raw, max_bytes=1024)[:3] == [4, "big-2", "GenericError"]


def test_refused_frame_echoes_only_a_plainly_printable_message_id():
    raw = b'[2, "m\\u00001", "Heartbeat", {}, NaN]'
    assert reject(raw)[:3] == [4, "-1", "FormationViolation"]


@pytest.mark.parametrize(
    ("payload", "secret"),
    [
        ({"idTag": "SECRET-TAG-0123456789"}, "SECRET"),  # maxLength 20
        ({"idTag": 4242424242}, "4242424242"),  # wrong type
        ({"idTag": "T", "password": "hunter2"}, "hunter2"),  # additional property: named, value unsaid
    ],
)
def test_schema_violations_never_quote_the_value(payload, secret):
    with pytest.raises(codec.FrameRejected) as err:
        codec.validate(2, "Authorize", payload, "m1")
    assert secret not in err.value.reply
    assert err.value.field is not None
