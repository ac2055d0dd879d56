"""moto's WSGI application behind waitress: HTTP/1.1 connections kept alive, a pool of threads.

moto's own `ThreadedMotoServer` is werkzeug's development server, which closes the connection
after every response: each SDK call of each function paid a new TCP connection and a new server
thread (~45 % of the ingest workers' profile samples were in the HTTP transport). waitress keeps
connections alive, serves the sockets from one poll loop and runs only the requests on its
threads: an idle kept-alive connection holds no thread, so neither a snapshot's pause (the gate
waits for running requests, not connections) nor a shutdown waits on the SDK clients that never
close their pools. Why waitress: pure Python without dependencies of its own, served in this
process's thread (cheroot would bring two more packages; gunicorn needs a process of its own and
forks moto's backends, which the snapshots need in one place).

waitress reads a request's body whole before the application runs and buffers the response, so a
slow client never holds `RequestGate` (chargenet_local.persistence) while moto waits for bytes.
Two differences from werkzeug's server, both in S3 user metadata: waitress drops request headers
with an underscore in their name (moto's werkzeug handler keeps them; the product's metadata
names use dashes), and it capitalizes every response header's name, which botocore hands back as
the metadata's keys ("Key-Id" for "key-id"): `_MetadataCaseTask` writes those in lower case, as
S3 itself does.
"""

from __future__ import annotations

import logging
import re
import threading
from typing import Any

from waitress.channel import HTTPChannel
from waitress.task import WSGITask

from chargenet_local.persistence import RequestGate

# Threads wait more than they compute here (the gate during a snapshot, SQS long polls); moto's
# work is under one interpreter lock whatever their number.
MOTO_THREADS = 16
# Every worker process of every function keeps a few connections open (botocore's pool): well
# above waitress's default of 100, well below the process's file limit.
MOTO_CONNECTION_LIMIT = 2000
# How often the serving loop looks at its stop flag when nothing wakes it.
_LOOP_WAKE_S = 0.5
# A queue of requests is normal under load, and waitress warns for each one it queues.
logging.getLogger("waitress.queue").setLevel(logging.ERROR)


_USER_METADATA_NAME = re.compile(rb"^X-Amz-Meta-[^:]+", re.MULTILINE)


class _MetadataCaseTask(WSGITask):  # type: ignore[misc]  # waitress has no type hints
    """waitress's response, with S3's user-metadata header names in lower case (module docstring)."""

    def build_response_header(self) -> bytes:
        head: bytes = super().build_response_header()
        return _USER_METADATA_NAME.sub(lambda name: name.group(0).lower(), head)


class _MotoChannel(HTTPChannel):  # type: ignore[misc]
    task_class = _MetadataCaseTask


def cache_moto_service_list() -> None:
    """moto's server lists its own package directory on every request to find the service a host
    names (moto.backends.list_of_moto_modules, ~150 isdir calls): about a tenth of the daemon's
    CPU under a chaos run. The list cannot change while the process runs."""
    from moto import backends

    modules = tuple(backends.list_of_moto_modules())
    backends.list_of_moto_modules = lambda: modules  # type: ignore[assignment]


def moto_application() -> Any:
    """moto's WSGI application, as `ThreadedMotoServer` builds it."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    return DomainDispatcherApplication(create_backend_app)


class MotoServer:
    """Serves `application` (moto's unless given) on 127.0.0.1:`port`, every request through `gate`."""

    def __init__(self, gate: RequestGate, port: int = 0, application: Any = None) -> None:
        from waitress import create_server

        self._server: Any = create_server(
            gate.wrap(application or moto_application()),
            host="127.0.0.1",
            port=port,
            threads=MOTO_THREADS,
            connection_limit=MOTO_CONNECTION_LIMIT,
            asyncore_use_poll=True,  # select() fails on descriptors past 1024; the daemon has many
        )
        self._server.channel_class = _MotoChannel
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="moto-server", daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.effective_port)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Lets the running requests finish and their answers go out, then closes every connection."""
        self._server.task_dispatcher.shutdown()
        self._stopping.set()
        self._server.pull_trigger()
        self._thread.join()

    def _serve(self) -> None:
        from waitress import wasyncore

        sockets = self._server._map
        while not self._stopping.is_set():
            wasyncore.loop(timeout=_LOOP_WAKE_S, map=sockets, use_poll=True, count=1)
        # Closed on the loop's own thread: the loop is the only one that touches its channels.
        for channel in list(sockets.values()):
            channel.close()
