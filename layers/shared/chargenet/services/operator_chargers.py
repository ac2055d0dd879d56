"""The operator API's charger use cases: provision a charger from its CSR, revoke it, rotate its
certificate, list its certificates, a site's time zone, and factory provisioning: the batches'
claim certificates and the allow-list of serials.

The key pair is made on the charger's (or the operator's) side: only its CSR comes here, and IoT
signs it (CreateCertificateFromCsr; locally moto, patched to sign with the local CA). Revoking is
UpdateCertificate(REVOKED) on every certificate of the thing; IoT Core then drops the live
connection and refuses the certificate (locally the moto patch puts it on the broker's CRL and
evicts the connection), and the ingest refuses frames of a charger marked revoked. A batch's claim
certificate is made the same way, from a CSR for CLAIM_COMMON_NAME, with the claim policy instead.

Permissions, the audit trail and listings' cursors: chargenet.services.operator_access.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from chargenet.domain import certificates
from chargenet.domain.certificates import CertificateStatus, ChargerCertificate, CsrRefused
from chargenet.domain.charger_ids import is_charger_id
from chargenet.domain.models import Charger, SessionRecord
from chargenet.domain.ocpp201_messages import DeviceModel
from chargenet.domain.operators import Operator, Permission
from chargenet.domain.provisioning import CLAIM_COMMON_NAME, AllowedSerial
from chargenet.domain.sessions import SessionState, revocation_event
from chargenet.domain.time_zones import site_clock, time_zone_name
from chargenet.ports.audit import Key, Page
from chargenet.ports.certificates import CertificateAuthority
from chargenet.ports.provisioning import ClaimCertificates, NotAClaimCertificate, UnknownCertificate
from chargenet.ports.sessions import SessionStore
from chargenet.services.commands import speaks
from chargenet.services.ocpp.session_log import refresh
from chargenet.services.operator_access import (
    BadRequest,
    Conflict,
    NotFound,
    OperatorAccess,
    RequestInfo,
    charger_target,
    checked_charger_id,
    require,
)
from chargenet.services.operator_api import SITE_ID

# IoT certificate ids: the SHA-256 of the certificate, 64 hex digits.
CERTIFICATE_ID = re.compile(r"[0-9a-fA-F]{64}")
MAX_REASON_CHARS = 500
MAX_SERIALS_PER_REQUEST = 100
ReadBody = Callable[[], dict[str, Any]]


class ChargerRecords(Protocol):
    """The charger registry's part these use cases change (chargenet.adapters.dynamodb)."""

    def get(self, charger_id: str) -> Charger | None: ...

    def register(
        self,
        charger_id: str,
        site_id: str,
        at: datetime,
        rated_power_w: int | None = None,
        certificate_not_after: datetime | None = None,
        time_zone: str | None = None,
    ) -> bool: ...

    def record_certificate(self, charger_id: str, not_after: datetime) -> None: ...

    def record_revocation(self, charger_id: str, at: datetime, reason: str | None) -> None: ...

    def site_time_zone(self, site_id: str) -> str | None: ...

    def device_model(self, charger_id: str) -> DeviceModel | None: ...

    def set_site_time_zone(self, site_id: str, time_zone: str) -> None: ...


class ChargerIdentities(CertificateAuthority, Protocol):
    """IoT's registry: things and their certificates (chargenet.adapters.iot_certificates)."""

    def create_thing(self, charger_id: str, site_id: str) -> None: ...

    def revoke(self, charger_id: str, certificate_id: str) -> None:
        """REVOKED, its policies detached (reactivated by mistake, it would grant nothing), and
        detached from the charger's thing."""
        ...

    def broker(self) -> dict[str, Any]:
        """Where chargers connect: {"mqtt_host", "mqtt_port", "ingest_rule"}."""
        ...


class OpenSessions(SessionStore, Protocol):
    def in_state(self, state: str) -> list[SessionRecord]: ...


class SerialAllowList(Protocol):
    def allow(self, serial_number: str, site_id: str, at: datetime, claim_certificate_id: str) -> bool: ...

    def page(self, limit: int, start: Key | None) -> Page[AllowedSerial]: ...


@dataclass(frozen=True)
class ChargerAdministration:
    access: OperatorAccess
    registry: ChargerRecords
    identities: ChargerIdentities
    sessions: OpenSessions
    allow_list: SerialAllowList
    claims: ClaimCertificates
    provisioning_template: str  # the fleet provisioning template a claiming charger registers with
    deployment_time_zone: str
    clock: Callable[[], datetime]

    # ------------------------------------------------------------------ chargers
    def provision(self, operator: Operator, request: RequestInfo, read_body: ReadBody) -> dict[str, Any]:
        """201: the thing, its certificate signed from the CSR, the registry record; the broker."""
        require(operator, Permission.CHARGERS_WRITE)
        targets = {"charger_id": "(not read)"}
        with self.access.audited(operator, request, targets, ok_status=201):
            body = read_body()
            charger_id = checked_charger_id(_text(body, "charger_id"))
            targets["charger_id"] = charger_id
            site_id = _site(body.get("site", ""), optional=True)
            targets["site_id"] = site_id
            time_zone = _time_zone(body["time_zone"]) if body.get("time_zone") is not None else None
            rated_power_w = _positive(body.get("rated_power_w", 22_000), "rated_power_w")
            csr = _text(body, "csr")
            _check_csr(csr, charger_id)
            if self.registry.get(charger_id) is not None:
                raise Conflict(f"charger {charger_id} already exists")
            self.identities.create_thing(charger_id, site_id)
            issued = self.identities.issue(charger_id, csr)
            not_after = certificates.facts(issued.pem).not_after
            targets["certificate_id"] = issued.certificate_id
            registered = self.registry.register(
                charger_id,
                site_id,
                self.clock(),
                rated_power_w=rated_power_w,
                certificate_not_after=not_after,
                time_zone=time_zone,
            )
            if not registered:
                raise Conflict(f"charger {charger_id} already exists")
            return {
                "charger_id": charger_id,
                "site_id": site_id,
                **_certificate_answer(issued, not_after),
                **self.identities.broker(),
            }
        raise AssertionError("unreachable")  # pragma: no cover

    def certificates(self, operator: Operator, charger_id: str) -> dict[str, Any]:
        """What `charger show` adds: its certificates with their status, the wall clock its sessions
        are priced on (its own zone, else its site's, else the deployment's), the OCPP version the
        backend writes to it in, and the device model it last reported (2.0.1 GetBaseReport)."""
        require(operator, Permission.CHARGERS_READ)
        charger = self._charger(checked_charger_id(charger_id))
        site_zone = (
            self.registry.site_time_zone(charger.site_id)
            if charger.site_id and not charger.time_zone
            else None
        )
        found = self.identities.certificates_of(charger_id)
        device_model = self.registry.device_model(charger_id)
        return {
            "charger_id": charger_id,
            "time_zone": site_clock(charger.time_zone, site_zone, self.deployment_time_zone),
            "certificates": [{"certificate_id": c.certificate_id, "status": c.status.value} for c in found],
            "ocpp_version": speaks(charger).value,
            "device_model": device_model.model_dump(mode="json") if device_model else None,
        }

    def revoke(
        self, operator: Operator, request: RequestInfo, charger_id: str, read_body: ReadBody
    ) -> dict[str, Any]:
        """Every certificate of the thing REVOKED, open sessions closed for review, the registry
        marked revoked last: until then, asking again finishes an interrupted revocation."""
        require(operator, Permission.CHARGERS_WRITE)
        with self.access.audited(operator, request, {"charger_id": charger_target(charger_id)}) as record:
            charger = self._charger(checked_charger_id(charger_id))
            reason = read_body().get("reason")
            if reason is not None and (not isinstance(reason, str) or len(reason) > MAX_REASON_CHARS):
                raise BadRequest(f"reason is text of at most {MAX_REASON_CHARS} characters")
            record["note"] = reason
            if charger.revoked_at is not None:
                raise Conflict(
                    f"charger {charger_id} was already revoked at {charger.revoked_at.isoformat()}"
                )
            at = self.clock()
            revoked = []
            # Every certificate still on the thing: one revoked by an interrupted attempt is
            # detached now.
            for certificate in self.identities.certificates_of(charger_id):
                self.identities.revoke(charger_id, certificate.certificate_id)
                revoked.append(certificate.certificate_id)
            for_review = self._close_open_sessions(charger_id, at, reason)
            self.registry.record_revocation(charger_id, at, reason)
            return {
                "charger_id": charger_id,
                "revoked_at": at.isoformat(),
                "certificate_ids": revoked,
                "sessions_for_review": for_review,
            }
        raise AssertionError("unreachable")  # pragma: no cover

    def rotate(
        self, operator: Operator, request: RequestInfo, charger_id: str, read_body: ReadBody
    ) -> dict[str, Any]:
        """One step of a rotation the operator runs for the charger (its key store and link), in
        the order chargenet_shim.rotation keeps: {"csr"} signs a new certificate (the old one stays
        active); {"installed": id} once the charger connected with it: every other one INACTIVE and
        the new expiry recorded; {"abandoned": id}: the new one never connected, INACTIVE."""
        require(operator, Permission.CHARGERS_WRITE)
        targets = {"charger_id": charger_target(charger_id)}
        with self.access.audited(operator, request, targets):
            charger = self._charger(checked_charger_id(charger_id))
            if charger.revoked_at is not None:
                raise Conflict(f"charger {charger_id} is revoked: a revoked charger is not rotated")
            body = read_body()
            steps = {"csr", "installed", "abandoned"} & set(body)
            if len(steps) != 1 or set(body) - steps:
                raise BadRequest('the body is one of {"csr"}, {"installed"} or {"abandoned"}')
            (step,) = steps
            if step == "csr":
                return self._sign_rotation(charger_id, _text(body, "csr"), targets)
            certificate_id = _certificate_id(body[step])
            targets["certificate_id"] = certificate_id
            registered = self.identities.certificates_of(charger_id)
            chosen = _active(registered, certificate_id)
            if step == "installed":
                for old in certificates.to_retire_after_install(registered, chosen):
                    self.identities.retire(old.certificate_id)
                not_after = certificates.facts(chosen.pem).not_after
                self.registry.record_certificate(charger_id, not_after)
                return {"charger_id": charger_id, **_certificate_answer(chosen, not_after)}
            if not certificates.may_abandon(registered, chosen):
                raise Conflict("that is the charger's last active certificate")
            self.identities.retire(certificate_id)
            return {"charger_id": charger_id, "certificate_id": certificate_id, "status": "INACTIVE"}
        raise AssertionError("unreachable")  # pragma: no cover

    # ------------------------------------------------------------------ sites
    def site(self, operator: Operator, site_id: str) -> dict[str, Any]:
        require(operator, Permission.CHARGERS_READ)
        _site(site_id)
        return {
            "site_id": site_id,
            "time_zone": self.registry.site_time_zone(site_id),
            "deployment_time_zone": self.deployment_time_zone,
        }

    def set_site_time_zone(
        self, operator: Operator, request: RequestInfo, site_id: str, read_body: ReadBody
    ) -> dict[str, Any]:
        require(operator, Permission.CHARGERS_WRITE)
        valid = SITE_ID.fullmatch(site_id) is not None
        with self.access.audited(operator, request, {"site_id": site_id if valid else "(not a site id)"}):
            _site(site_id)
            time_zone = _time_zone(read_body().get("time_zone"))
            self.registry.set_site_time_zone(site_id, time_zone)
            return {"site_id": site_id, "time_zone": time_zone}
        raise AssertionError("unreachable")  # pragma: no cover

    # ------------------------------------------------------------------ factory provisioning
    def issue_claim_certificate(
        self, operator: Operator, request: RequestInfo, read_body: ReadBody
    ) -> dict[str, Any]:
        """201: a batch's claim certificate signed from the CSR (its key stays with the operator),
        and what its bundle needs: where to connect and the template to register with."""
        require(operator, Permission.CHARGERS_WRITE)
        targets = {"certificate_id": "(not issued)"}
        with self.access.audited(operator, request, targets, ok_status=201):
            csr = _text(read_body(), "csr")
            _check_csr(csr, CLAIM_COMMON_NAME)
            broker = self.identities.broker()
            issued = self.claims.issue(csr)
            targets["certificate_id"] = issued.certificate_id
            return {
                "certificate_id": issued.certificate_id,
                "certificate_pem": issued.certificate_pem,
                "mqtt_host": broker["mqtt_host"],
                "mqtt_port": broker["mqtt_port"],
                "template_name": self.provisioning_template,
            }
        raise AssertionError("unreachable")  # pragma: no cover

    def revoke_claim_certificate(
        self, operator: Operator, request: RequestInfo, certificate_id: str
    ) -> dict[str, Any]:
        """REVOKED and its claim policy detached; asking again for a revoked one changes nothing."""
        require(operator, Permission.CHARGERS_WRITE)
        valid = CERTIFICATE_ID.fullmatch(certificate_id) is not None
        targets = {"certificate_id": certificate_id.lower() if valid else "(not a certificate id)"}
        with self.access.audited(operator, request, targets):
            checked = _certificate_id(certificate_id)
            try:
                self.claims.revoke(checked)
            except UnknownCertificate:
                raise NotFound(f"there is no certificate {checked}") from None
            except NotAClaimCertificate:
                raise Conflict(f"certificate {checked} is not a claim certificate") from None
            return {"certificate_id": checked, "status": CertificateStatus.REVOKED.value}
        raise AssertionError("unreachable")  # pragma: no cover

    def allow_serials(self, operator: Operator, request: RequestInfo, read_body: ReadBody) -> dict[str, Any]:
        """Each serial may claim a charger identity once, with the batch's claim certificate."""
        require(operator, Permission.CHARGERS_WRITE)
        targets = {"claim_certificate_id": "(not read)"}
        with self.access.audited(operator, request, targets):
            body = read_body()
            batch = _certificate_id(body.get("claim_certificate_id")).lower()
            targets["claim_certificate_id"] = batch
            site_id = _site(body.get("site", ""), optional=True)
            serials = _serials(body.get("serials"))
            targets["serials"] = ",".join(serials)
            at = self.clock()
            added = [s for s in serials if self.allow_list.allow(s, site_id, at, batch)]
            return {"allowed": added, "already": [s for s in serials if s not in added]}
        raise AssertionError("unreachable")  # pragma: no cover

    def serials(self, operator: Operator, limit: int, cursor: str | None) -> dict[str, Any]:
        require(operator, Permission.CHARGERS_READ)
        scope = "provisioning/serials"
        page = self.allow_list.page(limit, self.access.start(cursor, scope))
        return self.access.listing([serial_record(e) for e in page.items], page, scope)

    # ------------------------------------------------------------------ helpers
    def _charger(self, charger_id: str) -> Charger:
        charger = self.registry.get(charger_id)
        if charger is None:
            raise NotFound(f"there is no charger {charger_id}")
        return charger

    def _sign_rotation(self, charger_id: str, csr: str, targets: dict[str, str]) -> dict[str, Any]:
        _check_csr(csr, charger_id)
        registered = self.identities.certificates_of(charger_id)
        if certificates.over_issue_limit(registered, self.clock()):
            raise Conflict(
                f"already {certificates.MAX_CERTIFICATES_PER_WINDOW} certificates within a day: try tomorrow"
            )
        issued = self.identities.issue(charger_id, csr)
        targets["certificate_id"] = issued.certificate_id
        return {
            "charger_id": charger_id,
            **_certificate_answer(issued, certificates.facts(issued.pem).not_after),
        }

    def _close_open_sessions(self, charger_id: str, at: datetime, reason: str | None) -> list[str]:
        """A revoked charger never sends its StopTransaction: its sessions end here, for review."""
        closed = []
        for session in self.sessions.in_state(SessionState.ACTIVE.value):
            if session.charger_id != charger_id:
                continue
            events = self.sessions.events(session.session_id)
            self.sessions.append(session.session_id, revocation_event(events, at, reason))
            refresh(self.sessions, session)
            closed.append(session.session_id)
        return closed


def serial_record(entry: AllowedSerial) -> dict[str, Any]:
    """An allow-list entry as `chargenet provisioning list --json` prints it."""
    return {
        "serial_number": entry.serial_number,
        "site_id": entry.site_id,
        "allowed_at": entry.allowed_at.isoformat(),
        "claimed_at": entry.claimed_at.isoformat() if entry.claimed_at else None,
        "certificate_id": entry.certificate_id,
        "claim_certificate_id": entry.claim_certificate_id,
    }


def _certificate_answer(certificate: ChargerCertificate, not_after: datetime) -> dict[str, Any]:
    return {
        "certificate_id": certificate.certificate_id,
        "certificate_pem": certificate.pem,
        "certificate_not_after": not_after.isoformat(),
    }


def _active(registered: list[ChargerCertificate], certificate_id: str) -> ChargerCertificate:
    for certificate in registered:
        if certificate.certificate_id == certificate_id.lower():
            if certificate.status is not CertificateStatus.ACTIVE:
                raise Conflict(f"certificate {certificate_id} is {certificate.status.value}")
            return certificate
    raise NotFound(f"certificate {certificate_id} is not one of this charger's")


def _check_csr(csr: str, common_name: str) -> None:
    try:
        certificates.check_csr(csr, common_name)
    except CsrRefused as refused:
        raise BadRequest(f"certificate request refused: {refused}") from None


def _text(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise BadRequest(f"{name} is required text")
    return value


def _site(value: object, optional: bool = False) -> str:
    if optional and value == "":
        return ""
    if not isinstance(value, str) or not SITE_ID.fullmatch(value):
        raise BadRequest("site is 1 to 64 letters, digits, '_', '.', ':' or '-'")
    return value


def _time_zone(value: object) -> str:
    if not isinstance(value, str):
        raise BadRequest("time_zone is an IANA zone name, e.g. Europe/Stockholm")
    try:
        return time_zone_name(value)
    except ValueError as error:
        raise BadRequest(str(error)) from None


def _positive(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise BadRequest(f"{name} is a positive whole number")
    return value


def _certificate_id(value: object) -> str:
    if not isinstance(value, str) or not CERTIFICATE_ID.fullmatch(value):
        raise BadRequest("a certificate id is 64 hex digits")
    return value.lower()


def _serials(value: object) -> list[str]:
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_SERIALS_PER_REQUEST:
        raise BadRequest(f"serials is a list of 1 to {MAX_SERIALS_PER_REQUEST} serial numbers")
    malformed = [s for s in value if not isinstance(s, str) or not is_charger_id(s)]
    if malformed:
        raise BadRequest(
            "a serial becomes the charger id (1-64 letters, digits, '_' or '-', no dots, "
            "starting with a letter or digit)"
        )
    return list(dict.fromkeys(value))
