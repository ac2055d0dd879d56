"""Provision a charger on the local stack: key on the device side, certificate from the CA.

The shim's key store makes the key pair and a CSR (the private key never leaves it);
the local CA signs the CSR and the certificate is registered in moto's IoT registry,
attached to the charger's thing and to the template's charger policy, as
CreateCertificateFromCsr + AttachPolicy + AttachThingPrincipal do in the cloud.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import boto3

from chargenet.domain.clock import utc_now
from chargenet.services.ingest import CHARGER_ID_PATTERN
from chargenet_cli.errors import CliError, UsageError
from chargenet_local.pki import CsrRejected, LocalCA
from chargenet_local.stack import StackState
from chargenet_shim.credentials import ChargerCredentials, hash_password
from chargenet_shim.keystore import FileKeyStore


@dataclass(frozen=True)
class ProvisionedCharger:
    charger_id: str
    site_id: str
    certificate_id: str
    certificate_not_after: datetime
    credentials_dir: Path


def charger_dir(state: StackState, charger_id: str) -> Path:
    return Path(state.home) / "chargers" / charger_id


def check_charger_id(charger_id: str) -> None:
    if not re.fullmatch(CHARGER_ID_PATTERN, charger_id):
        raise UsageError(
            f"invalid charger id {charger_id!r}: 1-64 characters, letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )


def provision(
    state: StackState,
    charger_id: str,
    site_id: str,
    password: str | None = None,
    rated_power_w: int = 22_000,
) -> ProvisionedCharger:
    from chargenet.adapters.dynamodb import DynamoChargerRegistry

    check_charger_id(charger_id)
    registry = DynamoChargerRegistry()
    if registry.get(charger_id) is not None:
        raise CliError(f"charger {charger_id} already exists")
    folder = charger_dir(state, charger_id)
    keystore = FileKeyStore(folder)
    ca = LocalCA(Path(state.home) / "ca")
    try:
        issued = ca.sign_csr(keystore.create_csr(charger_id), expected_cn=charger_id)
    except CsrRejected as exc:
        raise CliError(f"certificate request refused: {exc}") from exc
    certificate_id = _register_thing(state, charger_id, site_id, issued.pem)
    keystore.install_certificate(issued.pem, ca.cert_path.read_text())
    ChargerCredentials(
        charger_id=charger_id,
        mqtt_host=state.mqtt_host,
        mqtt_port=state.mqtt_port,
        ingest_rule=state.ingest_rule,
        ca_path=keystore.ca_path,
        cert_path=keystore.cert_path,
        key_path=keystore.key_path,
        password_hash=hash_password(password) if password else None,
    ).save(folder)
    registered = registry.register(
        charger_id, site_id, utc_now(), rated_power_w=rated_power_w, certificate_not_after=issued.not_after
    )
    if not registered:
        raise CliError(f"charger {charger_id} already exists")
    return ProvisionedCharger(charger_id, site_id, certificate_id, issued.not_after, folder)


def _register_thing(state: StackState, charger_id: str, site_id: str, certificate_pem: str) -> str:
    iot = boto3.client("iot")
    certificate = iot.register_certificate_without_ca(certificatePem=certificate_pem, status="ACTIVE")
    iot.create_thing(thingName=charger_id, attributePayload={"attributes": {"site": site_id or "none"}})
    iot.attach_policy(policyName=state.charger_policy, target=certificate["certificateArn"])
    iot.attach_thing_principal(thingName=charger_id, principal=certificate["certificateArn"])
    return certificate["certificateId"]


def certificates_of(charger_id: str) -> list[dict[str, str]]:
    """The certificates attached to a charger's thing, with their status."""
    iot = boto3.client("iot")
    principals = iot.list_thing_principals(thingName=charger_id)["principals"]
    described = []
    for arn in principals:
        description = iot.describe_certificate(certificateId=arn.rsplit("/", 1)[-1])["certificateDescription"]
        described.append({"certificate_id": description["certificateId"], "status": description["status"]})
    return described
