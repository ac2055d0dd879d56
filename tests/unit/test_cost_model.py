"""The cost model's arithmetic, on a small case computed by hand (Decimal, exact dollars)."""

from decimal import Decimal

import pytest

from chargenet_cli.cost_model import Assumptions, Counts, Ops, as_json, frames_per_month, monthly_cost

D = Decimal


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
            ),
            "MeterValues": Ops(
                iot_messages=D(2),
                rules_triggered=D(1),
                rule_actions=D(1),
                lambda_requests=D(1),
                lambda_gb_seconds=D("0.02"),
                dynamodb_write_units=D(2),
                dynamodb_read_units=D(1),
            ),
            "StartTransaction": Ops(lambda_requests=D(1)),
            "BootNotification": Ops(),
        },
        session_frames={"StartTransaction": D(1)},
        per_session=Ops(sns_publishes=D(1)),
        per_presence_event=Ops(),
        scheduled={},
        custom_metrics=10,
        alarms=5,
        secrets=2,
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
    by = estimate.by_service
    assert by["iot_core_messaging"] == D("0.0018")
    assert by["iot_core_connectivity"] == D("0.003456")  # 43,200 minutes at $0.08 per million
    assert by["iot_core_rules"] == D("0.00027")
    assert by["lambda"] == D("0.000186") + D("10.8") * D("0.0000133334")
    assert by["lambda"] == D("0.00033000072")
    assert by["dynamodb"] == D("0.0007425")
    assert by["sns"] == D("0.000015")
    assert by["cloudwatch"] == D("0.35")  # (10 x 0.30 + 5 x 0.10) / 10 chargers
    assert by["secrets_manager"] == D("0.08")
    assert by["api_gateway"] == D(0)
    assert estimate.per_charger_month == D("0.43661350072")
    assert estimate.per_session == D("0.43661350072") / 30
    assert estimate.fleet_month == D("4.3661350072")
    report = as_json(estimate)
    assert report["usd_per_charger_month"] == "0.4366"
    assert report["usd_per_session"] == "0.0146"


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
