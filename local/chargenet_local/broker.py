"""mosquitto as the local IoT Core message broker.

The configuration mirrors the template's IoT policy: a client must present a
certificate from the local CA (checked against the CRL), its certificate's CN
becomes its user name, and the ACL lets a charger touch only its own topics.
mosquitto has no lifecycle events, so its connection log is turned into
`$aws/events/presence/...` events the way IoT Core would publish them. Nor does MQTT tell a
subscriber which certificate a publisher connected with, which IoT Core's principal() gives a
rule: with `stamp_principals` a small mosquitto plugin (principal_plugin.c, built with the system
C compiler) delivers each Basic Ingest publish under PRINCIPAL_STAMP + that certificate's id.

For the chaos run and tests, `restart_broker` takes mosquitto down and up again (local only:
IoT Core has no restart to mimic, but a broker that loses every session is what a charger and
the stack's own MQTT clients must survive).
"""

from __future__ import annotations

import getpass
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from awsiot import mqtt_connection_builder

from chargenet.domain.provisioning import CLAIM_COMMON_NAME
from chargenet_local.children import die_with_parent
from chargenet_local.httpserve import HttpServer, Request, Response, json_response

if TYPE_CHECKING:
    from chargenet_local.stack import StackState

BACKEND_USER = "chargenet-backend"
# The CN of every factory claim certificate (chargenet provisioning claim-certificate puts it in
# the CSR, moto_iot signs the CN asked for): one ACL user for all batches, and not a charger id
# (':'), so the charger patterns below name only topics no charger has. The template's
# ProvisioningClaimPolicy is the cloud's counterpart.
CLAIM_USER = CLAIM_COMMON_NAME

# `$aws/rules/...` as the principal plugin delivers it: PRINCIPAL_STAMP<certificate id>/$aws/rules/...
PRINCIPAL_STAMP = "$chargenet/principal/"
STAMPED_RULES_FILTER = PRINCIPAL_STAMP + "+/$aws/rules/#"
_PLUGIN_SOURCE = Path(__file__).with_name("principal_plugin.c")

MOSQUITTO_CONF = """\
per_listener_settings false
user {user}
persistence false
allow_anonymous false
log_dest stdout
log_type error
log_type warning
log_type notice
log_type information
connection_messages true
log_timestamp true
log_timestamp_format %Y-%m-%dT%H:%M:%S
max_packet_size {max_packet}
acl_file {acl}

listener {port} 127.0.0.1
protocol mqtt
cafile {ca}
certfile {cert}
keyfile {key}
crlfile {crl}
require_certificate true
use_identity_as_username true
tls_version tlsv1.2
"""

# Mirrors ChargerPolicy in template.yaml: %u is the certificate's CN (= thing name = charger id).
ACL = f"""\
user {BACKEND_USER}
topic readwrite #
topic readwrite $aws/#
topic read {PRINCIPAL_STAMP}#

user {CLAIM_USER}
topic write $aws/certificates/create-from-csr/json
topic read $aws/certificates/create-from-csr/json/+
topic write $aws/provisioning-templates/+/provision/json
topic read $aws/provisioning-templates/+/provision/json/+

pattern write $aws/rules/+/chargers/%u/in
pattern read chargers/%u/out
pattern write $aws/things/%u/jobs/start-next
pattern write $aws/things/%u/jobs/+/update
pattern read $aws/things/%u/jobs/notify-next
pattern read $aws/things/%u/jobs/start-next/+
pattern read $aws/things/%u/jobs/+/update/+
"""


@dataclass(frozen=True)
class PresenceChange:
    client_id: str
    connected: bool
    reason: str


_CONNECTED = re.compile(r"New client connected from \S+ as (?P<id>\S+) \(.*u'(?P<user>[^']*)'\)")
_DISCONNECTED = re.compile(
    r"(?:Client (?P<a>\S+) (?P<why>disconnected|closed its connection|has exceeded timeout"
    r"|already connected, closing old connection)"
    r"|Socket error on client (?P<b>\S+), disconnecting)"
)
_RELOADED = "Reloading config."
RESEND_SIGHUP_S = 2.0
# mosquitto 2.0 logs "mosquitto version 2.0.11 running" once its listeners are open.
_RUNNING = re.compile(rb"mosquitto version \S+ running")
RESTART_PATH = "/broker/restart"
MAX_DOWN_S = 600.0
# Beyond the requested downtime: mosquitto starting and the stack's connection back, on a busy machine.
RESTART_TIMEOUT_S = 60.0


def parse_presence(line: str) -> PresenceChange | None:
    """Read a connect or disconnect out of one mosquitto log line."""
    if m := _CONNECTED.search(line):
        return PresenceChange(m["id"], True, "")
    if m := _DISCONNECTED.search(line):
        client = m["a"] or m["b"]
        why = m["why"] or "socket error"
        reason = {
            "disconnected": "CLIENT_INITIATED_DISCONNECT",
            "closed its connection": "CONNECTION_LOST",
            "has exceeded timeout": "MQTT_KEEP_ALIVE_TIMEOUT",
            # Another connection took the client id over (IoT Core's reason for the same).
            "already connected, closing old connection": "DUPLICATE_CLIENTID",
        }.get(why, "CONNECTION_LOST")
        return PresenceChange(client, False, reason)
    return None


def split_principal(topic: str) -> tuple[str | None, str]:
    """(the certificate id the plugin stamped, the topic as published); (None, topic) unstamped."""
    if not topic.startswith(PRINCIPAL_STAMP):
        return None, topic
    principal, _, published = topic[len(PRINCIPAL_STAMP) :].partition("/")
    return principal, published


def build_principal_plugin(folder: Path) -> Path:
    """Compile principal_plugin.c into `folder` (once per source change); a clear error without a compiler."""
    target = folder / "principal_plugin.so"
    if target.exists() and target.stat().st_mtime >= _PLUGIN_SOURCE.stat().st_mtime:
        return target
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        raise RuntimeError("a C compiler is needed for the broker's principal plugin: run `make deps`")
    command = [compiler, "-shared", "-fPIC", "-O2", "-o", str(target), str(_PLUGIN_SOURCE)]
    built = subprocess.run(command, capture_output=True, text=True)
    if built.returncode != 0:
        raise RuntimeError(
            "the broker's principal plugin did not build (`make deps` installs mosquitto-dev, "
            f"libmosquitto-dev and libssl-dev):\n{built.stderr[-2000:]}"
        )
    return target


def operator_takeover(line: str) -> str | None:
    """The charger id the backend's certificate just connected as (`evict`): not the charger's presence."""
    m = _CONNECTED.search(line)
    if m and m["user"] == BACKEND_USER and m["id"] != BACKEND_USER:
        return m["id"]
    return None


def mosquitto_binary() -> str:
    found = shutil.which("mosquitto") or (
        "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None
    )
    if not found:
        raise RuntimeError("mosquitto is not installed: run `make deps` (apt-get install mosquitto)")
    return found


class Broker:
    def __init__(
        self,
        folder: Path,
        *,
        port: int,
        ca: Path,
        crl: Path,
        cert: Path,
        key: Path,
        stamp_principals: bool = False,
    ) -> None:
        self.folder = folder
        self.port = port
        self._stamp_principals = stamp_principals
        self._paths = {"ca": ca, "crl": crl, "cert": cert, "key": key}
        self._process: subprocess.Popen[str] | None = None
        self._pump: threading.Thread | None = None
        self._log_path = folder / "mosquitto.log"
        self._on_presence: Callable[[PresenceChange], None] | None = None  # kept for restart()

    def write_config(self) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        acl = self.folder / "acl"
        acl.write_text(ACL)
        conf = self.folder / "mosquitto.conf"
        # `user`: mosquitto started as root would otherwise switch to an account
        # that cannot read the key files this process just wrote.
        text = MOSQUITTO_CONF.format(
            user=getpass.getuser(), port=self.port, acl=acl, max_packet=128 * 1024 + 1024, **self._paths
        )
        if self._stamp_principals:
            # Global (per_listener_settings false): the plugin sees every listener's publishes.
            text = text.replace("acl_file ", f"plugin {build_principal_plugin(self.folder)}\nacl_file ", 1)
        conf.write_text(text)
        return conf

    def start(self, on_presence: Callable[[PresenceChange], None]) -> int:
        """Start mosquitto; returns its pid."""
        self._on_presence = on_presence
        conf = self.write_config()
        self._process = subprocess.Popen(
            # stdbuf: mosquitto writes its log through stdio, block-buffered on a pipe.
            ["stdbuf", "-oL", mosquitto_binary(), "-c", str(conf)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            preexec_fn=die_with_parent,
        )
        self._pump = threading.Thread(target=self._pump_log, args=(on_presence,), daemon=True)
        self._pump.start()
        return self._process.pid

    def _pump_log(self, on_presence: Callable[[PresenceChange], None]) -> None:
        assert self._process and self._process.stdout
        takeovers: set[str] = set()  # client ids the backend holds for a moment to evict a charger
        with self._log_path.open("a") as log:
            for line in self._process.stdout:
                log.write(line)
                log.flush()
                if taken := operator_takeover(line):
                    takeovers.add(taken)
                    continue
                change = parse_presence(line)
                if change and not change.connected and change.client_id in takeovers:
                    takeovers.discard(change.client_id)  # the takeover ending, not the charger
                    continue
                if change and change.client_id not in (BACKEND_USER, "<unknown>"):
                    on_presence(change)

    def stop(self) -> None:
        if self._process and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        if self._pump is not None:
            self._pump.join(timeout=5)  # it ends at the pipe's EOF, after the last log line
        if self._process and self._process.stdout:
            self._process.stdout.close()

    def restart(self, down_s: float, timeout_s: float = RESTART_TIMEOUT_S) -> int:
        """Stop mosquitto, keep it down `down_s`, start it on the same port with the same
        configuration, CRL and ACL; returns the new pid once it listens.

        Without persistence it comes back knowing no session: every client has to reconnect and
        subscribe again. Call it from the thread that started the broker: mosquitto dies with the
        thread that started it (children.die_with_parent).
        """
        if self._on_presence is None:
            raise RuntimeError("the broker was never started")
        self.stop()
        time.sleep(down_s)
        offset = self._log_path.stat().st_size
        pid = self.start(self._on_presence)
        deadline = time.monotonic() + timeout_s
        while not _RUNNING.search(_log_since(self._log_path, offset)):
            assert self._process is not None
            if self._process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"mosquitto did not come back on port {self.port}; see {self._log_path}")
            time.sleep(0.05)
        return pid


class BrokerControl(HttpServer):
    """Broker restarts asked for over HTTP (`restart_broker`), run by the thread in `serve_until`.

    A request thread cannot run them itself: mosquitto dies with the thread that started it, and
    request threads end with their request. The stack's main thread, which lives as long as the
    stack, runs them instead.
    """

    def __init__(self, restart: Callable[[float], int]) -> None:
        super().__init__(self._handle)
        self._restart = restart
        self._requests: queue.Queue[tuple[float, Future[int]]] = queue.Queue()

    def serve_until(self, stopping: threading.Event) -> None:
        """Run the restarts asked for, on this thread, until `stopping` is set."""
        while not stopping.is_set():
            try:
                down_s, done = self._requests.get(timeout=0.2)
            except queue.Empty:
                continue
            if not done.set_running_or_notify_cancel():
                continue
            try:
                done.set_result(self._restart(down_s))
            except Exception as exc:  # told to the caller, who decides
                done.set_exception(exc)

    def _handle(self, request: Request) -> Response:
        if (request.method, request.path) != ("POST", RESTART_PATH):
            return json_response(404, {"message": f"no such operation: {request.method} {request.path}"})
        try:
            down_s = float(json.loads(request.body or b"{}").get("down_s", 0))
        except (ValueError, TypeError, AttributeError):
            down_s = float("nan")
        if not 0 <= down_s <= MAX_DOWN_S:  # also refuses NaN
            return json_response(400, {"message": f'body must be {{"down_s": 0 to {MAX_DOWN_S:.0f}}}'})
        done: Future[int] = Future()
        self._requests.put((down_s, done))
        try:
            pid = done.result(timeout=down_s + 2 * RESTART_TIMEOUT_S)
        except Exception as exc:
            return json_response(500, {"message": f"broker restart failed: {exc}"})
        return json_response(200, {"broker_pid": pid})


def restart_broker(state: StackState, down_s: float) -> int:
    """Restart the local stack's mosquitto: down for `down_s` seconds, then back on the same port
    with the same configuration, CRL and ACL (local only: the chaos run and tests).

    Returns once the stack's own MQTT connection (the rules engine, the IoT Data endpoint, fleet
    provisioning) is back and subscribed again; chargers reconnect by themselves. The new pid is
    returned and set on `state` (and in the stack's stack.json), so CRL reloads signal it.
    """
    if not state.broker_control_url:
        raise RuntimeError("this local stack cannot restart its broker: restart the stack")
    request = urllib.request.Request(
        state.broker_control_url + RESTART_PATH,
        data=json.dumps({"down_s": down_s}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=down_s + 3 * RESTART_TIMEOUT_S) as response:
            state.broker_pid = int(json.load(response)["broker_pid"])
    except urllib.error.HTTPError as exc:
        raise RuntimeError(f"broker restart refused: {exc.read().decode(errors='replace')}") from exc
    return state.broker_pid


def reload_crl(pid: int, folder: Path, timeout_s: float = 30.0) -> None:
    """SIGHUP mosquitto and wait until its log says it reloaded: from then on the CRL refuses.

    Verified with mosquitto 2.0.11: SIGHUP re-reads the crlfile for new TLS handshakes but
    leaves live connections alone, so a revoked charger that is connected has to be evicted too.
    """
    log_path = folder / "mosquitto.log"
    offset = log_path.stat().st_size  # only what mosquitto logs after the signal counts
    os.kill(pid, signal.SIGHUP)
    deadline = time.monotonic() + timeout_s
    ask_again_at = time.monotonic() + RESEND_SIGHUP_S
    while not _logged_since(log_path, offset, _RELOADED):
        now = time.monotonic()
        if now > deadline:
            raise RuntimeError(f"mosquitto (pid {pid}) did not reload its configuration in {timeout_s}s")
        if now > ask_again_at:
            # mosquitto 2.0 clears its reload flag after reloading, so a SIGHUP that lands during
            # the previous reload (two revocations in a row) is lost. Reloading twice is harmless.
            os.kill(pid, signal.SIGHUP)
            ask_again_at = now + RESEND_SIGHUP_S
        time.sleep(0.05)


def _logged_since(log_path: Path, offset: int, text: str) -> bool:
    return text.encode() in _log_since(log_path, offset)


def _log_since(log_path: Path, offset: int) -> bytes:
    with log_path.open("rb") as log:
        log.seek(offset)
        return log.read()


def evict(client_id: str, *, folder: Path, port: int, ca: Path, timeout_s: float = 10.0) -> None:
    """Drop a live connection: connect under its client id with the backend's certificate and leave.

    mosquitto closes the older of two connections with one client id (MQTT-3.1.4-2) and has no
    "kick" command short of the dynamic-security plugin, which would replace the ACL file.
    clean_session also discards the evicted charger's stored session and what was queued in it.
    """
    connection = mqtt_connection_builder.mtls_from_path(
        endpoint="127.0.0.1",
        port=port,
        cert_filepath=str(folder / f"{BACKEND_USER}.pem"),
        pri_key_filepath=str(folder / f"{BACKEND_USER}.key"),
        ca_filepath=str(ca),
        client_id=client_id,
        clean_session=True,
        keep_alive_secs=30,
    )
    connection.connect().result(timeout_s)
    connection.disconnect().result(timeout_s)
