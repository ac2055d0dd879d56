import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from chargenet_cli.main import main

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "tariffs"
DOCS = ROOT / "docs" / "tariffs"
SESSION = {
    "start": "2025-03-03T10:00:00+01:00",
    "periods": [
        {"minutes": 60, "energy_kwh": 20, "power_kw": 20, "parking": False},
        {"minutes": 40, "energy_kwh": 0, "parking": True},
    ],
}


@pytest.fixture
def session_file(tmp_path):
    path = tmp_path / "session.json"
    path.write_text(json.dumps(SESSION))
    return path


def run(capsys, *args):
    code = main(["tariff", "price", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def test_price_json_has_the_cdr_cost_fields_with_decimals_as_strings(capsys, session_file):
    code, out, err = run(capsys, FIXTURES / "energy_flat_parking.json", session_file, "--json")
    assert (code, err) == (0, "")
    cdr = json.loads(out)
    assert cdr["total_cost"] == {"excl_vat": "7.00", "incl_vat": "7.90"}
    assert cdr["total_fixed_cost"] == {"excl_vat": "0.50", "incl_vat": "0.60"}
    assert cdr["total_energy_cost"] == {"excl_vat": "5.00", "incl_vat": "5.50"}
    assert cdr["total_parking_cost"] == {"excl_vat": "1.50", "incl_vat": "1.80"}
    assert cdr["total_time_cost"] == {"excl_vat": "0.00", "incl_vat": "0.00"}
    assert (cdr["total_energy"], cdr["total_time"], cdr["total_parking_time"]) == (
        "20",
        "1.666667",
        "0.666667",
    )
    assert cdr["currency"] == "EUR"
    assert [p["start_date_time"] for p in cdr["charging_periods"]] == [
        "2025-03-03T09:00:00Z",
        "2025-03-03T10:00:00Z",
    ]
    assert cdr["charging_periods"][0]["dimensions"] == [
        {"type": "ENERGY", "volume": "20"},
        {"type": "TIME", "volume": "1"},
        {"type": "POWER", "volume": "20"},
    ]
    assert cdr["charging_periods"][1]["tariff_id"] == "energy-flat-parking"


def test_price_table_for_people(capsys, session_file):
    code, out, _ = run(capsys, FIXTURES / "energy_flat_parking.json", session_file)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["LINE", "VOLUME", "EXCL", "VAT", "(EUR)", "INCL", "VAT", "(EUR)"]
    assert lines[2].split() == ["flat", "fee", "-", "0.50", "0.60"]
    assert lines[3].split() == ["energy", "20", "kWh", "5.00", "5.50"]
    assert lines[4].split() == ["charging", "time", "1", "h", "0.00", "0.00"]
    assert lines[5].split() == ["parking", "time", "0.666667", "h", "1.50", "1.80"]
    assert lines[6].split() == ["total", "1.666667", "h", "7.00", "7.90"]
    assert "2025-03-03 10:00:00  PARKING_TIME 0.666667" in out
    assert "note: PARKING_TIME: 2400 s billed as 2700 s (rounded up to steps of 900 s)" in out


def test_the_documented_example_prices_as_documented(capsys):
    code, out, _ = run(capsys, DOCS / "example-tariff.json", DOCS / "example-session.json", "--json")
    assert code == 0
    cdr = json.loads(out)
    # 5.5 kWh by day, 22 kWh by night, 45 min of parking past the 2 h mark, start fee
    assert cdr["total_energy_cost"] == {"excl_vat": "7.26", "incl_vat": "9.08"}
    assert cdr["total_parking_cost"] == {"excl_vat": "4.50", "incl_vat": "5.63"}
    assert cdr["total_cost"] == {"excl_vat": "12.26", "incl_vat": "15.34"}
    assert cdr["time_zone"] == "+01:00"


@pytest.mark.parametrize(
    ("start", "incl_vat"),
    [
        ("2025-03-01T20:30:00Z", "15.34"),  # 21:30 in Stockholm in winter, as a charger reports it
        ("2025-07-01T19:30:00Z", "15.34"),  # 21:30 in summer
        ("2025-07-01T21:30:00+02:00", "15.34"),  # the same instant, any offset
        ("2025-07-01T20:30:00Z", "14.51"),  # 22:30 local: 27.5 kWh at the night rate, 0.24 (8.25 incl.)
    ],
)
def test_a_session_with_its_sites_time_zone_is_priced_on_local_time(capsys, tmp_path, start, incl_vat):
    session = json.loads((DOCS / "example-session.json").read_text())
    path = tmp_path / "session.json"
    path.write_text(json.dumps({**session, "start": start, "time_zone": "Europe/Stockholm"}))
    code, out, _ = run(capsys, DOCS / "example-tariff.json", path, "--json")
    assert code == 0
    cdr = json.loads(out)
    assert (cdr["total_cost"]["incl_vat"], cdr["time_zone"]) == (incl_vat, "Europe/Stockholm")
    code, out, _ = run(capsys, DOCS / "example-tariff.json", path)
    assert "time restrictions read on the wall clock of Europe/Stockholm" in out


@pytest.mark.parametrize(
    ("tariff_text", "session_text", "exit_code", "message"),
    [
        (None, json.dumps(SESSION), 2, "tariff.json: no such file"),
        ("{not json", json.dumps(SESSION), 1, "tariff.json: invalid tariff: not valid JSON: "),
        (
            json.dumps(
                {"country_code": "NL", "party_id": "CNT", "id": "T", "currency": "EUR", "elements": []}
            ),
            json.dumps(SESSION),
            1,
            "tariff.json: invalid tariff (2 problems):\n  elements: List should have at least 1 item",
        ),
        (
            (FIXTURES / "energy_025.json").read_text(),
            json.dumps({"start": "2025-03-03T10:00:00+01:00", "periods": [{"minutes": -5}]}),
            1,
            "session.json: invalid session (1 problem):\n  periods[0].minutes: Input should be greater than 0",
        ),
        (
            (FIXTURES / "energy_025.json").read_text(),
            json.dumps({"start": "2025-03-03T09:00:00Z", "time_zone": "Europe/Atlantis", "periods": []}),
            1,
            "session.json: invalid session (1 problem):\n  time_zone: unknown time zone 'Europe/Atlantis'",
        ),
        (
            (FIXTURES / "max_price.json").read_text(),
            json.dumps({"start": "2031-01-01T10:00:00+01:00", "periods": []}),
            1,
            "tariff max-price is not in force at 2031-01-01T10:00:00+01:00",
        ),
    ],
)
def test_bad_input_gets_a_message_and_a_non_zero_exit(
    capsys, tmp_path, tariff_text, session_text, exit_code, message
):
    tariff_path, session_path = tmp_path / "tariff.json", tmp_path / "session.json"
    if tariff_text is not None:
        tariff_path.write_text(tariff_text)
    session_path.write_text(session_text)
    code, out, err = run(capsys, tariff_path, session_path)
    assert (code, out) == (exit_code, "")
    assert err.startswith("chargenet: error: ")
    assert message in err
    assert "Traceback" not in err


def test_a_directory_is_not_a_file(capsys, tmp_path, session_file):
    code, _, err = run(capsys, tmp_path, session_file)
    assert code == 2
    assert "cannot read" in err


def test_tariff_needs_a_subcommand(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["tariff"])
    assert exited.value.code == 2
    assert "price" in capsys.readouterr().err


def test_runs_as_a_program_without_any_stack(tmp_path, session_file):
    # no local stack, no AWS endpoint or credentials: pricing is pure
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "CHARGENET_"))}
    env["CHARGENET_HOME"] = str(tmp_path / "no-stack-here")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "chargenet_cli.main",
            "tariff",
            "price",
            str(FIXTURES / "energy_flat_parking.json"),
            str(session_file),
            "--json",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["total_cost"] == {"excl_vat": "7.00", "incl_vat": "7.90"}
    assert not (tmp_path / "no-stack-here").exists()


def test_the_tariff_command_imports_no_aws_sdk():
    probe = "import sys, chargenet_cli.tariff_cmd; print(sorted(m for m in sys.modules if m.split('.')[0] in ('boto3', 'botocore', 'pynamodb')))"
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "[]"
