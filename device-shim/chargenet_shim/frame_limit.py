"""The largest OCPP frame the shim hands an MQTT link: the backend's own limit, applied first.

The ingest function refuses a frame over MAX_FRAME_BYTES with a GenericError CALLERROR
(template.yaml `MaxFrameBytes`, functions/ocpp_ingest/app.py, chargenet.ocpp.codec.decode). A
frame published above the broker's packet limit (IoT Core: 128 KB payload; the local mosquitto:
`max_packet_size` 129 KiB) never gets that answer: the broker drops the charger's MQTT connection,
the client resends the same publish on every reconnect, and every frame behind it is lost. So
the gateway answers an oversized CALL itself, with the backend's code and words, and the
simulator and ChargerLink refuse to publish one. GenericError is the code in OCPP-J 1.6 and 2.0.1
alike, so the refusal is the same whichever version the charger speaks.

The shim does not depend on the cloud layer, so the limit is repeated here; a test holds it
equal to the template's default (device-shim/tests/test_frame_limit.py).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from ocpp.exceptions import GenericError

# = template.yaml MaxFrameBytes (default), the ingest function's MAX_FRAME_BYTES.
MAX_FRAME_BYTES = 64 * 1024

CALL = 2
_KINDS = {2: "CALL", 3: "CALLRESULT", 4: "CALLERROR"}
# The backend's rule for a frame refused before it parsed (codec._LEADING_MESSAGE_ID): the id is
# read only when it plainly leads the frame, `[2, "<printable ASCII>"`, without parsing the rest.
_LEADING_MESSAGE = re.compile(r'\s*\[\s*([234])\s*,\s*"([\x20\x21\x23-\x5b\x5d-\x7e]{1,36})"', re.ASCII)


class FrameTooLarge(GenericError):
    """A frame over the limit, refused before it reached the broker.

    A GenericError, the OCPPError the backend's CALLERROR would have raised: ocpp's call() raises
    it to the caller and the offline queue discards the message instead of retrying it forever.
    """

    def __init__(self, size: int, limit: int = MAX_FRAME_BYTES) -> None:
        super().__init__(_exceeds(size, limit))
        self.size = size
        self.limit = limit

    def __str__(self) -> str:
        return str(self.description)


@dataclass(frozen=True)
class Oversized:
    """What can be told about a frame over the limit without parsing it (it may be 2 MiB of anything)."""

    size: int
    limit: int
    kind: int | None
    message_id: str | None

    def call_error(self) -> str | None:
        """The backend's CALLERROR for an oversized CALL; None when no CALL with a readable id is there to answer.

        An oversized CALLRESULT or CALLERROR is not answered: OCPP answers only CALLs.
        """
        if self.kind != CALL or self.message_id is None:
            return None
        # The backend's codec.call_error, byte for byte.
        frame = [4, self.message_id, "GenericError", _exceeds(self.size, self.limit), {}]
        return json.dumps(frame, separators=(",", ":"))

    def __str__(self) -> str:
        kind = _KINDS.get(self.kind or 0, "frame")
        which = f" {self.message_id!r}" if self.message_id else " (no readable message id)"
        return f"{kind}{which} of {self.size} bytes, over the {self.limit}-byte frame limit"


def frame_bytes(frame: str | bytes) -> int:
    """The size the backend measures: the UTF-8 bytes of the MQTT payload."""
    if isinstance(frame, bytes):
        return len(frame)
    # isascii() scans without copying; only a frame with non-ASCII text is encoded to be measured.
    return len(frame) if frame.isascii() else len(frame.encode())


def oversized(frame: str, limit: int = MAX_FRAME_BYTES) -> Oversized | None:
    """None for a frame within the limit; else its size, and its kind and id when they lead it."""
    size = frame_bytes(frame)
    if size <= limit:
        return None
    match = _LEADING_MESSAGE.match(frame)
    if match is None:
        return Oversized(size, limit, None, None)
    return Oversized(size, limit, int(match[1]), match[2])


def check_frame_size(frame: str | bytes, limit: int = MAX_FRAME_BYTES) -> None:
    """Raise FrameTooLarge for a frame over the limit."""
    size = frame_bytes(frame)
    if size > limit:
        raise FrameTooLarge(size, limit)


def _exceeds(size: int, limit: int) -> str:
    # The backend's description (codec.decode), so both refusals read the same.
    return f"frame of {size} bytes exceeds {limit}"
