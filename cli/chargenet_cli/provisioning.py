"""The operator's side of provisioning and rotating a charger, through the operator API.

The charger's key store (the shim's) makes the key pair and the CSR: the private key never leaves
the operator's machine (or the charger). The API signs the CSR (IoT CreateCertificateFromCsr),
creates the thing and the registry record (chargenet.services.operator_chargers); the credentials
folder the shim runs from is written here.

`provision` is also the local stack's harness (the tests, the demo, the scenario runner): the same
API call, signed in with the profile of the stack's home, so there is one way to provision.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from chargenet.domain.charger_ids import is_charger_id
from chargenet_cli.errors import UsageError
from chargenet_cli.operator_api import OperatorApi, for_profile
from chargenet_cli.operator_profile import local_profile
from chargenet_shim.credentials import ChargerCredentials, check_password, hash_password
from chargenet_shim.keystore import FileKeyStore
from chargenet_shim.rotation import SignedCertificate

# The local stack's broker user for the backend (chargenet_local.broker.BACKEND_USER): a
# certificate with this CN would be the user whose ACL reads and writes every charger's topics.
RESERVED_CHARGER_IDS = frozenset({"chargenet-backend"})


@dataclass(frozen=True)
class ProvisionedCharger:
    charger_id: str
    site_id: str
    certificate_id: str
    certificate_not_after: datetime
    credentials_dir: Path


@dataclass(frozen=True)
class Broker:
    """Where the charger connects."""

    mqtt_host: str
    mqtt_port: int
    ingest_rule: str


def charger_dir(state: Any, charger_id: str) -> Path:
    """A charger's credentials folder on the local stack."""
    return Path(state.home) / "chargers" / charger_id


def check_charger_id(charger_id: str) -> None:
    if charger_id in RESERVED_CHARGER_IDS:
        # fleet provisioning refuses the name too (chargenet_local.fleet_provisioning)
        raise UsageError(f"charger id {charger_id!r} is reserved for the backend's broker connection")
    if not is_charger_id(charger_id):
        raise UsageError(
            f"invalid charger id {charger_id!r}: 1-64 characters, letters, digits, '_' or '-' "
            "(an IoT thing name: no dots), starting with a letter or digit"
        )


def check_charger_password(password: str) -> None:
    """The gateway's Basic Auth rules for a charger's password, as a usage error."""
    try:
        check_password(password)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc


def provision_with(
    api: OperatorApi,
    folder: Path,
    charger_id: str,
    site_id: str,
    ca_pem: str,
    broker: Broker | None = None,
    password: str | None = None,
    rated_power_w: int = 22_000,
    time_zone: str | None = None,
) -> ProvisionedCharger:
    """`ca_pem`: what the charger trusts the broker with; `broker` None: the one the API names
    (IoT's data endpoint), the local stack gives its own."""
    check_charger_id(charger_id)
    if password:
        check_charger_password(password)  # before any key, certificate or thing is made
    keystore = FileKeyStore(folder)
    body: dict[str, Any] = {
        "charger_id": charger_id,
        "site": site_id,
        "csr": keystore.create_csr(charger_id),
        "rated_power_w": rated_power_w,
    }
    if time_zone:
        body["time_zone"] = time_zone
    done = api.post("/chargers", body, action="provision a charger")
    where = broker or Broker(done["mqtt_host"], int(done["mqtt_port"]), done["ingest_rule"])
    keystore.install_certificate(done["certificate_pem"], ca_pem)
    ChargerCredentials(
        charger_id=charger_id,
        mqtt_host=where.mqtt_host,
        mqtt_port=where.mqtt_port,
        ingest_rule=where.ingest_rule,
        ca_path=keystore.ca_path,
        cert_path=keystore.cert_path,
        key_path=keystore.key_path,
        # Hashed here: the gateway on the site checks it, and the password never travels.
        password_hash=hash_password(password) if password else None,
    ).save(folder)
    not_after = datetime.fromisoformat(done["certificate_not_after"])
    return ProvisionedCharger(charger_id, site_id, done["certificate_id"], not_after, folder)


def local_broker(state: Any) -> Broker:
    """The local stack's mosquitto (moto's IoT names no endpoint a charger could reach)."""
    return Broker(state.mqtt_host, state.mqtt_port, state.ingest_rule)


def certificates_of(api: OperatorApi, charger_id: str) -> dict[str, Any]:
    """{"time_zone", "certificates": [{"certificate_id", "status"}]} of a charger."""
    return dict(api.get(f"/chargers/{charger_id}/certificates", action="read a charger's certificates"))


def provision(
    state: Any,
    charger_id: str,
    site_id: str,
    password: str | None = None,
    rated_power_w: int = 22_000,
    time_zone: str | None = None,
) -> ProvisionedCharger:
    """The local stack's harness: `charger add` as the operator signed in to the stack's profile."""
    api = for_profile(local_profile(Path(state.home)))
    ca_pem = Path(state.ca_path).read_text()
    return provision_with(
        api,
        charger_dir(state, charger_id),
        charger_id,
        site_id,
        ca_pem,
        local_broker(state),
        password,
        rated_power_w,
        time_zone,
    )


class ApiIssuer:
    """The operator side of a rotation (chargenet_shim.rotation.CertificateIssuer) through the API.

    The CA the link verifies the broker with stays the charger's: only its client certificate changes.
    """

    def __init__(self, api: OperatorApi, ca_pem: str) -> None:
        self._api = api
        self._ca_pem = ca_pem
        self._issued: dict[str, str] = {}  # certificate PEM -> its IoT id

    def sign(self, charger_id: str, csr_pem: str) -> SignedCertificate:
        done = self._step(charger_id, {"csr": csr_pem})
        self._issued[done["certificate_pem"].strip()] = done["certificate_id"]
        return SignedCertificate(done["certificate_pem"], self._ca_pem)

    def confirm(self, charger_id: str, new_certificate_pem: str, old_certificate_pem: str) -> None:
        self._step(charger_id, {"installed": self._issued[new_certificate_pem.strip()]})

    def abandon(self, charger_id: str, certificate_pem: str) -> None:
        self._step(charger_id, {"abandoned": self._issued[certificate_pem.strip()]})

    def _step(self, charger_id: str, body: dict[str, str]) -> Any:
        return self._api.post(f"/chargers/{charger_id}/rotate", body, action="rotate a charger's certificate")


async def rotate_with_shim_link(api: OperatorApi, folder: Path) -> datetime:
    """`chargenet charger rotate`: act as the charger's shim (its key store and link) for one rotation.

    For a charger whose shim is not running: a running shim holds the client id and rotates
    itself (chargenet_shim.rotation.renew_before_expiry).
    """
    from chargenet_shim.link import ChargerLink
    from chargenet_shim.rotation import rotate

    keystore = FileKeyStore(folder)
    link = ChargerLink(ChargerCredentials.load(folder))
    await link.connect()
    try:
        return await rotate(link, keystore, ApiIssuer(api, keystore.ca_path.read_text()))
    finally:
        await link.close()
