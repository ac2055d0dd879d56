"""`chargenet diagnostics list|get`: the log files chargers uploaded for GetDiagnostics.

`chargenet command send CP GetDiagnostics` without a location names a pre-signed PUT URL
(valid for an hour) for diagnostics/<charger>/<time>.log in the diagnostics bucket: the
charger uploads with one HTTP PUT and holds no AWS credentials of its own. The URL is
signed with SigV4, which S3 requires for objects encrypted with a KMS key.

What a charger uploads is untrusted. A pre-signed PUT cannot cap its size (S3 enforces a size
range only in a POST policy's form fields, and OCPP 1.6 gives the charger a bare URL), so the
cap is enforced here, where the file is read: `get` refuses a file over MAX_FILE_BYTES before
reading its body, and the bucket expires such files after a day. Printed files are stripped of
terminal control sequences, which could otherwise rewrite the operator's screen or terminal.
"""

from __future__ import annotations

import argparse
import os
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from chargenet_cli import local_env
from chargenet_cli.errors import CliError, UsageError
from chargenet_cli.output import as_json, table

UPLOAD_URL_EXPIRY_S = 3600
KEY_PREFIX = "diagnostics/"
# The bucket's expire-oversized-diagnostics lifecycle rule uses the same number (a test holds them equal).
MAX_FILE_BYTES = 16 * 1024 * 1024
# ESC sequences: CSI (ESC [ params final), terminated OSC/DCS/SOS/PM/APC strings, two-byte escapes.
_ESCAPE_SEQUENCES = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|[\]PX^_][^\x07\x1b]*(?:\x07|\x1b\\)|[@-_])")
# What is left: C0 controls but tab and line feed (a lone CR rewrites the line), DEL, C1 (\x9b is CSI).
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def register(commands: argparse._SubParsersAction) -> None:
    sub = commands.add_parser(
        "diagnostics", help="log files chargers uploaded (chargenet command send CP GetDiagnostics)"
    ).add_subparsers(dest="diagnostics_command", required=True)
    listing = sub.add_parser("list", help="a charger's uploaded files, oldest first")
    listing.add_argument("charger_id")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(run=list_files)
    get = sub.add_parser("get", help="print (or save) one uploaded file")
    get.add_argument("charger_id")
    get.add_argument("name", nargs="?", help="file name from `diagnostics list` (default: the latest)")
    get.add_argument("--output", type=Path, help="save to this file instead of printing")
    get.set_defaults(run=get_file)


def diagnostics_key(charger_id: str, at: datetime) -> str:
    return f"{charger_prefix(charger_id)}{at.astimezone(UTC):%Y%m%dT%H%M%SZ}.log"


def charger_prefix(charger_id: str) -> str:
    return f"{KEY_PREFIX}{charger_id}/"


def upload_location(charger_id: str, at: datetime) -> tuple[str, str]:
    """A key for the charger's file and a pre-signed URL to PUT it there."""
    key = diagnostics_key(charger_id, at)
    url = _s3().generate_presigned_url(
        "put_object", Params={"Bucket": _bucket(), "Key": key}, ExpiresIn=UPLOAD_URL_EXPIRY_S
    )
    return key, url


def _s3() -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client("s3", config=Config(signature_version="s3v4"))


def _bucket() -> str:
    bucket = os.environ.get("DIAGNOSTICS_BUCKET")
    if not bucket:
        raise CliError(
            "the local stack has no diagnostics bucket; restart it (chargenet local down, then up)"
        )
    return bucket


def _files(charger_id: str) -> list[dict[str, Any]]:
    pages = (
        _s3().get_paginator("list_objects_v2").paginate(Bucket=_bucket(), Prefix=charger_prefix(charger_id))
    )
    objects = [obj for page in pages for obj in page.get("Contents", [])]
    return sorted(objects, key=lambda obj: obj["Key"])


def list_files(args: argparse.Namespace) -> str:
    local_env.connect(args.home)
    files = [
        {
            "name": obj["Key"].rsplit("/", 1)[1],
            "key": obj["Key"],
            "bytes": obj["Size"],
            "uploaded_at": obj["LastModified"],
        }
        for obj in _files(args.charger_id)
    ]
    if args.json:
        return as_json(files)
    return table(
        ["NAME", "BYTES", "UPLOADED"],
        [(f["name"], f["bytes"], f"{f['uploaded_at']:%Y-%m-%d %H:%M:%S}") for f in files],
    )


def get_file(args: argparse.Namespace) -> str:
    if args.name is not None and "/" in args.name:
        raise UsageError("give the file name as `diagnostics list` shows it, without a path")
    local_env.connect(args.home)
    key = _file_key(args.charger_id, args.name)
    body = _read_capped(key)
    if args.output is None:
        return printable(body.decode("utf-8", errors="replace")).rstrip("\n")
    args.output.write_bytes(body)
    return f"saved {key} to {args.output} ({len(body)} bytes)"


def _read_capped(key: str) -> bytes:
    """The file's bytes; a file over the cap is refused before its body is read."""
    response = _s3().get_object(Bucket=_bucket(), Key=key)
    size = int(response["ContentLength"])
    if size > MAX_FILE_BYTES:
        response["Body"].close()
        raise CliError(
            f"{key} is {size} bytes, over the {MAX_FILE_BYTES}-byte limit for diagnostics files: "
            "not read (the bucket deletes such files after a day)"
        )
    return bytes(response["Body"].read())


def printable(text: str) -> str:
    """`text` without terminal escape sequences and control characters (line breaks and tabs stay)."""
    text = text.replace("\r\n", "\n")
    return _CONTROL_CHARACTERS.sub("", _ESCAPE_SEQUENCES.sub("", text))


def _file_key(charger_id: str, name: str | None) -> str:
    keys = [obj["Key"] for obj in _files(charger_id)]
    if not keys:
        raise CliError(f"no diagnostics files for {charger_id}")
    if name is None:
        return keys[-1]  # keys hold the request time, so the last is the latest
    key = charger_prefix(charger_id) + name
    if key not in keys:
        raise CliError(
            f"no diagnostics file {name} for {charger_id} (see chargenet diagnostics list {charger_id})"
        )
    return key
