import base64
import json
from pathlib import Path

import pytest

from chargenet_local.rules import Message, Rule, UnsupportedSql, route, topic_matches
from chargenet_local.template import load

ROOT = Path(__file__).resolve().parents[2]


def message(topic="chargers/CP-1/in", payload=b'[2,"1","Heartbeat",{}]', client="CP-1", ts=1700000000000):
    return Message(topic, payload, client, ts)


@pytest.mark.parametrize(
    ("topic_filter", "topic", "matches"),
    [
        ("chargers/+/in", "chargers/CP-1/in", True),
        ("chargers/+/in", "chargers/CP-1/out", False),
        ("chargers/+/in", "chargers/CP-1/in/extra", False),
        ("chargers/#", "chargers/CP-1/in/extra", True),
        ("$aws/events/presence/+/+", "$aws/events/presence/connected/CP-1", True),
        ("a/b", "a", False),
    ],
)
def test_topic_filters(topic_filter, topic, matches):
    assert topic_matches(topic_filter, topic) is matches


def test_ingest_rule_sql_projects_charger_id_payload_and_receive_time():
    rule = Rule.parse(
        "ingest",
        "SELECT encode(*, 'base64') AS payload, topic(2) AS charger_id, clientid() AS client_id, "
        "timestamp() AS received_at FROM 'chargers/+/in'",
    )
    out = rule.evaluate(message(payload=b"not even json"))
    assert out == {
        "payload": base64.b64encode(b"not even json").decode(),
        "charger_id": "CP-1",
        "client_id": "CP-1",
        "received_at": 1700000000000,
    }


def test_select_star_passes_json_objects_and_drops_non_objects():
    rule = Rule.parse("presence", "SELECT * FROM '$aws/events/presence/+/+'")
    event = {"clientId": "CP-1", "eventType": "connected", "versionNumber": 3}
    topic = "$aws/events/presence/connected/CP-1"
    assert rule.evaluate(message(topic, json.dumps(event).encode())) == event
    assert rule.evaluate(message(topic, b"[1,2]")) is None


def test_where_clause_and_aliases():
    rule = Rule.parse("hot", "SELECT temp AS t, meta.site FROM 'sensors/+' WHERE temp > 50 AND kind = 'air'")
    hot = json.dumps({"temp": 60, "kind": "air", "meta": {"site": "S1"}}).encode()
    cold = json.dumps({"temp": 20, "kind": "air"}).encode()
    assert rule.evaluate(message("sensors/x", hot)) == {"t": 60, "site": "S1"}
    assert rule.evaluate(message("sensors/x", cold)) is None
    assert rule.evaluate(message("other/x", hot)) is None


def test_unsupported_sql_is_refused_at_load():
    with pytest.raises(UnsupportedSql):
        Rule.parse("x", "SELECT get_thing_shadow(topic(2), 'role') FROM 'a/+'")
    with pytest.raises(UnsupportedSql):
        Rule.parse("x", "DELETE FROM 'a'")


def test_basic_ingest_reaches_only_its_rule_without_the_prefix():
    a = Rule.parse("rule_a", "SELECT * FROM 'chargers/+/in'")
    b = Rule.parse("rule_b", "SELECT * FROM 'chargers/+/in'")
    matched, topic = route([a, b], "$aws/rules/rule_b/chargers/CP-1/in")
    assert (matched, topic) == ([b], "chargers/CP-1/in")
    assert route([a, b], "chargers/CP-1/in") == ([a, b], "chargers/CP-1/in")


def test_every_rule_in_the_template_is_understood_locally():
    template = load(ROOT / "template.yaml", region="us-east-1", overrides={"IotDataEndpoint": "https://x"})
    rules = template.rules()
    assert {r.function for r in rules} == {"OcppIngestFunction", "PresenceFunction"}
    for spec in rules:
        Rule.parse(spec.name, spec.sql)


def test_template_functions_get_their_own_environment():
    template = load(
        ROOT / "template.yaml", region="us-east-1", overrides={"IotDataEndpoint": "https://iot.example"}
    )
    functions = template.functions()
    ingest = functions["OcppIngestFunction"]
    assert ingest.environment["CHARGERS_TABLE"] == "ChargersTable"
    assert ingest.environment["AWS_ENDPOINT_URL_IOT_DATA_PLANE"] == "https://iot.example"
    assert ingest.code_dir == ROOT / "functions" / "ocpp_ingest"
    assert ingest.dead_letter_queue == "IngestDeadLetterQueue"
    assert "IDEMPOTENCY_TABLE" not in functions["PresenceFunction"].environment
    # One sweep at a time, as the template reserves it; the local stack runs that many workers.
    assert functions["FaultSweepFunction"].reserved_concurrency == 1
    assert ingest.reserved_concurrency is not None and ingest.reserved_concurrency > 1


def test_template_schedules_and_stream_mappings_are_understood_locally():
    template = load(ROOT / "template.yaml", region="us-east-1", overrides={"IotDataEndpoint": "https://x"})
    schedules = {(spec.function, spec.every_s) for spec in template.schedules()}
    assert schedules == {
        ("SessionSweepFunction", 300),
        ("FaultSweepFunction", 60),
        ("PaymentSweepFunction", 60),
        ("SubscriptionInvoicingFunction", 86400),
    }
    mappings = {m.function: m for m in template.stream_mappings()}
    assert {name: m.table for name, m in mappings.items()} == {
        "BillingFunction": "SessionsTable",
        "PaymentCaptureFunction": "CdrsTable",
        "SubscriptionUsageFunction": "CdrsTable",
    }
    billing = mappings["BillingFunction"]
    assert (billing.table, billing.function, billing.on_failure_queue) == (
        "SessionsTable",
        "BillingFunction",
        "IngestDeadLetterQueue",
    )
    assert billing.reports_item_failures and billing.max_retries == 5


@pytest.mark.parametrize(
    ("pattern", "record", "passes"),
    [
        ({"a": {"b": ["x", "y"]}}, {"a": {"b": "y"}}, True),
        ({"a": {"b": ["x"]}}, {"a": {"b": "z"}}, False),
        ({"a": {"b": ["x"]}}, {"a": {}}, False),
        ({"a": [{"exists": False}]}, {"b": 1}, True),
        ({"a": [{"exists": True}]}, {"b": 1}, False),
    ],
)
def test_stream_filter_patterns(pattern, record, passes):
    from chargenet_local.streams import matches

    assert matches(pattern, record) is passes


def test_the_templates_ingest_rules_pass_the_publishers_certificate_and_their_ocpp_version():
    from chargenet.services.ingest import IngestEvent

    template = load(ROOT / "template.yaml", region="us-east-1", overrides={"IotDataEndpoint": "https://x"})
    rules = {r.name: r for r in template.rules() if r.function == "OcppIngestFunction"}
    assert set(rules) == {"chargenet_ocpp_ingest", "chargenet_ocpp_ingest_ocpp201"}
    principal = "ab" * 32
    for name, version in (
        ("chargenet_ocpp_ingest", "ocpp1.6"),
        ("chargenet_ocpp_ingest_ocpp201", "ocpp2.0.1"),
    ):
        out = Rule.parse(name, rules[name].sql).evaluate(
            Message("chargers/CP-1/in", b'[2,"1","Heartbeat",{}]', "CP-1", 1700000000000, principal)
        )
        assert out is not None and out["principal"] == principal
        event = IngestEvent.model_validate(out)
        assert (event.principal, event.ocpp_version) == (principal, version)


def test_the_broker_stamp_gives_the_principal_and_the_topic_as_published():
    from chargenet_local.broker import PRINCIPAL_STAMP, STAMPED_RULES_FILTER, split_principal

    published = "$aws/rules/chargenet_ocpp_ingest/chargers/CP-1/in"
    stamped = f"{PRINCIPAL_STAMP}{'ab' * 32}/{published}"
    assert split_principal(stamped) == ("ab" * 32, published)
    assert split_principal(published) == (None, published)  # unstamped: no principal is made up
    assert topic_matches(STAMPED_RULES_FILTER, stamped)
    assert not topic_matches(STAMPED_RULES_FILTER, published)
