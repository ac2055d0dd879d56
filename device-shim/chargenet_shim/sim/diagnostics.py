"""GetDiagnostics: the charger's event journal as a log file, uploaded to the location the backend names.

The location is a pre-signed HTTP(S) URL: one PUT of the file, no credentials of the
charger's own. urllib blocks, so the PUT runs in a thread; GetDiagnostics' retries and
retryInterval decide how often and how far apart it is tried.

A location may carry secrets (`ftp://user:password@host/`, a pre-signed URL's signature): logs
and the journal (itself the next diagnostics file) show it only through `redacted_location` (chargenet_shim.redaction).
"""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import http.client
import logging
import urllib.parse
import urllib.request

from chargenet_shim.ocpp_time import ocpp_timestamp
from chargenet_shim.redaction import failure, redacted_location
from chargenet_shim.sim.simclock import SimClock

LOG = logging.getLogger(__name__)

UPLOAD_TIMEOUT_S = 30.0
# OCPP lets the charger choose when GetDiagnostics leaves them out; a simulator should fail fast.
DEFAULT_ATTEMPTS = 1
DEFAULT_RETRY_INTERVAL_S = 5


class Journal:
    """The charger's recent events, stamped with its clock: what a diagnostics file holds."""

    def __init__(self, clock: SimClock, size: int = 500) -> None:
        self._clock = clock
        self._events: collections.deque[tuple[dt.datetime, str]] = collections.deque(maxlen=size)

    def record(self, event: str) -> None:
        self._events.append((self._clock.now(), event))

    def lines(self, since: dt.datetime | None = None, until: dt.datetime | None = None) -> list[str]:
        return [
            f"{ocpp_timestamp(moment)} {event}"
            for moment, event in self._events
            if (since is None or moment >= since) and (until is None or moment <= until)
        ]


def log_file(charger_id: str, header: dict[str, str], events: list[str]) -> bytes:
    lines = [f"# diagnostics of charger {charger_id}", *(f"# {k}: {v}" for k, v in header.items()), *events]
    return ("\n".join(lines) + "\n").encode()


async def upload(location: str, body: bytes, attempts: int, retry_interval_s: float) -> bool:
    """PUT `body` to `location`, up to `attempts` times; whether it got there."""
    if urllib.parse.urlsplit(location).scheme not in ("http", "https"):
        # FTP is common in OCPP 1.6 but urllib cannot upload there.
        LOG.warning(
            "diagnostics upload to %s: only http(s) locations are supported", redacted_location(location)
        )
        return False
    for attempt in range(1, attempts + 1):
        try:
            await asyncio.to_thread(_put, location, body)
            return True
        except (OSError, ValueError, http.client.HTTPException) as exc:
            LOG.warning("diagnostics upload attempt %d/%d failed: %s", attempt, attempts, failure(exc))
        if attempt < attempts:
            await asyncio.sleep(retry_interval_s)
    return False


def _put(location: str, body: bytes) -> None:
    request = urllib.request.Request(
        location, data=body, method="PUT", headers={"Content-Type": "text/plain; charset=utf-8"}
    )
    # urlopen raises HTTPError (an OSError) for any answer but 2xx.
    with urllib.request.urlopen(request, timeout=UPLOAD_TIMEOUT_S) as response:
        response.read()
