"""What one charger needs to reach the cloud: its identity, broker, topics and key files.

Saved as charger.json next to the charger's key store (the same file whichever OCPP version the
charger speaks), together with the optional Basic Auth password hash the site gateway checks
(OCPP security profiles 1 and 2).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from chargenet_shim.ocpp_version import OcppVersion

FILE_NAME = "charger.json"
# Also a folder name and an MQTT topic level (no separators or wildcards) and the IoT thing name
# (no dots); no colon, which claim certificates' client ids hold. The same pattern as the cloud
# layer's chargenet.domain.charger_ids, which this package cannot import (a unit test holds them equal).
CHARGER_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"

_FILE_FIELDS = ("ca_path", "cert_path", "key_path")
# Appended to charger.json's ingest rule: template.yaml names Ocpp201IngestRule "${IngestRuleName}_ocpp201".
_RULE_SUFFIX = {OcppVersion.V16: "", OcppVersion.V201: "_ocpp201"}

# OCPP 1.6 security whitepaper (A00.FR.205): an AuthorizationKey is at least 16 bytes, and 2.0.1's
# BasicAuthPassword at least 16 characters. Shorter ones come within reach of a patient online
# guesser despite the lockout, and of an offline one if a charger.json leaks.
MIN_PASSWORD_BYTES = 16

_SCHEME = "scrypt"
_N, _R, _P = 2**14, 8, 1
_SALT_BYTES = 16
_HASH_BYTES = 32


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _derive(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, dklen=_HASH_BYTES)


def _parse_hash(stored: str) -> tuple[int, int, int, bytes, bytes]:
    parts = stored.split("$")
    if len(parts) != 6 or parts[0] != _SCHEME:
        raise ValueError("not a scrypt password hash")
    try:
        n, r, p = (int(part) for part in parts[1:4])
        return n, r, p, base64.b64decode(parts[4], validate=True), base64.b64decode(parts[5], validate=True)
    except ValueError as exc:
        raise ValueError(f"malformed scrypt password hash: {exc}") from exc


def _check_hash(stored: str | None) -> str | None:
    if stored is not None:
        _parse_hash(stored)
    return stored


def check_password(password: str) -> None:
    """ValueError unless `password` may become a charger's Basic Auth password."""
    if not password:
        raise ValueError("password must not be empty")
    if len(password.encode()) < MIN_PASSWORD_BYTES:
        raise ValueError(
            f"password too short: at least {MIN_PASSWORD_BYTES} bytes (OCPP security profiles 1 and 2)"
        )


def hash_password(password: str) -> str:
    """`scrypt$n$r$p$salt$hash`: the parameters travel with the hash so they can be raised later."""
    check_password(password)
    salt = secrets.token_bytes(_SALT_BYTES)
    digest = _derive(password, salt, _N, _R, _P)
    return "$".join([_SCHEME, str(_N), str(_R), str(_P), _b64(salt), _b64(digest)])


def verify_password(password: str, stored: str) -> bool:
    n, r, p, salt, expected = _parse_hash(stored)
    return hmac.compare_digest(_derive(password, salt, n, r, p), expected)


class ChargerCredentials(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    charger_id: str = Field(pattern=CHARGER_ID_PATTERN)
    mqtt_host: str = Field(min_length=1)
    mqtt_port: int = Field(ge=1, le=65535)
    ingest_rule: str = Field(pattern=r"^[A-Za-z0-9_]+$")
    ca_path: Path
    cert_path: Path
    key_path: Path
    # A malformed hash is rejected when the file is read, not at the first login.
    password_hash: Annotated[str | None, AfterValidator(_check_hash)] = None

    def ingest_topic_for(self, version: OcppVersion) -> str:
        """IoT Basic Ingest: the rule gets the frame without a broker round trip.

        One rule per OCPP version (template.yaml OcppIngestRule, Ocpp201IngestRule): the version
        travels with every frame, and charger.json names only the 1.6 rule, the others derived.
        """
        rule = self.ingest_rule + _RULE_SUFFIX[OcppVersion(version)]
        return f"$aws/rules/{rule}/chargers/{self.charger_id}/in"

    @property
    def reply_topic(self) -> str:
        return f"chargers/{self.charger_id}/out"

    @classmethod
    def load(cls, folder: Path) -> ChargerCredentials:
        """Read charger.json; relative key file paths are taken from the charger's folder."""
        loaded = cls.model_validate_json((folder / FILE_NAME).read_text())
        base = folder.resolve()
        return loaded.model_copy(update={name: base / getattr(loaded, name) for name in _FILE_FIELDS})

    def save(self, folder: Path) -> Path:
        """Write charger.json, with the key files inside the folder stored relative so it can be moved."""
        base = folder.resolve()
        data = self.model_dump(mode="json")
        for name in _FILE_FIELDS:
            path: Path = getattr(self, name)
            if path.is_absolute() and path.is_relative_to(base):
                data[name] = str(path.relative_to(base))
        target = folder / FILE_NAME
        staging = folder / f".{FILE_NAME}.tmp"
        # 0600: the password hash is an offline brute-force target. Written aside and renamed
        # so a crash mid-write (e.g. during set-password) never leaves a truncated file.
        fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump(data, out, indent=2)
        os.replace(staging, target)
        return target
