"""The cost model's arithmetic, on a small case computed by hand (Decimal, exact dollars)."""

from decimal import Decimal

import pytest

from chargenet_cli.cost_model import (
    GB,
    LINE_ITEMS,
    MONTH_S,
    Assumptions,
    Counts,
    Deployment,
    Ops,
    TableGrowth,
    TimedWrite,
    as_json,
    cents,
    frames_per_month,
    monthly_cost,
    timed_writes_per_month,
    xray_traces_per_month,
)

D = Decimal

DEPLOYMENT = Deployment(
    alarms=5,
    dashboards=1,
    secrets=2,
    kms_customer_keys=2,
    kms_requests_per_month=D(100_000),
    log_retention_days=60,
    session_data_retention_days=300,
)


def counts(**overrides):
    base = dict(
        per_frame={
            "Heartbeat": Ops(
                iot_messages=D(2),
                rules_triggered=D(1),
                rule_actions=D(1),
                lambda_requests=D(1),
                lambda_gb_seconds=D("0.01"),
                dynamodb_write_units=D(1),
                dynamodb_read_units=D("0.5"),
                log_bytes=D(100),
            ),
            "MeterValues": Ops(
                iot_messages=D(2),
                rules_triggered=D(1),
                rule_actions=D(1),
                lambda_requests=D(1),
                lambda_gb_seconds=D("0.02"),
                dynamodb_write_units=D(2),
                dynamodb_index_write_units=D(1),
                dynamodb_read_units=D(1),
                log_bytes=D(200),
            ),
            "StartTransaction": Ops(lambda_requests=D(1)),
            "BootNotification": Ops(),
        },
        session_frames={"StartTransaction": D(1)},
        per_session=Ops(sns_publishes=D(1)),
        per_presence_event=Ops(),
        scheduled={},
        custom_metrics=10,
        deployment=DEPLOYMENT,
        timed_writes={"last_seen": TimedWrite(every_s=60, write_units=D(1))},
        storage={
            "SessionEventsTable": TableGrowth(D(1000), "MeterValues", "session_data"),
            "SessionsTable": TableGrowth(D(2000), "session", "kept"),
            "ChargersTable": TableGrowth(D(5000), "charger", "kept"),
        },
    )
    return Counts(**{**base, **overrides})


ASSUME = Assumptions(
    chargers=10, sessions_per_day=D(1), meter_interval_s=600, heartbeat_s=3600, session_minutes=D(60)
)


def test_frames_per_month():
    frames = frames_per_month(counts(), ASSUME)
    # 30 sessions of 6 meter values; a heartbeat an hour for 30 days; one boot
    assert frames == {
        "StartTransaction": D(30),
        "MeterValues": D(180),
        "Heartbeat": D(720),
        "BootNotification": D(1),
    }


def test_hand_computed_dollars():
    estimate = monthly_cost(counts(), ASSUME)
    ops = estimate.monthly_ops_per_charger
    assert ops.iot_messages == D(1800)
    assert ops.lambda_requests == D(930)
    assert ops.lambda_gb_seconds == D("10.80")
    assert (ops.dynamodb_write_units, ops.dynamodb_read_units) == (D(1080), D("540.0"))
    assert ops.dynamodb_index_write_units == D(180)  # one index write per MeterValues
    assert ops.log_bytes == D(108_000)  # 720 x 100 + 180 x 200
    by = estimate.by_service
    assert set(by) == set(LINE_ITEMS)
    assert by["iot_core_messaging"] == D("0.0018")
    assert by["iot_core_connectivity"] == D("0.003456")  # 43,200 minutes at $0.08 per million
    assert by["iot_core_rules"] == D("0.00027")
    assert by["lambda_requests"] == D("0.000186")
    assert by["lambda_compute"] == D("10.8") * D("0.0000133334") == D("0.00014400072")
    assert by["dynamodb_writes"] == D("0.000675")
    assert by["dynamodb_index_writes"] == D("0.0001125")
    # last_seen: 180 while charging (a frame each 600 s) + 690 idle (a Heartbeat an hour), 1 WCU each
    assert estimate.timed_writes_per_month == {"last_seen": D(870)}
    assert by["dynamodb_timed_writes"] == D("0.00054375")
    assert by["dynamodb_reads"] == D("0.0000675")
    # events 1,000 B x 180 readings x 10 months (300 days) + sessions 2,000 B x 30 x 12 months + 5,000 B
    assert estimate.stored_gb * GB == D(2_525_000)
    assert by["dynamodb_storage"] == D(2_525_000) / GB * D("0.25")
    assert by["dynamodb_backups"] == D(2_525_000) / GB * D("0.20")
    logged = D(108_000 + 930 * 270)  # the functions' lines + Lambda's START/END/REPORT per request
    assert by["logs_ingestion"] == logged / GB * D("0.50")
    assert by["logs_storage"] == logged / GB * 2 * D("0.03")  # 60 days kept
    assert by["xray"] == D(0)  # PassThrough
    assert by["cloudwatch_metrics"] == D("0.3")  # 10 x $0.30 / 10 chargers
    assert by["cloudwatch_alarms"] == D("0.05")
    assert by["cloudwatch_dashboards"] == D("0.3")
    assert by["kms_keys"] == D("0.2")
    assert by["kms_requests"] == D("0.03")  # 100,000 requests at $0.03 per 10,000, / 10 chargers
    assert by["sns"] == D("0.000015")
    assert by["secrets_manager"] == D("0.08")
    assert by["api_gateway"] == D(0)
    assert estimate.per_charger_month == sum(by.values())
    assert estimate.per_session == estimate.per_charger_month / 30
    assert estimate.fleet_month == estimate.per_charger_month * 10
    report = as_json(estimate)
    assert report["usd_per_charger_month"] == str(cents(estimate.per_charger_month))
    assert report["timed_writes_per_charger_month"] == {"last_seen": "870.0"}


def test_active_tracing_records_the_default_rules_sample():
    active = Deployment(**{**DEPLOYMENT.__dict__, "tracing_active": True})
    estimate = monthly_cost(counts(deployment=active), ASSUME)
    # 9,300 requests a month for the fleet: far under one a second, so every one is traced
    assert estimate.xray_traces_per_month == D(930)
    assert estimate.by_service["xray"] == D("0.00465")


def test_xray_reservoir_then_five_percent():
    three_a_second = D(3 * MONTH_S)
    assert xray_traces_per_month(three_a_second) == D("1.1") * MONTH_S


@pytest.mark.parametrize(
    ("change", "writes"),
    [
        ({}, D(870)),
        ({"heartbeat_at_shim": True}, D(180)),  # idle: no frames, no writes
        ({"heartbeat_s": 30}, D(MONTH_S) / 60),  # a frame every 30 s: one write a minute, all month
        ({"meter_interval_s": 10}, D(108_000) / 60 + 690),
    ],
)
def test_time_based_writes_follow_the_real_cadence(change, writes):
    a = Assumptions(**{**ASSUME.__dict__, **change})
    assert timed_writes_per_month(60, a) == writes


def test_data_kept_without_a_ttl_grows_with_the_deployments_age():
    young = monthly_cost(counts(), Assumptions(**{**ASSUME.__dict__, "kept_data_months": D(1)}))
    old = monthly_cost(counts(), ASSUME)
    assert (old.stored_gb - young.stored_gb) * GB == 2000 * 30 * 11


def test_heartbeat_at_shim_removes_heartbeats():
    at_shim = monthly_cost(counts(), Assumptions(**{**ASSUME.__dict__, "heartbeat_at_shim": True}))
    assert at_shim.frames_per_month["Heartbeat"] == 0
    assert at_shim.monthly_ops_per_charger.iot_messages == D(360)


def test_scheduled_requests_are_shared_by_the_fleet():
    scheduled = {
        "Sweep": (D(1000), Ops(lambda_requests=D(1), lambda_gb_seconds=D("0.5"), dynamodb_read_units=D(2)))
    }
    base = monthly_cost(counts(), ASSUME).monthly_ops_per_charger
    with_sweep = monthly_cost(counts(scheduled=scheduled), ASSUME).monthly_ops_per_charger
    assert with_sweep.lambda_requests - base.lambda_requests == D(100)  # 1000 runs / 10 chargers
    assert with_sweep.lambda_gb_seconds - base.lambda_gb_seconds == D(50)
    assert with_sweep.dynamodb_read_units - base.dynamodb_read_units == D(2000)  # per charger already


def test_missing_profile_is_an_error():
    per_frame = dict(counts().per_frame)
    del per_frame["MeterValues"]
    with pytest.raises(ValueError, match="MeterValues"):
        monthly_cost(counts(per_frame=per_frame), ASSUME)


@pytest.mark.parametrize(
    "change",
    [{"chargers": 0}, {"sessions_per_day": D(-1)}, {"meter_interval_s": 0}, {"session_minutes": D(0)}],
)
def test_invalid_assumptions(change):
    with pytest.raises(ValueError):
        monthly_cost(counts(), Assumptions(**{**ASSUME.__dict__, **change}))


def test_counts_from_json_rejects_unknown_operations():
    with pytest.raises(ValueError, match="unknown operation"):
        Ops.from_json({"iot_messages": 1, "carrier_pigeons": 2})
