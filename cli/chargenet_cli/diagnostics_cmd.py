"""`chargenet diagnostics list|get`: the log files chargers uploaded for GetDiagnostics.

`chargenet command send CP GetDiagnostics` without a location names a pre-signed PUT URL
(valid for an hour) for diagnostics/<charger>/<time>.log in the diagnostics bucket: the
charger uploads with one HTTP PUT and holds no AWS credentials of its own. The URL is
signed with SigV4, which S3 requires for objects encrypted with a KMS key.
"""

from __future__ import annotations

import argparse
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from chargenet_cli import local_env
from chargenet_cli.errors import CliError, UsageError
from chargenet_cli.output import as_json, table

UPLOAD_URL_EXPIRY_S = 3600
KEY_PREFIX = "diagnostics/"


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
    body = _s3().get_object(Bucket=_bucket(), Key=key)["Body"].read()
    if args.output is None:
        return body.decode("utf-8", errors="replace").rstrip("\n")
    args.output.write_bytes(body)
    return f"saved {key} to {args.output} ({len(body)} bytes)"


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
