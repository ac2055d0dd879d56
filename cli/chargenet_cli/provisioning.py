"""Provision and revoke chargers on the local stack: key on the device side, certificate from the CA.

The shim's key store makes the key pair and a CSR (the private key never leaves it);
the local CA signs the CSR and the certificate is registered in moto's IoT registry,
attached to the charger's thing and to the template's charger policy, as
CreateCertificateFromCsr + AttachPolicy + AttachThingPrincipal do in the cloud.

Revocation is UpdateCertificate(REVOKED) in the registry. IoT Core then disconnects live
connections of the certificate within minutes and refuses it from then on; mosquitto knows
nothing of the registry, so locally the CA's CRL gets the serial, mosquitto reloads it
(SIGHUP) and the live connection is evicted (a client-id takeover, see broker.evict).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import boto3
from cryptography import x509

from chargenet.adapters.iot_certificates import thing_principals
from chargenet.domain.charger_ids import is_charger_id
from chargenet.domain.clock import utc_now
from chargenet_cli.errors import CliError, UsageError
from chargenet_local import broker
from chargenet_local.pki import CHARGER_CERT_DAYS, CsrRejected, LocalCA
from chargenet_local.stack import StackState
from chargenet_shim.credentials import ChargerCredentials, check_password, hash_password
from chargenet_shim.keystore import FileKeyStore
from chargenet_shim.rotation import SignedCertificate


@dataclass(frozen=True)
class ProvisionedCharger:
    charger_id: str
    site_id: str
    certificate_id: str
    certificate_not_after: datetime
    credentials_dir: Path


@dataclass(frozen=True)
class Revocation:
    charger_id: str
    revoked_at: datetime
    certificate_ids: list[str]
    sessions_for_review: list[str]


def charger_dir(state: StackState, charger_id: str) -> Path:
    return Path(state.home) / "chargers" / charger_id


def check_charger_id(charger_id: str) -> None:
    if charger_id == broker.BACKEND_USER:
        # Its certificate's CN is the broker user the ACL lets read and write every charger's
        # topics; fleet provisioning refuses the name too (chargenet_local.fleet_provisioning).
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


def provision(
    state: StackState,
    charger_id: str,
    site_id: str,
    password: str | None = None,
    rated_power_w: int = 22_000,
    time_zone: str | None = None,
) -> ProvisionedCharger:
    from chargenet.adapters.dynamodb import DynamoChargerRegistry

    check_charger_id(charger_id)
    if password:
        check_charger_password(password)  # before any certificate or thing is made
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
        charger_id,
        site_id,
        utc_now(),
        rated_power_w=rated_power_w,
        certificate_not_after=issued.not_after,
        time_zone=time_zone,
    )
    if not registered:
        raise CliError(f"charger {charger_id} already exists")
    return ProvisionedCharger(charger_id, site_id, certificate_id, issued.not_after, folder)


def _register_thing(state: StackState, charger_id: str, site_id: str, certificate_pem: str) -> str:
    iot = boto3.client("iot")
    iot.create_thing(thingName=charger_id, attributePayload={"attributes": {"site": site_id or "none"}})
    return _register_certificate(state, charger_id, certificate_pem)


def _register_certificate(state: StackState, charger_id: str, certificate_pem: str) -> str:
    iot = boto3.client("iot")
    certificate = iot.register_certificate_without_ca(certificatePem=certificate_pem, status="ACTIVE")
    iot.attach_policy(policyName=state.charger_policy, target=certificate["certificateArn"])
    iot.attach_thing_principal(thingName=charger_id, principal=certificate["certificateArn"])
    return certificate["certificateId"]


def certificates_of(charger_id: str) -> list[dict[str, str]]:
    """The certificates attached to a charger's thing, with their status."""
    iot = boto3.client("iot")
    described = []
    for arn in thing_principals(iot, charger_id):
        description = iot.describe_certificate(certificateId=arn.rsplit("/", 1)[-1])["certificateDescription"]
        described.append({"certificate_id": description["certificateId"], "status": description["status"]})
    return described


def revoke(state: StackState, charger_id: str, reason: str | None) -> Revocation:
    """Revoke every certificate of the charger, drop its connection, close its open sessions."""
    from chargenet.adapters.dynamodb import DynamoChargerRegistry

    check_charger_id(charger_id)
    registry = DynamoChargerRegistry()
    charger = registry.get(charger_id)
    if charger is None:
        raise CliError(f"no charger {charger_id}")
    if charger.revoked_at is not None:
        raise CliError(f"charger {charger_id} was already revoked at {charger.revoked_at.isoformat()}")
    at = utc_now()
    certificate_ids = _revoke_certificates(state, charger_id)
    folder = Path(state.home) / "broker"
    # The CRL first: the evicted charger reconnects at once and must meet the new list.
    broker.reload_crl(state.broker_pid, folder)
    broker.evict(charger_id, folder=folder, port=state.mqtt_port, ca=Path(state.ca_path))
    sessions = _close_open_sessions(charger_id, at, reason)
    # Last: until it is recorded, running the command again finishes an interrupted revocation.
    registry.record_revocation(charger_id, at, reason)
    return Revocation(charger_id, at, certificate_ids, sessions)


def _revoke_certificates(state: StackState, charger_id: str) -> list[str]:
    ca = LocalCA(Path(state.home) / "ca")
    revoked = []
    for description in _thing_certificates(charger_id):
        if description["status"] != "REVOKED":
            _retire(description, "REVOKED")
            ca.revoke(description["certificatePem"])
            revoked.append(description["certificateId"])
    return revoked


def _thing_certificates(charger_id: str) -> list[dict[str, Any]]:
    iot = boto3.client("iot")
    return [
        iot.describe_certificate(certificateId=arn.rsplit("/", 1)[-1])["certificateDescription"]
        for arn in thing_principals(iot, charger_id)
    ]


def _retire(description: dict[str, Any], status: str) -> None:
    """UpdateCertificate, and the policy detached too, so a certificate reactivated by mistake
    still grants nothing; the thing keeps it so `charger show` tells its history."""
    iot = boto3.client("iot")
    iot.update_certificate(certificateId=description["certificateId"], newStatus=status)
    arn = description["certificateArn"]
    for policy in iot.list_attached_policies(target=arn)["policies"]:
        iot.detach_policy(policyName=policy["policyName"], target=arn)


def _close_open_sessions(charger_id: str, at: datetime, reason: str | None) -> list[str]:
    """A revoked charger never sends its StopTransaction: end its sessions here, for review."""
    from chargenet.adapters.sessions_dynamodb import DynamoSessionStore
    from chargenet.domain.sessions import SessionState, revocation_event
    from chargenet.services.ocpp.session_log import refresh

    store = DynamoSessionStore()
    closed = []
    for session in store.in_state(SessionState.ACTIVE.value):
        if session.charger_id != charger_id:
            continue
        store.append(session.session_id, revocation_event(store.events(session.session_id), at, reason))
        refresh(store, session)
        closed.append(session.session_id)
    return closed


class LocalIssuer:
    """The operator side of a rotation (chargenet_shim.rotation.CertificateIssuer) on the local stack.

    sign: the local CA for CreateCertificateFromCsr, the certificate registered and attached
    in moto's IoT. confirm: the old certificate INACTIVE in the registry and, since mosquitto
    knows only the CRL, on the CRL too (unlike INACTIVE, that cannot be undone locally).
    """

    def __init__(self, state: StackState, days: int = CHARGER_CERT_DAYS) -> None:
        self._state = state
        self._days = days
        self._ca = LocalCA(Path(state.home) / "ca")

    def sign(self, charger_id: str, csr_pem: str) -> SignedCertificate:
        try:
            issued = self._ca.sign_csr(csr_pem, expected_cn=charger_id, days=self._days)
        except CsrRejected as exc:
            raise CliError(f"certificate request refused: {exc}") from exc
        _register_certificate(self._state, charger_id, issued.pem)
        return SignedCertificate(issued.pem, self._ca.cert_path.read_text())

    def confirm(self, charger_id: str, new_certificate_pem: str, old_certificate_pem: str) -> None:
        from chargenet.adapters.dynamodb import DynamoChargerRegistry

        self._deactivate(charger_id, old_certificate_pem)
        new = x509.load_pem_x509_certificate(new_certificate_pem.encode())
        DynamoChargerRegistry().record_certificate(charger_id, new.not_valid_after_utc)

    def abandon(self, charger_id: str, certificate_pem: str) -> None:
        self._deactivate(charger_id, certificate_pem)

    def _deactivate(self, charger_id: str, certificate_pem: str) -> None:
        for description in _thing_certificates(charger_id):
            if description["certificatePem"].strip() == certificate_pem.strip():
                _retire(description, "INACTIVE")
        self._ca.revoke(certificate_pem)
        broker.reload_crl(self._state.broker_pid, Path(self._state.home) / "broker")


async def rotate_with_shim_link(state: StackState, charger_id: str, issuer: LocalIssuer) -> datetime:
    """`chargenet charger rotate`: act as the charger's shim (its key store and link) for one rotation.

    For a charger whose shim is not running: a running shim holds the client id and rotates
    itself (chargenet_shim.rotation.renew_before_expiry).
    """
    from chargenet_shim.link import ChargerLink
    from chargenet_shim.rotation import rotate

    folder = charger_dir(state, charger_id)
    link = ChargerLink(ChargerCredentials.load(folder))
    await link.connect()
    try:
        return await rotate(link, FileKeyStore(folder), issuer)
    finally:
        await link.close()
