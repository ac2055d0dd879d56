"""mosquitto as the local IoT Core message broker.

The configuration mirrors the template's IoT policy: a client must present a
certificate from the local CA (checked against the CRL), its certificate's CN
becomes its user name, and the ACL lets a charger touch only its own topics.
mosquitto has no lifecycle events, so its connection log is turned into
`$aws/events/presence/...` events the way IoT Core would publish them.
"""

from __future__ import annotations

import getpass
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from awsiot import mqtt_connection_builder

from chargenet_local.children import die_with_parent

BACKEND_USER = "chargenet-backend"
# The CN of every factory claim certificate (chargenet provisioning claim-certificate): one ACL
# user for all batches, and not a charger id (':'), so the charger patterns below name only
# topics no charger has. The template's ProvisioningClaimPolicy is the cloud's counterpart.
CLAIM_USER = "claim:factory"

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

user {CLAIM_USER}
topic write $aws/certificates/create-from-csr/json
topic read $aws/certificates/create-from-csr/json/+
topic write $aws/provisioning-templates/+/provision/json
topic read $aws/provisioning-templates/+/provision/json/+

pattern write $aws/rules/+/chargers/%u/in
pattern read chargers/%u/out
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
    def __init__(self, folder: Path, *, port: int, ca: Path, crl: Path, cert: Path, key: Path) -> None:
        self.folder = folder
        self.port = port
        self._paths = {"ca": ca, "crl": crl, "cert": cert, "key": key}
        self._process: subprocess.Popen[str] | None = None
        self._pump: threading.Thread | None = None
        self._log_path = folder / "mosquitto.log"

    def write_config(self) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        acl = self.folder / "acl"
        acl.write_text(ACL)
        conf = self.folder / "mosquitto.conf"
        # `user`: mosquitto started as root would otherwise switch to an account
        # that cannot read the key files this process just wrote.
        conf.write_text(
            MOSQUITTO_CONF.format(
                user=getpass.getuser(), port=self.port, acl=acl, max_packet=128 * 1024 + 1024, **self._paths
            )
        )
        return conf

    def start(self, on_presence: Callable[[PresenceChange], None]) -> int:
        """Start mosquitto; returns its pid."""
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


def reload_crl(pid: int, folder: Path, timeout_s: float = 30.0) -> None:
    """SIGHUP mosquitto and wait until its log says it reloaded: from then on the CRL refuses.

    Verified with mosquitto 2.0.11: SIGHUP re-reads the crlfile for new TLS handshakes but
    leaves live connections alone, so a revoked charger that is connected has to be evicted too.
    """
    log_path = folder / "mosquitto.log"
    offset = log_path.stat().st_size  # only what mosquitto logs after the signal counts
    os.kill(pid, signal.SIGHUP)
    deadline = time.monotonic() + timeout_s
    while not _logged_since(log_path, offset, _RELOADED):
        if time.monotonic() > deadline:
            raise RuntimeError(f"mosquitto (pid {pid}) did not reload its configuration in {timeout_s}s")
        time.sleep(0.05)


def _logged_since(log_path: Path, offset: int, text: str) -> bool:
    with log_path.open("rb") as log:
        log.seek(offset)
        return text.encode() in log.read()


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
