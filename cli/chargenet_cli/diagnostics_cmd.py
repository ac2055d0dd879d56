"""`chargenet diagnostics request|list|get`: the log files chargers upload (OCPP 1.6 GetDiagnostics,
2.0.1 GetLog).

`request` (like `chargenet command send CP GetDiagnostics` without a location, or GetLog without a
log) has the operator API name a pre-signed PUT URL (valid for an hour) for
diagnostics/<charger>/<time>.log in the diagnostics bucket, in the request of the charger's OCPP
version: the charger uploads with one HTTP PUT and holds no AWS credentials of its own. `get` asks the API for a short-lived pre-signed GET URL and downloads the file from S3
itself: big files never pass through the function.

What a charger uploads is untrusted. A pre-signed PUT cannot cap its size (S3 enforces a size
range only in a POST policy's form fields, and OCPP gives the charger a bare URL), so the
cap is enforced where the file is read: the API refuses a file over MAX_FILE_BYTES, `get`
refuses one before downloading and never reads more than the cap, and the bucket expires such
files after a day. Printed files are stripped of terminal control sequences, which could
otherwise rewrite the operator's screen or terminal.
"""

from __future__ import annotations

import argparse
import re
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import quote

from chargenet.domain.firmware import MAX_DIAGNOSTICS_BYTES, oversized_diagnostics
from chargenet_cli.command_cmd import answered, check_wait, wait_option
from chargenet_cli.errors import CliError, UsageError
from chargenet_cli.operator_cmd import api
from chargenet_cli.output import as_json, table

# The bucket's expire-oversized-diagnostics lifecycle rule uses the same number (a test holds them equal).
MAX_FILE_BYTES = MAX_DIAGNOSTICS_BYTES
DOWNLOAD_TIMEOUT_S = 60.0
# ESC sequences: CSI (ESC [ params final), terminated OSC/DCS/SOS/PM/APC strings, two-byte escapes.
_ESCAPE_SEQUENCES = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|[\]PX^_][^\x07\x1b]*(?:\x07|\x1b\\)|[@-_])")
# What is left: C0 controls but tab and line feed (a lone CR rewrites the line), DEL, C1 (\x9b is CSI).
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def register(commands: argparse._SubParsersAction) -> None:
    sub = commands.add_parser(
        "diagnostics", help="log files chargers upload (GetDiagnostics, GetLog)"
    ).add_subparsers(dest="diagnostics_command", required=True)
    request = sub.add_parser(
        "request", help="ask a charger to upload its diagnostics (1.6 GetDiagnostics, 2.0.1 GetLog)"
    )
    request.add_argument("charger_id")
    wait_option(request)
    request.add_argument("--json", action="store_true")
    request.set_defaults(run=request_file)
    listing = sub.add_parser("list", help="a charger's uploaded files, oldest first")
    listing.add_argument("charger_id")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(run=list_files)
    get = sub.add_parser("get", help="print (or save) one uploaded file")
    get.add_argument("charger_id")
    get.add_argument("name", nargs="?", help="file name from `diagnostics list` (default: the latest)")
    get.add_argument("--output", type=Path, help="save to this file instead of printing")
    get.set_defaults(run=get_file)


def _path(charger_id: str) -> str:
    return f"/chargers/{quote(charger_id, safe='')}/diagnostics"


def request_file(args: argparse.Namespace) -> str:
    check_wait(args.wait)
    client = api(args)
    call = client.post(_path(args.charger_id), action="request diagnostics")
    return answered(client, call, args)


def _files(args: argparse.Namespace) -> list[dict[str, Any]]:
    files = api(args).paginate(_path(args.charger_id), action="read diagnostics")
    return sorted(files, key=lambda f: str(f["key"]))


def list_files(args: argparse.Namespace) -> str:
    files = _files(args)
    if args.json:
        return as_json(files)
    return table(
        ["NAME", "BYTES", "UPLOADED"],
        [(f["name"], f["bytes"], str(f["uploaded_at"]).replace("T", " ")[:19]) for f in files],
    )


def get_file(args: argparse.Namespace) -> str:
    if args.name is not None and "/" in args.name:
        raise UsageError("give the file name as `diagnostics list` shows it, without a path")
    name = args.name or _latest(args)
    found = api(args).get(f"{_path(args.charger_id)}/{quote(name, safe='')}", action="read diagnostics")
    body = download(found["url"], found["key"], int(found["bytes"]))
    if args.output is None:
        return printable(body.decode("utf-8", errors="replace")).rstrip("\n")
    args.output.write_bytes(body)
    return f"saved {found['key']} to {args.output} ({len(body)} bytes)"


def _latest(args: argparse.Namespace) -> str:
    files = _files(args)
    if not files:
        raise CliError(f"no diagnostics files for {args.charger_id}")
    return str(files[-1]["name"])  # names hold the request time, so the last is the latest


def download(url: str, key: str, size: int) -> bytes:
    """The file's bytes through its pre-signed URL; over the cap it is refused unread, and never
    more than the cap is read (the object could differ from what the API measured)."""
    refused = oversized_diagnostics(key, size, MAX_FILE_BYTES)
    if refused:
        raise CliError(refused)
    try:
        with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response:
            body = bytes(response.read(MAX_FILE_BYTES + 1))
    except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
        raise CliError(f"cannot download {key}: {getattr(exc, 'reason', exc)}") from None
    if len(body) > MAX_FILE_BYTES:
        raise CliError(f"{key} grew over the {MAX_FILE_BYTES}-byte limit for diagnostics files: not read")
    return body


def printable(text: str) -> str:
    """`text` without terminal escape sequences and control characters (line breaks and tabs stay)."""
    text = text.replace("\r\n", "\n")
    return _CONTROL_CHARACTERS.sub("", _ESCAPE_SEQUENCES.sub("", text))
