"""The pre-provisioning hook's use case: one read of the allow-list, one conditional write."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from chargenet.domain.certificates import facts
from chargenet.domain.charger_ids import is_charger_id
from chargenet.domain.provisioning import (
    NO_SITE,
    SERIAL_PARAMETER,
    SITE_PARAMETER,
    Claim,
    ClaimVerdict,
    decide,
)
from chargenet.ports.provisioning import AllowList


class HookRequest(BaseModel):
    """What AWS IoT sends the pre-provisioning hook (payload version 2020-04-01)."""

    model_config = ConfigDict(populate_by_name=True)

    claim_certificate_id: str = Field(alias="claimCertificateId", default="")
    certificate_id: str = Field(alias="certificateId", min_length=1)
    certificate_pem: str = Field(alias="certificatePem", min_length=1)
    template_arn: str = Field(alias="templateArn", default="")
    client_id: str = Field(alias="clientId", default="")
    parameters: dict[str, str] = {}


@dataclass(frozen=True)
class HookAnswer:
    verdict: ClaimVerdict
    serial_number: str
    parameter_overrides: dict[str, str] = field(default_factory=dict)

    def response(self) -> dict[str, object]:
        """The hook's reply; the overrides are added to the RegisterThing parameters."""
        return {"allowProvisioning": self.verdict.allowed, "parameterOverrides": self.parameter_overrides}


def pre_provision(allow_list: AllowList, request: HookRequest, at: datetime) -> HookAnswer:
    # The serial becomes the thing name, client id, MQTT topic level and registry key: a charger id.
    serial = request.parameters.get(SERIAL_PARAMETER, "")
    if not is_charger_id(serial):
        return HookAnswer(ClaimVerdict.MALFORMED_SERIAL, serial)
    try:
        certificate = facts(request.certificate_pem)
    except ValueError:
        return HookAnswer(ClaimVerdict.BAD_CERTIFICATE, serial)
    entry = allow_list.get(serial)
    # IoT names the claim certificate the request came with: it must be the batch's that allows the serial.
    verdict = decide(entry, certificate.public_key_sha256, request.claim_certificate_id)
    if entry is None or not verdict.allowed:
        return HookAnswer(verdict, serial)
    claim = Claim(
        serial_number=serial,
        device_key=certificate.public_key_sha256,
        certificate_id=request.certificate_id,
        certificate_not_after=certificate.not_after,
        site_id=entry.site_id,
        at=at,
    )
    if not allow_list.claim(claim):
        return HookAnswer(ClaimVerdict.CONFLICT, serial)
    return HookAnswer(verdict, serial, {SITE_PARAMETER: entry.site_id or NO_SITE})
