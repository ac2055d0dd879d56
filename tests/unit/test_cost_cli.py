"""`chargenet cost`: argument validation and output from a counts file."""

import json

import pytest

from chargenet_cli.cost_model import LINE_ITEMS
from chargenet_cli.main import main, parser

ARGS = [
    "cost",
    "--chargers",
    "10",
    "--sessions-per-day",
    "1",
    "--meter-interval-s",
    "600",
    "--heartbeat-s",
    "3600",
]

COUNTS = {
    "profile": {
        "per_frame": {
            "Heartbeat": {"iot_messages": 2, "rules_triggered": 1, "rule_actions": 1, "lambda_requests": 1},
            "MeterValues": {"iot_messages": 2, "lambda_requests": 1, "dynamodb_write_units": 2},
            "StartTransaction": {"lambda_requests": 1},
            "BootNotification": {},
        },
        "session_frames": {"StartTransaction": 1},
        "per_session": {"sns_publishes": 1},
        "per_presence_event": {},
        "scheduled": {"Sweep": {"runs_per_month": 43200, "per_run": {"lambda_requests": 1}}},
        "custom_metrics": 10,
        "alarms": 5,
        "secrets": 2,
    }
}


@pytest.mark.parametrize(
    "bad",
    [
        ["--chargers", "0"],
        ["--chargers", "ten"],
        ["--sessions-per-day", "-1"],
        ["--sessions-per-day", "nan"],
        ["--meter-interval-s", "0"],
        ["--heartbeat-s", "1.5"],
        ["--session-minutes", "0"],
    ],
)
def test_rejects_bad_arguments(bad, capsys):
    argv = list(ARGS)
    flag = argv.index(bad[0]) if bad[0] in argv else None
    if flag is None:
        argv += bad
    else:
        argv[flag + 1] = bad[1]
    with pytest.raises(SystemExit) as exit_:
        parser().parse_args(argv)
    assert exit_.value.code == 2
    assert bad[0] in capsys.readouterr().err


def test_requires_the_assumptions():
    with pytest.raises(SystemExit):
        parser().parse_args(["cost", "--chargers", "10"])


def test_prints_the_breakdown_and_json(tmp_path, capsys):
    path = tmp_path / "counts.json"
    path.write_text(json.dumps(COUNTS))
    assert main([*ARGS, "--counts", str(path)]) == 0
    text = capsys.readouterr().out
    assert "per charger-month: $" in text and "per session:" in text and "AWS OCPP gateway sample" in text
    assert main([*ARGS, "--counts", str(path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["counts_file"] == str(path)
    assert set(report["by_service_usd_per_charger_month"]) == set(LINE_ITEMS)
    assert all(label in text for label in LINE_ITEMS.values())  # a line per item, zero or not
    assert report["assumptions"]["chargers"] == 10


def test_unreadable_counts_file_is_a_cli_error(tmp_path, capsys):
    assert main([*ARGS, "--counts", str(tmp_path / "missing.json")]) == 1
    assert "cannot read counts" in capsys.readouterr().err


def test_lambda_duration_picks_the_cpu_profile(tmp_path, capsys):
    path = tmp_path / "counts.json"
    cpu = json.loads(json.dumps(COUNTS["profile"]))
    cpu["per_frame"]["Heartbeat"]["lambda_gb_seconds"] = 0
    path.write_text(json.dumps({**COUNTS, "profile_cpu": cpu}))
    assert main([*ARGS, "--counts", str(path), "--lambda-duration", "cpu", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["lambda_duration"] == "cpu"
    with pytest.raises(SystemExit):
        parser().parse_args([*ARGS, "--lambda-duration", "gpu"])


def test_shipped_counts_file_is_readable():
    from pathlib import Path

    from chargenet_cli.cost_model import load_counts

    shipped = Path(__file__).resolve().parents[2] / "docs" / "cost_counts.json"
    for duration in ("wall", "cpu"):
        assert load_counts(shipped, duration).per_frame["MeterValues"].lambda_requests > 0
