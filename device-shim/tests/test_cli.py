import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from chargenet_shim import cli
from chargenet_shim.cli import main
from chargenet_shim.credentials import ChargerCredentials, verify_password

SCRIPT = Path(sys.executable).parent / "chargenet-shim"


def _charger_folder(tmp_path: Path, charger_id: str = "CP-001") -> Path:
    folder = tmp_path / charger_id
    folder.mkdir()
    ChargerCredentials(
        charger_id=charger_id,
        mqtt_host="localhost",
        mqtt_port=8883,
        ingest_rule="chargenet_ocpp_ingest",
        ca_path=Path("ca.pem"),
        cert_path=Path("cert.pem"),
        key_path=Path("key.pem"),
    ).save(folder)
    return folder


def _run(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SCRIPT), *args], input=stdin, capture_output=True, text=True, timeout=20)


def test_set_password_reads_stdin_and_stores_only_a_hash(tmp_path):
    folder = _charger_folder(tmp_path)

    done = _run("set-password", str(folder), stdin="hunter2-but-longer\n")

    assert done.returncode == 0, done.stderr
    stored = ChargerCredentials.load(folder).password_hash
    assert stored is not None and verify_password("hunter2-but-longer", stored)
    assert "hunter2" not in (folder / "charger.json").read_text() + done.stdout + done.stderr
    assert json.loads((folder / "charger.json").read_text())["cert_path"] == "cert.pem"


def test_set_password_refuses_an_empty_password(tmp_path):
    folder = _charger_folder(tmp_path)

    done = _run("set-password", str(folder), stdin="\n")

    assert done.returncode == 2
    assert "empty password" in done.stderr
    assert ChargerCredentials.load(folder).password_hash is None


def test_set_password_refuses_a_password_under_16_bytes(tmp_path, capsys, monkeypatch):
    # Issue 20: any non-empty password was hashed and stored.
    folder = _charger_folder(tmp_path)
    monkeypatch.setattr("sys.stdin", io.StringIO("fifteen-chars-x\n"))

    assert main(["set-password", str(folder)]) == 2
    assert "password too short: at least 16 bytes" in capsys.readouterr().err
    assert ChargerCredentials.load(folder).password_hash is None


def test_set_password_on_a_folder_without_credentials_fails_clearly(tmp_path, capsys):
    assert main(["set-password", str(tmp_path)]) == 2
    assert "charger.json" in capsys.readouterr().err


def test_simulate_rejects_unknown_charger_ids(tmp_path, capsys):
    _charger_folder(tmp_path)

    assert main(["simulate", "--credentials-dir", str(tmp_path), "--chargers", "CP-001,CP-404"]) == 2
    assert "unknown charger ids: CP-404" in capsys.readouterr().err


def test_simulate_needs_an_existing_directory(tmp_path, capsys):
    assert main(["simulate", "--credentials-dir", str(tmp_path / "missing")]) == 2
    assert "not a directory" in capsys.readouterr().err


def test_session_options_without_sessions_are_a_usage_error(tmp_path, capsys):
    _charger_folder(tmp_path)

    assert main(["simulate", "--credentials-dir", str(tmp_path), "--speed", "60", "--seed", "3"]) == 2
    assert "--speed, --seed only with --sessions" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--sessions", "0"], "--sessions must be at least 1"),
        (["--sessions", "1", "--speed", "0"], "--speed must be positive"),
        (["--sessions", "1", "--duplicate", "1.5"], "duplicate is a probability"),
    ],
)
def test_nonsense_session_options_are_usage_errors(tmp_path, capsys, options, message):
    _charger_folder(tmp_path)

    assert main(["simulate", "--credentials-dir", str(tmp_path), *options]) == 2
    assert message in capsys.readouterr().err


def test_gateway_profile_2_without_a_certificate_is_a_usage_error(tmp_path, capsys):
    assert main(["gateway", "--credentials-dir", str(tmp_path), "--port", "0", "--profile", "2"]) == 2
    assert "profile 2 needs tls_cert and tls_key" in capsys.readouterr().err


@pytest.mark.timeout(20)  # a gateway that starts anyway serves until stopped
def test_gateway_profile_1_without_allow_plain_ws_is_a_usage_error(tmp_path, capsys):
    # Issue 20: plain ws (passwords in clear) was the default profile, with nothing saying so.
    assert main(["gateway", "--credentials-dir", str(tmp_path), "--port", "0", "--profile", "1"]) == 2
    err = capsys.readouterr().err
    assert "profile 1 is plain ws" in err and "trusted site LAN only" in err and "--allow-plain-ws" in err


def test_gateway_allow_plain_ws_runs_profile_1(tmp_path, monkeypatch):
    started = []

    async def run_gateway(config):
        started.append(config)

    monkeypatch.setattr(cli, "_run_gateway", run_gateway)

    assert main(["gateway", "--credentials-dir", str(tmp_path), "--port", "0", "--allow-plain-ws"]) == 0
    assert [(c.security_profile, c.allow_plain_ws) for c in started] == [(1, True)]


def test_the_gateways_help_says_it_speaks_ocpp_j_16_and_201(capsys):
    for help_of in (["--help"], ["gateway", "--help"]):
        with pytest.raises(SystemExit) as exited:
            main(help_of)
        assert exited.value.code == 0
    printed = " ".join(capsys.readouterr().out.split())  # argparse wraps its lines

    assert "gateway OCPP-J 1.6 and 2.0.1 WebSocket gateway" in printed
    assert "speaks the subprotocol it offers, ocpp2.0.1 or ocpp1.6 (2.0.1 when it offers both)" in printed


def test_bad_arguments_exit_non_zero():
    done = _run("gateway", "--port", "not-a-port")

    assert done.returncode == 2
    assert "--credentials-dir" in done.stderr


@pytest.mark.integration
@pytest.mark.timeout(30)
def test_simulate_boots_the_chosen_chargers_and_prints_a_table(provision, backend, credentials_dir, capsys):
    chosen, other = provision(), provision()

    status = main(["simulate", "--credentials-dir", str(credentials_dir), "--chargers", chosen.charger_id])

    lines = capsys.readouterr().out.splitlines()
    assert status == 0
    assert lines[0].split() == ["charger", "ocpp", "connected", "boot", "interval", "boot", "ms", "error"]
    assert lines[1].split()[:5] == [
        chosen.charger_id,
        "1.6",
        "yes",
        "Accepted",
        str(backend.heartbeat_interval),
    ]
    assert len(lines) == 2
    assert backend.frames(other.charger_id) == []
