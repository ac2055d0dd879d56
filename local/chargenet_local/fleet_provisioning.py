"""AWS IoT fleet provisioning's MQTT API (CreateCertificateFromCsr, RegisterThing) on mosquitto.

The stack's backend connection listens on the request topics and answers on `.../accepted`
or `.../rejected` with IoT's payloads and error codes. What RegisterThing does comes from the
template's AWS::IoT::ProvisioningTemplate: its parameters, its pre-provisioning hook (invoked
through the local Lambda runtime, refused when it fails or says no), its resources (thing,
certificate, policy) and its device configuration.

Two things IoT Core knows that mosquitto does not, handled here:
- IoT answers only the connection that asked; mosquitto delivers a reply to every subscriber
  of the reply topic, so every claim client can read the other claims' replies (the new
  certificate and its ownership token; never a private key). docs/SECURITY.md, local differences.
- IoT tells the hook which claim certificate the request came with (`claimCertificateId`);
  mosquitto does not tell a subscriber who published, so locally the hook is told the claim
  certificate the serial's allow-list entry names (its batch): the hook's batch check passes
  locally by construction and is proved against IoT's event by its unit tests.
- A certificate IoT creates is PENDING_ACTIVATION, useless until RegisterThing; mosquitto trusts
  every certificate the CA signed that is not on the CRL. So a CSR is signed only for a serial
  that is allow-listed and not claimed by another key, its CN must be the thing name it registers
  as, and once a serial is registered every other certificate issued for it goes on the CRL.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.x509.oid import NameOID

from chargenet.domain.certificates import public_key_sha256
from chargenet.domain.charger_ids import is_charger_id
from chargenet_local.broker import BACKEND_USER
from chargenet_local.pki import CsrRejected, LocalCA
from chargenet_local.template import Template

log = logging.getLogger("chargenet.local.provisioning")

CREATE_FROM_CSR_TOPIC = "$aws/certificates/create-from-csr/json"
CERTIFICATE_ID_PARAMETER = "AWS::IoT::Certificate::Id"
OWNERSHIP_TOKEN_TTL_S = 3600  # IoT's certificateOwnershipToken expires after an hour


def register_thing_topic(template_name: str) -> str:
    return f"$aws/provisioning-templates/{template_name}/provision/json"


@dataclass(frozen=True)
class ProvisioningTemplateSpec:
    name: str
    body: dict[str, Any]
    hook_function: str | None  # logical id of the pre-provisioning hook
    enabled: bool

    @classmethod
    def from_template(cls, template: Template) -> ProvisioningTemplateSpec | None:
        found = template.of_type("AWS::IoT::ProvisioningTemplate")
        if not found:
            return None
        [resource] = found.values()
        props = resource["Properties"]
        hook = props.get("PreProvisioningHook", {}).get("TargetArn", {})
        return cls(
            name=str(template.resolve(props["TemplateName"])),
            body=json.loads(template.resolve(props["TemplateBody"])),
            hook_function=hook["Fn::GetAtt"][0] if isinstance(hook, dict) and "Fn::GetAtt" in hook else None,
            enabled=bool(props.get("Enabled", False)),
        )


class Rejected(Exception):
    """An API error: IoT's `{statusCode, errorCode, errorMessage}` on the rejected topic."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.payload = {"statusCode": status, "errorCode": code, "errorMessage": message}


@dataclass
class _Pending:
    certificate_id: str
    certificate_arn: str
    certificate_pem: str
    thing_name: str  # the CN the certificate was signed for
    expires_at: float
    revoked: bool = False  # another certificate registered this serial


class FleetProvisioning:
    def __init__(
        self,
        spec: ProvisioningTemplateSpec,
        *,
        ca: LocalCA,
        iot: Any,
        dynamodb: Any,
        allow_list_table: str,
        invoke_hook: Callable[[dict[str, Any]], Any] | None,
        publish: Callable[[str, bytes], None],
        reload_crl: Callable[[], None],
        template_arn: str,
    ) -> None:
        self.spec = spec
        self._ca = ca
        self._iot = iot
        self._dynamodb = dynamodb
        self._allow_list_table = allow_list_table
        self._invoke_hook = invoke_hook
        self._publish = publish
        self._reload_crl = reload_crl
        self._template_arn = template_arn
        self._pending: dict[str, _Pending] = {}  # by ownership token
        self._lock = threading.Lock()
        # The hook takes up to seconds: never on awscrt's thread, which delivers every message.
        self._workers = ThreadPoolExecutor(max_workers=2, thread_name_prefix="fleet-provisioning")

    @property
    def request_topics(self) -> list[str]:
        return [CREATE_FROM_CSR_TOPIC, register_thing_topic(self.spec.name)]

    def on_message(self, topic: str, payload: bytes) -> None:
        self._workers.submit(self._answer, topic, payload)

    def stop(self) -> None:
        self._workers.shutdown(wait=True, cancel_futures=True)

    # ------------------------------------------------------------------ requests
    def _answer(self, topic: str, payload: bytes) -> None:
        handler = self._create_from_csr if topic == CREATE_FROM_CSR_TOPIC else self._register_thing
        try:
            request = json.loads(payload)
            if not isinstance(request, dict):
                raise Rejected(400, "InvalidPayload", "the request must be a JSON object")
            reply, outcome = handler(request), "accepted"
        except Rejected as rejected:
            reply, outcome = rejected.payload, "rejected"
        except json.JSONDecodeError:
            reply, outcome = Rejected(400, "InvalidPayload", "the request is not JSON").payload, "rejected"
        except Exception as exc:  # the device gets an answer; the stack log gets the cause
            log.exception("fleet provisioning request on %s failed", topic)
            reply, outcome = Rejected(500, "InternalFailure", type(exc).__name__).payload, "rejected"
        self._publish(f"{topic}/{outcome}", json.dumps(reply).encode())

    def _create_from_csr(self, request: dict[str, Any]) -> dict[str, str]:
        csr_pem = request.get("certificateSigningRequest")
        if not isinstance(csr_pem, str):
            raise Rejected(400, "InvalidPayload", "certificateSigningRequest is required")
        csr = _load_csr(csr_pem)
        names = csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        thing_name = str(names[0].value) if names else ""
        self._check_signable(thing_name, public_key_sha256(csr.public_key()))
        try:
            issued = self._ca.sign_csr(csr_pem, expected_cn=thing_name)
        except CsrRejected as exc:
            raise Rejected(400, "InvalidCsr", str(exc)) from exc
        registered = self._iot.register_certificate_without_ca(
            certificatePem=issued.pem, status="PENDING_ACTIVATION"
        )
        token = secrets.token_urlsafe(48)
        with self._lock:
            self._drop_expired()
            self._pending[token] = _Pending(
                registered["certificateId"],
                registered["certificateArn"],
                issued.pem,
                thing_name,
                time.monotonic() + OWNERSHIP_TOKEN_TTL_S,
            )
        return {
            "certificateId": registered["certificateId"],
            "certificatePem": issued.pem,
            "certificateOwnershipToken": token,
        }

    def _check_signable(self, thing_name: str, device_key: str) -> None:
        """Locally a signed certificate connects at once: sign only for a serial free to claim,
        or claimed by this very key (a device that lost its registration reply starts over)."""
        # The CN becomes the broker user name and the thing name: a charger id.
        if not is_charger_id(thing_name) or thing_name == BACKEND_USER:
            raise Rejected(400, "InvalidCsr", "the CSR's common name must be the charger's serial number")
        item = self._dynamodb.get_item(
            TableName=self._allow_list_table, Key={"serial_number": {"S": thing_name}}, ConsistentRead=True
        ).get("Item")
        if item is None or item.get("claimed_key", {}).get("S", device_key) != device_key:
            raise Rejected(403, "AccessDenied", "no certificate for this serial number")

    def _register_thing(self, request: dict[str, Any]) -> dict[str, Any]:
        if not self.spec.enabled:
            raise Rejected(400, "InvalidTemplate", f"provisioning template {self.spec.name} is disabled")
        pending = self._redeem(request.get("certificateOwnershipToken"))
        parameters = request.get("parameters") or {}
        if not isinstance(parameters, dict) or not all(isinstance(v, str) for v in parameters.values()):
            raise Rejected(400, "InvalidParameters", "parameters must be an object of strings")
        parameters = {**parameters, CERTIFICATE_ID_PARAMETER: pending.certificate_id}
        parameters = self._consult_hook(pending, parameters)
        values = self._parameter_values(parameters)
        thing_name = self._apply(values, pending)
        return {"deviceConfiguration": self.spec.body.get("DeviceConfiguration", {}), "thingName": thing_name}

    def _redeem(self, token: object) -> _Pending:
        with self._lock:
            self._drop_expired()
            pending = self._pending.get(token) if isinstance(token, str) else None
        if pending is None:
            raise Rejected(400, "InvalidCertificateOwnershipToken", "certificate ownership token is invalid")
        # Kept until it expires: a device that lost the reply may send the same request again.
        return pending

    def _drop_expired(self) -> None:
        now = time.monotonic()
        for token in [t for t, p in self._pending.items() if p.expires_at < now]:
            del self._pending[token]

    def _consult_hook(self, pending: _Pending, parameters: dict[str, str]) -> dict[str, str]:
        if self._invoke_hook is None:
            return parameters
        event = {
            # mosquitto does not tell a subscriber who published: the claim certificate and client id
            # are unknown here; the serial's batch stands in for the claim certificate (module docstring).
            "claimCertificateId": self._batch_of(pending.thing_name),
            "certificateId": pending.certificate_id,
            "certificatePem": pending.certificate_pem,
            "templateArn": self._template_arn,
            "clientId": "",
            "parameters": {k: v for k, v in parameters.items() if k != CERTIFICATE_ID_PARAMETER},
        }
        try:
            answer = self._invoke_hook(event)
        except Exception as exc:  # IoT: a failing hook is an ACCESS_DENIED
            log.error("pre-provisioning hook failed: %s", str(exc).splitlines()[0])
            raise Rejected(403, "AccessDenied", "the pre-provisioning hook failed") from exc
        if not isinstance(answer, dict) or answer.get("allowProvisioning") is not True:
            raise Rejected(403, "AccessDenied", "the pre-provisioning hook refused the request")
        overrides = answer.get("parameterOverrides") or {}
        return {**parameters, **{k: str(v) for k, v in overrides.items()}}

    def _batch_of(self, serial_number: str) -> str:
        item = self._dynamodb.get_item(
            TableName=self._allow_list_table, Key={"serial_number": {"S": serial_number}}, ConsistentRead=True
        ).get("Item", {})
        return str(item.get("claim_certificate_id", {}).get("S", ""))

    def _parameter_values(self, parameters: dict[str, str]) -> dict[str, str]:
        values = {}
        for name, declared in self.spec.body.get("Parameters", {}).items():
            if name in parameters:
                values[name] = parameters[name]
            elif "Default" in declared:
                values[name] = str(declared["Default"])
            else:
                raise Rejected(400, "InvalidParameters", f"parameter {name} is required")
        return values

    # --------------------------------------------------------------- the template
    def _apply(self, values: dict[str, str], pending: _Pending) -> str:
        resources = self.spec.body.get("Resources", {})
        things = [
            _resolve(r["Properties"], values) for r in resources.values() if r["Type"] == "AWS::IoT::Thing"
        ]
        policies = [
            _resolve(r["Properties"], values)["PolicyName"]
            for r in resources.values()
            if r["Type"] == "AWS::IoT::Policy"
        ]
        certificates = [
            _resolve(r["Properties"], values)
            for r in resources.values()
            if r["Type"] == "AWS::IoT::Certificate"
        ]
        [thing] = things
        thing_name = str(thing["ThingName"])
        if thing_name != pending.thing_name:
            # mosquitto's ACL is keyed by the certificate's CN (IoT's by the attached thing).
            raise Rejected(400, "InvalidParameters", "the certificate's common name must be the thing name")
        attributes = {"attributes": {k: str(v) for k, v in thing.get("AttributePayload", {}).items()}}
        try:
            self._iot.create_thing(thingName=thing_name, attributePayload=attributes)
        except self._iot.exceptions.ResourceAlreadyExistsException:
            self._iot.update_thing(thingName=thing_name, attributePayload=attributes)
        for certificate in certificates:
            self._iot.update_certificate(
                certificateId=certificate["CertificateId"], newStatus=certificate.get("Status", "ACTIVE")
            )
        for policy in policies:
            self._iot.attach_policy(policyName=policy, target=pending.certificate_arn)
        self._iot.attach_thing_principal(thingName=thing_name, principal=pending.certificate_arn)
        self._revoke_others(pending)
        return thing_name

    def _revoke_others(self, registered: _Pending) -> None:
        """Certificates signed for this serial but not registered: off the broker, as IoT's are.

        Their tokens stay: a RegisterThing with one still gets the hook's answer, as in IoT.
        """
        with self._lock:
            others = [
                p
                for p in self._pending.values()
                if p.thing_name == registered.thing_name
                and p.certificate_id != registered.certificate_id
                and not p.revoked
            ]
            for other in others:
                other.revoked = True
        for other in others:
            self._iot.update_certificate(certificateId=other.certificate_id, newStatus="REVOKED")
            self._ca.revoke(other.certificate_pem)
        if others:
            self._reload_crl()


def _load_csr(csr_pem: str) -> x509.CertificateSigningRequest:
    try:
        return x509.load_pem_x509_csr(csr_pem.encode())
    except ValueError as exc:
        raise Rejected(400, "InvalidCsr", "not a PEM certificate signing request") from exc


def _resolve(value: Any, parameters: dict[str, str]) -> Any:
    """The template body's only intrinsic: {"Ref": parameter}."""
    if isinstance(value, dict):
        if set(value) == {"Ref"}:
            return parameters[value["Ref"]]
        return {k: _resolve(v, parameters) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v, parameters) for v in value]
    return value
