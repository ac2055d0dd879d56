"""The fleet-scale benchmark's pure parts: percentiles, the session plan, when a step counts as sustained."""

from bench import fleet_scale


def _step(**changes):
    step = fleet_scale.StepResult(chargers=4, speed=6.0, came_up=4, sessions_ok=4)
    step.store_latency_s = [0.1] * 98 + [0.5, 9.0]
    step.broker_rtt_s = [0.001] * 10
    for name, value in changes.items():
        setattr(step, name, value)
    return step


def test_percentiles_take_the_99th_sample_of_the_ordered_list():
    result = fleet_scale._percentiles([float(n) for n in range(100, 0, -1)])
    assert result == {"samples": 100, "p50": 50.5, "p99": 99.0, "max": 100.0}


def test_no_samples_give_no_percentiles():
    assert fleet_scale._percentiles([])["p99"] is None


def test_the_plan_charges_for_the_asked_simulated_time_below_the_taper():
    plan = fleet_scale._plan(540)
    hours = (plan.target_soc - plan.start_soc) / 100 * plan.battery_kwh / plan.max_power_kw
    assert abs(hours * 3600 - 540) < 2
    assert plan.target_soc <= 80 and plan.meter_interval_s == fleet_scale.METER_INTERVAL_S


def test_a_step_is_sustained_within_the_p99_limit_with_every_charger_charging():
    summary = fleet_scale._step_summary(_step(), max_p99_s=1.0)
    assert summary["sustained"] and summary["equivalent_chargers"] == 24
    assert summary["publish_to_dynamodb_p50_vs_broker_rtt"] == 100.0


def test_a_slow_p99_a_failed_session_or_a_charger_not_up_is_not_sustained():
    assert not fleet_scale._step_summary(_step(), max_p99_s=0.2)["sustained"]
    assert not fleet_scale._step_summary(_step(sessions_failed=1), max_p99_s=1.0)["sustained"]
    assert not fleet_scale._step_summary(_step(came_up=3), max_p99_s=1.0)["sustained"]
    assert not fleet_scale._step_summary(_step(store_latency_s=[]), max_p99_s=1.0)["sustained"]
