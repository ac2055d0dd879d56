"""Locations (URLs) as the shim may show them: in logs, the journal, status details.

GetDiagnostics and UpdateFirmware (and SignedUpdateFirmware, IoT Jobs) name a location: often
`ftp://user:password@host/path` in OCPP 1.6, or a pre-signed URL whose query is a credential for
an hour. The charger needs it whole; nothing that logs or records it does.

- `redacted_location`: one location without user name, password, query or fragment.
- `redacted_text`: every URL in a text so; for messages that quote a whole frame.
- `RedactLocations`: a logging filter that rewrites a record's message, arguments and traceback
  text before any handler sees it. Libraries that log whole frames get a logger carrying it
  (`redacting_logger`): ocpp's ChargePoint (every frame received and sent at INFO, a frame whose
  handler raised at ERROR) and the gateway's websockets server (every frame at DEBUG).
- `failure`: why a transfer failed, never its message (http.client quotes a URL's parts in it).
"""

from __future__ import annotations

import logging
import re
import urllib.error

REDACTED = "***"

# A URL as it appears in a log line, a JSON frame or a Python repr: up to white space, a quote or
# a bracket, an escaped character (`\"` in JSON) taken as part of it.
_URL = re.compile(r"""[A-Za-z][A-Za-z0-9+.-]*://(?:\\.|[^\s"'<>\\])*""")


def redacted_location(location: str) -> str:
    """`location` without user name, password, query or fragment: `ftp://***@host/path`.

    A copy of chargenet.domain.locations.redacted_location (the shim cannot import the backend's
    layer; a unit test holds the two equal). Text, not a URL parser: a password with an unescaped
    `/`, `?` or `#` makes a parser end the authority early and show the rest.
    """
    scheme, separator, rest = location.partition("://")
    if not separator:
        scheme, rest = "", location
    if "@" in rest:
        rest = f"{REDACTED}@{rest.rsplit('@', 1)[1]}"
    return scheme + separator + re.split(r"[?#]", rest, maxsplit=1)[0]


def redacted_text(text: str) -> str:
    """`text` with every URL in it as `redacted_location` shows it."""
    return _URL.sub(lambda url: redacted_location(url.group()), text)


class RedactLocations(logging.Filter):
    """Rewrites a record whose message names a URL with credentials, a query or a fragment."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        shown = redacted_text(message)
        if shown != message:
            record.msg, record.args = shown, None
        if record.exc_info and not record.exc_text:
            # Formatters use exc_text when it is set: the traceback quotes the frame too.
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redacted_text(record.exc_text)
        return True


_FILTER = RedactLocations()


def redacting_logger(name: str) -> logging.Logger:
    """The logger `name`, its records redacted (a logger's filters apply to what it logs itself)."""
    logger = logging.getLogger(name)
    if _FILTER not in logger.filters:
        logger.addFilter(_FILTER)
    return logger


def failure(exc: Exception) -> str:
    """Why a transfer failed, never the location: http.client quotes a URL's parts in its messages
    (`nonnumeric port: 'password@host'`)."""
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code}"
    if isinstance(exc, urllib.error.URLError) and isinstance(exc.reason, OSError):
        return f"{type(exc.reason).__name__} ({exc.reason.strerror or 'no detail'})"
    return type(exc).__name__
