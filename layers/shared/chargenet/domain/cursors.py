"""Pagination cursors: opaque to the client, signed so that a cursor cannot be forged or altered.

A listing reads one page (DynamoDB's Limit) and hands back where it stopped (LastEvaluatedKey)
as a cursor: base64url(JSON {"s": scope, "k": key}) + "." + base64url(HMAC-SHA256). The scope
names the listing and its filters, so a cursor of one listing is refused by another. The key is
the stack's OperatorCursorSecret; a cursor that does not verify is BadCursor (HTTP 400).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

MAX_CURSOR_CHARS = 2048


class BadCursor(ValueError):
    """The cursor was not made by this API for this listing."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: bytes, payload: str) -> str:
    return _b64(hmac.new(secret, payload.encode("ascii"), hashlib.sha256).digest())


def sign_cursor(key: dict[str, Any], scope: str, secret: bytes) -> str:
    payload = _b64(json.dumps({"s": scope, "k": key}, separators=(",", ":"), sort_keys=True).encode())
    return f"{payload}.{_mac(secret, payload)}"


def read_cursor(cursor: str, scope: str, secret: bytes) -> dict[str, Any]:
    """The key a cursor of this listing holds; BadCursor if altered, foreign or malformed."""
    if len(cursor) > MAX_CURSOR_CHARS or cursor.count(".") != 1:
        raise BadCursor("not a cursor of this listing")
    payload, mac = cursor.split(".")
    if not hmac.compare_digest(mac.encode("ascii", "replace"), _mac(secret, payload).encode("ascii")):
        raise BadCursor("not a cursor of this listing")
    try:
        data = json.loads(_unb64(payload))
    except ValueError:
        raise BadCursor("not a cursor of this listing") from None
    if not isinstance(data, dict) or data.get("s") != scope or not isinstance(data.get("k"), dict):
        raise BadCursor("not a cursor of this listing")
    key: dict[str, Any] = data["k"]
    return key
