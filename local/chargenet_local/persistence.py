"""The local stack keeps its data: snapshots of moto's backends, taken while moto's requests wait.

Why snapshots and not moto's request recorder: a replay re-runs every request, and moto draws a new
random id for each thing it creates (certificate ids, SQS message ids, Cognito subs), so a
replayed stack would not be the one that stopped: a charger's certificate id, a stored
`principal()`, an operator's `sub` would no longer match. Replay also grows with the stack's whole
history. A pickle of the backends restores exactly what was there, in time proportional to what
is stored now.

How: `RequestGate` wraps moto's WSGI application; every request holds it shared, and notes when
it can change something (`writes`). `Snapshotter` runs every `SNAPSHOT_EVERY_S`: when a write
happened since the last snapshot it pauses the gate (new requests wait, the running ones finish),
pickles the backends of every service moto has served plus the stack's own extras (the stream
pollers' positions, the resource map, ...), lets requests go, and only then writes the file
(temporary file, fsync, rename: a crash leaves the previous snapshot or the new one, never half
of one). A `kill -9` loses at most the writes of the last interval; `down` snapshots once more
after the functions have stopped.

What does not pickle is replaced narrowly (`_DURABLE_TYPES`): locks and conditions (SQS queues,
S3 keys, the checkout front's sessions) come back new and unlocked; the Cognito pools' signing key
(a joserfc key over a Rust object) is saved as its JWK. The DynamoDB Streams backend is left out:
it only holds the shard iterators its GetRecords calls leave behind (one per poll, never freed),
and the pollers make new ones from their saved positions.
"""

from __future__ import annotations

import contextlib
import copyreg
import io
import json
import logging
import os
import pickle
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

log = logging.getLogger("chargenet.local.persistence")

STATE_DIR = "state"
MOTO_SNAPSHOT = "moto.pickle"
SNAPSHOT_EVERY_S = 2.0
# Services whose backends are not the stack's data (see the module docstring).
NOT_SNAPSHOTTED = frozenset({"dynamodbstreams"})
# Operations (the X-Amz-Target's or the CBOR path's last part) that change nothing worth keeping.
# ReceiveMessage only hides a message for its visibility timeout: after a crash it is visible
# again, which SQS allows (at least once).
READ_OPERATIONS = ("Get", "Describe", "List", "Query", "Scan", "BatchGet", "ReceiveMessage")
_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

Wsgi = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def state_dir(home: Path) -> Path:
    return home / STATE_DIR


# ------------------------------------------------------------------ pausing moto
class RequestGate:
    """A readers-writer gate: requests share it; a snapshot pauses it (new requests wait for it)."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._active = 0
        self._paused = False
        self.dirty = False

    @contextlib.contextmanager
    def request(self, writes: bool) -> Iterator[None]:
        with self._condition:
            self._condition.wait_for(lambda: not self._paused)
            self._active += 1
            self.dirty = self.dirty or writes
        try:
            yield
        finally:
            with self._condition:
                self._active -= 1
                self._condition.notify_all()

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        with self._condition:
            self._condition.wait_for(lambda: not self._paused)
            self._paused = True
            self._condition.wait_for(lambda: self._active == 0)
        try:
            yield
        finally:
            with self._condition:
                self._paused = False
                self._condition.notify_all()

    def wrap(self, app: Wsgi) -> Wsgi:
        def gated(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            with self.request(writes(environ)):
                return list(app(environ, start_response))  # moto's work ends inside the gate

        return gated

    def gated(self, handler: Callable[[str, bytes], None]) -> Callable[[str, bytes], None]:
        """An MQTT handler that changes moto's backends directly (IoT Jobs), as if it were a request."""

        def run(topic: str, payload: bytes) -> None:
            with self.request(writes=True):
                handler(topic, payload)

        return run


def writes(environ: dict[str, Any]) -> bool:
    """Can this request change moto's state? Unknown operations (query protocol) count as writes."""
    if environ.get("REQUEST_METHOD", "") in _READ_METHODS:
        return False
    operation = str(environ.get("HTTP_X_AMZ_TARGET", "")).rpartition(".")[2]
    if not operation:
        operation = str(environ.get("PATH_INFO", "")).rpartition("/operation/")[2]
    return not operation.startswith(READ_OPERATIONS)


# ------------------------------------------------------------------ pickling
def _fresh(kind: Callable[[], Any]) -> Callable[[Any], tuple[Any, tuple[()]]]:
    return lambda _: (kind, ())


def _durable_types() -> dict[Any, Any]:
    # The key class moto's Cognito signs with (joserfc's, reached through moto, which brings it).
    from moto.cognitoidp.models import jwk

    table: dict[Any, Any] = dict(copyreg.dispatch_table)
    table[type(threading.Lock())] = _fresh(threading.Lock)
    table[type(threading.RLock())] = _fresh(threading.RLock)
    table[threading.Condition] = _fresh(threading.Condition)
    table[jwk.RSAKey] = lambda key: (jwk.RSAKey.import_key, (key.as_dict(private=True),))
    return table


def dumps(value: Any) -> bytes:
    """pickle.dumps, with locks and keys handled as the module docstring says."""
    buffer = io.BytesIO()
    pickler = pickle.Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL)
    pickler.dispatch_table = _durable_types()
    pickler.dump(value)
    return buffer.getvalue()


def write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    # Owner only: the emulators' state holds what their services hold, the operators' passwords
    # in moto's Cognito among them (as readable as the first admin's own password file).
    with os.fdopen(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())
    temporary.replace(path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)  # the rename itself survives a power cut
    finally:
        os.close(directory)


def served_backends() -> dict[str, dict[str, dict[str, Any]]]:
    from moto.core.base_backend import BackendDict

    return {
        backends.service_name: {account: dict(regions) for account, regions in backends.items()}
        for backends in list(BackendDict._instances)
        if backends.service_name not in NOT_SNAPSHOTTED
    }


def restore_backends(saved: dict[str, dict[str, dict[str, Any]]]) -> None:
    from moto.backends import get_backend

    for service, accounts in saved.items():
        backends = get_backend(service)  # type: ignore[call-overload]
        for account, regions in accounts.items():
            for region, backend in regions.items():
                backends[account][region] = backend


# ------------------------------------------------------------------ the snapshots
class Snapshotter:
    """Writes `<home>/state/moto.pickle` when moto changed, at most every `every_s`.

    `extras()` runs while moto is paused: what the stack keeps beside moto that must match it
    (stream positions read then cannot be ahead of the writes the snapshot holds).
    """

    def __init__(
        self,
        home: Path,
        gate: RequestGate,
        extras: Callable[[], dict[str, Any]],
        every_s: float = SNAPSHOT_EVERY_S,
    ) -> None:
        self.path = state_dir(home) / MOTO_SNAPSHOT
        self._gate = gate
        self._extras = extras
        self._every_s = every_s
        self._one_at_a_time = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_pause_s = 0.0  # how long the last snapshot held moto's requests

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="snapshots", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """The last snapshot: after the functions stopped, so it holds everything they wrote."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.snapshot(force=True)

    def _run(self) -> None:
        while not self._stop.wait(self._every_s):
            try:
                self.snapshot()
            except Exception:  # keep snapshotting: the next one may succeed
                log.exception("snapshot failed")

    def snapshot(self, force: bool = False) -> bool:
        """Returns whether it wrote one (nothing changed: it does not)."""
        with self._one_at_a_time:
            data = self._capture(force)
            if data is None:
                return False
            write_atomically(self.path, data)
            return True

    def _capture(self, force: bool) -> bytes | None:
        with self._gate.paused():
            if not (self._gate.dirty or force):
                return None
            started = time.perf_counter()
            data = dumps({"backends": served_backends(), "extras": self._extras()})
            self._gate.dirty = False
            self.last_pause_s = time.perf_counter() - started
            return data


def load_snapshot(home: Path) -> dict[str, Any] | None:
    """The saved backends and extras, or None for a new stack."""
    path = state_dir(home) / MOTO_SNAPSHOT
    if not path.exists():
        return None
    saved: dict[str, Any] = pickle.loads(path.read_bytes())  # the stack's own file (state/ is 0700)
    return saved


# ------------------------------------------------------------------ ports
PORTS_FILE = "ports.json"


class PortBook:
    """The stack's ports, the same after a restart where they are still free: chargers' credentials
    name the broker's port, Stripe's redirect and payment URLs the API's and the checkout's."""

    def __init__(self, home: Path) -> None:
        self._path = state_dir(home) / PORTS_FILE
        self._ports: dict[str, int] = json.loads(self._path.read_text()) if self._path.exists() else {}

    def take(self, name: str) -> int:
        recorded = self._ports.get(name)
        if recorded is None or not _bindable(recorded):
            if recorded is not None:
                log.warning("port %d (%s) is taken: the stack moves %s to another port", recorded, name, name)
            self._ports[name] = _free_port()
            write_atomically(self._path, json.dumps(self._ports, indent=2).encode())
        return self._ports[name]


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers do: TIME_WAIT is no owner
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
