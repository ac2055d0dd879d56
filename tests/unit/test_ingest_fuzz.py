"""Fuzzing the OCPP ingest path: whatever a charger sends, it is answered and nothing it was refused for sticks.

Three kinds of input go through the real OcppIngest (in-memory ports): arbitrary bytes,
JSON-ish text built to hit the parser's edges (deep nesting, NaN, huge numbers, control
characters, lone surrogates), and well-formed CALLs for every action the router handles
with valid payloads mutated (wrong types, missing and extra fields, extreme values). The
properties: `handle` never raises; every reply is a well-formed CALLRESULT or CALLERROR
with an OCPP 1.6 error code; a refused frame (or one that needs no reply) leaves every
store exactly as it was.
"""

import base64
import copy
import json
import pickle
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ocpp.v16.enums import Action
from pynamodb.exceptions import PutError

from chargenet.ocpp.versions import OcppVersion
from chargenet.services.ingest import IngestEvent, Outcome
from chargenet.services.ocpp.routes import router_for
from tests.ingest_network import T0, Network, ts

# OCPP-J 1.6 section 4.2.3, in its spellings.
ERROR_CODES = frozenset(
    {
        "NotImplemented",
        "NotSupported",
        "InternalError",
        "ProtocolError",
        "SecurityError",
        "FormationViolation",
        "PropertyConstraintViolation",
        "OccurenceConstraintViolation",
        "TypeConstraintViolation",
        "GenericError",
    }
)
RECEIVED_AT_MS = int(T0.timestamp() * 1000)
MAX_FRAME_BYTES = 8192

# A well-formed EC P-256 CSR for CN=CP-2 (the fuzzed frames come from CP-1).
OTHER_CHARGERS_CSR = (
    "-----BEGIN CERTIFICATE REQUEST-----\n"
    "MIHKMHECAQAwDzENMAsGA1UEAwwEQ1AtMjBZMBMGByqGSM49AgEGCCqGSM49AwEH\n"
    "A0IABL+pd6xmR4QVvcOp+3QxBwizSvdreCN65qz2TVcqVlqx+ryjaqjf6YMq9lwv\n"
    "MvscYbeu4PtljTnG1Vn9r7M47CygADAKBggqhkjOPQQDAgNJADBGAiEA0lC0XbnX\n"
    "YOLxugntuDi79E0UrHwV0OZzxf1V58IYi38CIQC1eQZgoqa7+2O63rQJiBJseHhP\n"
    "Xv9c0uuRv3J9VULXUw==\n"
    "-----END CERTIFICATE REQUEST-----\n"
)
# One valid payload per action the router handles; transaction 1 is the seeded session.
VALID_PAYLOADS: dict[str, dict[str, Any]] = {
    "Authorize": {"idTag": "TAG-OK"},
    "BootNotification": {
        "chargePointVendor": "Acme",
        "chargePointModel": "AC22",
        "chargePointSerialNumber": "SN-1",
        "firmwareVersion": "1.2.3",
    },
    "DiagnosticsStatusNotification": {"status": "Uploaded"},
    "FirmwareStatusNotification": {"status": "Installed"},
    "Heartbeat": {},
    "MeterValues": {
        "connectorId": 1,
        "transactionId": 1,
        "meterValue": [
            {
                "timestamp": ts(10),
                "sampledValue": [
                    {"value": "2500", "measurand": "Energy.Active.Import.Register", "unit": "Wh"},
                    {"value": "7.2", "measurand": "Power.Active.Import", "unit": "kW"},
                ],
            }
        ],
    },
    "SecurityEventNotification": {
        "type": "TamperDetectionActivated",
        "timestamp": ts(3),
        "techInfo": "lid opened",
    },
    "StartTransaction": {"connectorId": 2, "idTag": "TAG-FLEET", "meterStart": 500, "timestamp": ts(4)},
    "StatusNotification": {
        "connectorId": 1,
        "errorCode": "GroundFailure",
        "status": "Faulted",
        "timestamp": ts(6),
        "info": "RCD tripped",
        "vendorErrorCode": "E17",
    },
    "StopTransaction": {
        "transactionId": 1,
        "meterStop": 9000,
        "timestamp": ts(20),
        "reason": "EVDisconnected",
        "idTag": "TAG-OK",
        "transactionData": [{"timestamp": ts(15), "sampledValue": [{"value": "8000"}]}],
    },
    # Certificate messages whose answer is the one reply (an accepted CSR is also followed by the
    # CertificateSigned CALL: tests/unit/test_certificate_rotation.py): a CSR naming another
    # charger, a confirmation of a certificate CP-1 does not have.
    "SignCertificate": {"csr": OTHER_CHARGERS_CSR},
    "DataTransfer": {
        "vendorId": "chargenet",
        "messageId": "CertificateInstalled",
        "data": '{"serialNumber": "1f"}',
    },
}
HANDLED_ACTIONS = sorted(a.value for a in Action if router_for(OcppVersion.V16).handles(a.value))

# Values a careless or hostile charger puts where a valid one belongs.
EXTREME_VALUES = [
    None,
    True,
    0,
    -1,
    -(2**31),
    2**53,
    2**53 + 1,
    -(2**53) - 1,
    10**30,
    1.5,
    1e308,
    "",
    "x" * 21,
    "x" * 600,
    [],
    {},
    [{}],
    "0000-01-01T00:00:00Z",
    "0001-01-01T00:00:00+01:00",
    "9999-12-31T23:59:59-01:00",
    "9999-12-31T23:59:59Z",
    "1970-01-01T00:00:00Z",
    "2026-11-26T08:30:00",
    "2026-02-30T00:00:00Z",
    "yesterday",
    "1764144000",
    "1e999999",
    "-1e999999",
    "1e-999999",
    "NaN",
    "-Infinity",
    "9" * 400,
    "0x10",
    "\u0663",
    "TAG\u0000OK",
    "TAG\nOK",
    "\u202eKO-GAT",
    "\ud800",
]
extreme_values = st.one_of(
    st.sampled_from(EXTREME_VALUES).map(copy.deepcopy),  # later mutations must not edit the constants
    st.integers(),
    st.floats(),
    st.text(max_size=30),
)

# Values of the right JSON type, so that they pass the schema and reach the handlers.
extreme_integers = st.sampled_from([0, -1, 2**31, -(2**31), 2**53 - 1, -(2**53 - 1)]) | st.integers(
    min_value=-(2**53 - 1), max_value=2**53 - 1
)
charger_times = st.builds(
    lambda at, offset: at.replace(tzinfo=offset).isoformat(),
    st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59)),
    st.none()
    | st.builds(timezone, st.timedeltas(min_value=timedelta(hours=-23), max_value=timedelta(hours=23))),
)
numeric_strings = st.one_of(
    st.decimals().map(str),  # NaN, sNaN, Infinity and 1E+999999 included
    st.integers().map(str),
    st.floats().map(repr),
)
extreme_strings = st.one_of(charger_times, numeric_strings, st.text(max_size=25))


def same_kind(value: Any) -> st.SearchStrategy[Any]:
    if isinstance(value, bool) or not isinstance(value, int | str):
        return extreme_values
    return extreme_integers if isinstance(value, int) else extreme_strings


def seeded_network() -> Network:
    """A charger with a boot, an open session (transaction 1), readings, a fault and a pending call."""
    net = Network(max_frame_bytes=MAX_FRAME_BYTES, now=T0 + timedelta(hours=1))
    # Any frame, refused or not, proves the charger alive (SPEC 4) and may write its seen-time:
    # all frames here are received at T0, so the fuzzed ones find it written and change nothing.
    net.call("BootNotification", VALID_PAYLOADS["BootNotification"])
    assert net.start(tag="TAG-OK", connector=1, meter=1000, minutes=1)["transactionId"] == 1
    net.meter(1, 1500, minutes=5)
    net.call(
        "StatusNotification",
        {"connectorId": 2, "errorCode": "WeakSignal", "status": "Available", "timestamp": ts(2)},
    )
    net.pending.add("CP-1", "r1", "Reset", {"type": "Soft"}, T0)
    return net


def snapshot(net: Network) -> dict[str, bytes]:
    """Everything the ingest path can write, per store (the dedupe's computation counter is not state).

    Pickled rather than deep-copied: ten times faster, and equal exactly when nothing changed.
    """
    stores = {
        "registry": vars(net.registry),
        "sessions": vars(net.sessions),
        "tags": vars(net.tags),
        "faults": vars(net.faults.store),
        "alerts": net.faults.publisher.published,
        "pending calls": net.pending.calls,
        "dedupe": (net.dedupe.results, net.dedupe.in_flight),
    }
    return {name: pickle.dumps(state) for name, state in stores.items()}


def send(net: Network, raw: bytes) -> tuple[Outcome, list[str]]:
    sent_before = len(net.channel.sent)
    event = IngestEvent(
        charger_id="CP-1",
        client_id="CP-1",
        payload=base64.b64encode(raw).decode(),
        received_at=RECEIVED_AT_MS,
    )
    outcome = net.ingest.handle(event)
    return outcome, [frame for _, frame in net.channel.sent[sent_before:]]


def assert_well_formed(reply: str, outcome: Outcome) -> list:
    frame = json.loads(reply)
    assert isinstance(frame, list) and frame, reply
    assert isinstance(frame[1], str) and 0 < len(frame[1]) <= 36, reply
    if outcome is Outcome.ANSWERED:
        assert len(frame) == 3 and frame[0] == 3 and isinstance(frame[2], dict), reply
    else:
        assert len(frame) == 5 and frame[0] == 4, reply
        _, _, code, description, details = frame
        assert code in ERROR_CODES, reply
        # The handlers' safety net answers InternalError: any input that reaches it is a bug.
        assert code != "InternalError", reply
        assert isinstance(description, str) and len(description) <= 255, reply
        assert details == {}, reply
    return frame


def check(raw: bytes, message_id: str | None = None) -> list[str]:
    """The fuzz properties for one input; `message_id` when the frame's id is readable. The replies."""
    net = seeded_network()
    before = snapshot(net)
    outcome, replies = send(net, raw)
    answered = outcome in (Outcome.ANSWERED, Outcome.REFUSED)
    assert len(replies) == (1 if answered else 0), (outcome, replies)
    for reply in replies:
        frame = assert_well_formed(reply, outcome)
        if message_id is not None:
            assert frame[1] == message_id, reply
    if outcome not in (Outcome.ANSWERED, Outcome.RESULT_MATCHED):
        assert snapshot(net) == before, (outcome, replies)
    return replies


FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# --- (a) arbitrary bytes ---


@FUZZ
@given(st.binary(max_size=600))
def test_arbitrary_bytes(raw):
    check(raw)


# --- (b) JSON-ish text at the parser's edges ---

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**60), max_value=10**60),
    st.floats(),  # NaN and infinities included: json.dumps writes them as bare tokens
    st.text(alphabet=st.characters(exclude_categories=()), max_size=12),  # control chars, surrogates too
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=12,
)
frame_like = st.tuples(
    st.sampled_from([2, 3, 4]) | json_scalars,
    st.sampled_from(["m1", "r1", "-1"]) | json_values,
    st.sampled_from(HANDLED_ACTIONS) | json_values,
    json_values,
).map(list) | st.lists(json_values, max_size=6)
TOKENS = [
    "[", "]", "{", "}", ",", ":", " ", "\n", "\"", "\\", "2", "3", "4", "-", "0", "1.5e3", "null", "true",
    '"m1"', '"Heartbeat"', '"StartTransaction"', '"idTag"', '"connectorId"', '{}', "NaN", "Infinity",
    "-Infinity", "1e400", "9" * 400, '"\\u0000"', '"\\ud800"', '"\\u001b[31m"', "\u0085", "\x00", "\ufeff",
]  # fmt: skip
token_soup = st.lists(st.sampled_from(TOKENS), max_size=40).map("".join)
deep_nesting = st.integers(min_value=1, max_value=3000).flatmap(
    lambda depth: st.sampled_from(
        [
            "[" * depth + "]" * depth,
            '[2,"m1","Heartbeat",' + '{"a":' * depth + "1" + "}" * depth + "]",
            '[2,"m1","Heartbeat",{"a":' + "[" * depth + "]" * depth + "}]",
        ]
    )
)


def to_text(value: Any, ascii_only: bool) -> str:
    return json.dumps(value, allow_nan=True, ensure_ascii=ascii_only)


json_ish = st.one_of(
    st.builds(to_text, frame_like, st.booleans()),
    token_soup,
    deep_nesting,
)


@FUZZ
@given(json_ish, st.sampled_from(["utf-8", "utf-16", "latin-1"]))
def test_json_ish_text(text, encoding):
    check(text.encode(encoding, errors="surrogatepass" if encoding != "latin-1" else "replace"))


# --- (c) well-formed CALLs of every handled action, payloads mutated ---


def paths(value: Any, prefix: tuple = ()) -> Iterator[tuple]:
    """Every place in a payload where a value sits, the payload itself first."""
    yield prefix
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, inner in items:
        yield from paths(inner, (*prefix, key))


def parent_of(payload: Any, path: tuple) -> Any:
    for key in path[:-1]:
        payload = payload[key]
    return payload


property_names = st.text(min_size=1, max_size=12)


@st.composite
def mutated_payload(draw: st.DrawFn, action: str) -> Any:
    payload = copy.deepcopy(VALID_PAYLOADS[action])
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        path = draw(st.sampled_from(list(paths(payload))))
        operation = draw(st.sampled_from(["perturb", "replace", "delete", "add"]))
        if not path:
            payload = draw(extreme_values) if operation == "replace" else payload
            continue
        parent, key = parent_of(payload, path), path[-1]
        if operation == "perturb":
            parent[key] = draw(same_kind(parent[key]))
        elif operation == "replace":
            parent[key] = draw(extreme_values)
        elif operation == "delete":
            del parent[key]
        elif isinstance(parent, dict):
            parent[draw(property_names)] = draw(extreme_values)
        else:
            parent.append(draw(extreme_values))
    return payload


mutated_calls = st.one_of([st.tuples(st.just(action), mutated_payload(action)) for action in HANDLED_ACTIONS])


@settings(FUZZ, max_examples=1200)
@given(mutated_calls, st.sampled_from(["c1", "m1", "r1"]))
def test_mutated_calls_of_every_handled_action(call, message_id):
    action, payload = call
    check(json.dumps([2, message_id, action, payload], allow_nan=True).encode(), message_id)


def test_every_handled_action_has_a_valid_payload_to_mutate():
    assert sorted(VALID_PAYLOADS) == HANDLED_ACTIONS


def test_the_valid_payloads_are_answered():
    for action in HANDLED_ACTIONS:
        net = seeded_network()
        outcome, [reply] = send(net, json.dumps([2, "v1", action, VALID_PAYLOADS[action]]).encode())
        assert outcome is Outcome.ANSWERED, (action, reply)


# --- what the fuzzer found, kept as examples: each crashed a handler or slipped past a check ---


def meter_values_with(**changes: Any) -> dict[str, Any]:
    payload = copy.deepcopy(VALID_PAYLOADS["MeterValues"])
    payload["meterValue"][0].update(changes)
    return payload


def with_changes(action: str, **changes: Any) -> dict[str, Any]:
    return {**VALID_PAYLOADS[action], **changes}


NAIVE = "2026-11-26T08:30:00"
TOO_LATE = "9999-12-31T23:59:59-01:00"  # year 10000 in UTC: overflows on conversion


@pytest.mark.parametrize(
    ("action", "payload", "code"),
    [
        # Times without an offset are UTC (OCPP-J): they used to meet aware ones and raise TypeError,
        # MeterValues after it had already written the register.
        ("StatusNotification", with_changes("StatusNotification", timestamp=NAIVE), None),
        ("StopTransaction", with_changes("StopTransaction", timestamp=NAIVE), None),
        ("SecurityEventNotification", with_changes("SecurityEventNotification", timestamp=NAIVE), None),
        ("MeterValues", meter_values_with(timestamp=NAIVE), None),
        # Times past 2099 overflowed in UTC conversion, or were stored to overflow later (idle limit).
        (
            "StatusNotification",
            with_changes("StatusNotification", timestamp=TOO_LATE),
            "PropertyConstraintViolation",
        ),
        (
            "StartTransaction",
            with_changes("StartTransaction", timestamp=TOO_LATE),
            "PropertyConstraintViolation",
        ),
        (
            "StopTransaction",
            with_changes("StopTransaction", timestamp=TOO_LATE),
            "PropertyConstraintViolation",
        ),
        ("MeterValues", meter_values_with(timestamp=TOO_LATE), "PropertyConstraintViolation"),
        # The schema does not check formats: an empty meter timestamp raised ValueError.
        ("MeterValues", meter_values_with(timestamp=""), "PropertyConstraintViolation"),
        # 1E+999999 overflowed Decimal in the fold; 60 digits would overflow DynamoDB's 38.
        (
            "MeterValues",
            meter_values_with(sampledValue=[{"value": "1E+999999"}]),
            "PropertyConstraintViolation",
        ),
        ("MeterValues", meter_values_with(sampledValue=[{"value": "9" * 60}]), "PropertyConstraintViolation"),
        # Connectors count from 0 (the charger itself), transactions from connector 1.
        (
            "StatusNotification",
            with_changes("StatusNotification", connectorId=-3),
            "PropertyConstraintViolation",
        ),
        ("MeterValues", {**VALID_PAYLOADS["MeterValues"], "connectorId": -1}, "PropertyConstraintViolation"),
        ("StartTransaction", with_changes("StartTransaction", connectorId=0), "PropertyConstraintViolation"),
    ],
)
def test_what_the_fuzzer_found(action, payload, code):
    [reply] = check(json.dumps([2, "f1", action, payload]).encode(), "f1")
    if code is None:
        assert json.loads(reply)[0] == 3, reply
    else:
        assert json.loads(reply)[:3] == [4, "f1", code], reply


# --- logging, and the safety net around the handlers ---

SECRET = "SECRET-0123456789-TAG"  # 21 characters: one too many for an idTag


def records(caplog: pytest.LogCaptureFixture, message: str) -> list:
    return [r for r in caplog.records if r.getMessage() == message]


def test_refusals_are_logged_with_ids_action_and_code_never_the_payload(caplog):
    net = seeded_network()
    start = {**VALID_PAYLOADS["StartTransaction"], "idTag": SECRET}
    send(net, json.dumps([2, "s1", "StartTransaction", start]).encode())
    send(net, json.dumps([2, "s2", "Authorize", {"idTag": SECRET[:10] + "\u0000"}]).encode())
    send(net, b'[2, "s3", "Authorize", {"idTag": "' + SECRET.encode() + b'", "idTag": "x"}]')
    logged = [
        (r.charger_id, r.message_id, r.action, r.error_code, r.field)
        for r in records(caplog, "frame refused")
    ]
    assert logged == [
        ("CP-1", "s1", "StartTransaction", "PropertyConstraintViolation", "idTag"),
        ("CP-1", "s2", "Authorize", "PropertyConstraintViolation", "idTag"),
        ("CP-1", "s3", None, "FormationViolation", None),
    ]
    assert SECRET[:10] not in str([vars(r) for r in caplog.records])


def raising(error: Exception) -> Any:
    def raise_it(*args: Any) -> None:
        raise error

    return raise_it


def test_a_failing_handler_is_answered_internal_error_and_its_message_is_not_logged(caplog):
    net = seeded_network()
    before = snapshot(net)
    net.registry.record_boot = raising(KeyError(SECRET))
    outcome, [reply] = send(
        net, json.dumps([2, "b9", "BootNotification", VALID_PAYLOADS["BootNotification"]]).encode()
    )
    assert outcome is Outcome.REFUSED
    assert json.loads(reply)[:3] == [4, "b9", "InternalError"]
    [failure] = records(caplog, "handler failed")
    assert (failure.message_id, failure.action, failure.error_type) == ("b9", "BootNotification", "KeyError")
    assert "raise_it" in failure.raised_at
    assert SECRET not in str([vars(r) for r in caplog.records])
    del net.registry.record_boot
    assert snapshot(net) == before  # not stored as the answer: a redelivery runs the handler again


@pytest.mark.parametrize(
    "error",
    [
        ClientError(
            {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow"}}, "PutItem"
        ),
        EndpointConnectionError(endpoint_url="https://dynamodb.eu-west-1.amazonaws.com"),
        PutError("Failed to put item"),
        TimeoutError("read timed out"),
    ],
)
def test_infrastructure_errors_propagate_so_that_lambda_retries(error):
    net = seeded_network()
    net.registry.record_boot = raising(error)
    sent_before = list(net.channel.sent)
    with pytest.raises(type(error)):
        send(net, json.dumps([2, "b9", "BootNotification", VALID_PAYLOADS["BootNotification"]]).encode())
    assert net.channel.sent == sent_before  # no answer: the retry will give it
