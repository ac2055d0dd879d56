"""From a completed session and its tariff snapshot to one OCPI 2.2.1 CDR. Pure: no I/O."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict

from chargenet.domain.clock import ocpp_time
from chargenet.domain.models import SessionRecord, mask_tag
from chargenet.domain.sessions import SessionFacts
from chargenet.domain.tariffs import PricedSession, SessionPeriod, SessionProfile, Tariff
from chargenet.domain.time_zones import time_zone_name

_COST_FIELDS = (
    "total_cost",
    "total_fixed_cost",
    "total_energy",
    "total_energy_cost",
    "total_time",
    "total_time_cost",
    "total_parking_time",
    "total_parking_cost",
    "charging_periods",
)


class BillingRecord(BaseModel):
    model_config = ConfigDict(frozen=True)

    cdr_id: str
    session_id: str
    charger_id: str
    connector_id: int
    start_date_time: datetime
    end_date_time: datetime
    currency: str
    total_excl_vat: Decimal
    total_incl_vat: Decimal
    energy_wh: int
    ocpi: dict[str, Any]
    payment_reference: str | None = None  # the payment that settles it (filled by payments)
    credit_reference_id: str | None = None  # set on a credit record: the CDR it corrects

    @property
    def time_zone(self) -> str:
        """The site's IANA zone the CDR was priced in; UTC for CDRs priced before zones, or on an offset."""
        zone = self.ocpi.get("cdr_location", {}).get("time_zone", "UTC")
        try:
            return time_zone_name(zone)
        except ValueError:
            return "UTC"


_PRICE_FIELDS = (
    "total_cost",
    "total_fixed_cost",
    "total_energy_cost",
    "total_time_cost",
    "total_parking_cost",
)


def credit_record(original: BillingRecord, reason: str, now: datetime) -> BillingRecord:
    """An OCPI credit CDR that cancels `original`; the original is never changed."""
    credit_id = f"{original.cdr_id}-CREDIT"
    ocpi = {
        **original.ocpi,
        "id": credit_id,
        "credit": True,
        "credit_reference_id": original.cdr_id,
        "remark": reason,
        "last_updated": ocpp_time(now),
    }
    for field in _PRICE_FIELDS:
        if isinstance(ocpi.get(field), dict):
            ocpi[field] = {key: str(-Decimal(value)) for key, value in ocpi[field].items()}
    return original.model_copy(
        update={
            "cdr_id": credit_id,
            "total_excl_vat": -original.total_excl_vat,
            "total_incl_vat": -original.total_incl_vat,
            "ocpi": ocpi,
            "credit_reference_id": original.cdr_id,
        }
    )


def session_profile(facts: SessionFacts, time_zone: str | None) -> SessionProfile:
    """The session as the tariff engine sees it: consecutive periods from the start, on the wall clock
    of the site's `time_zone` (None: the start's UTC offset, which is UTC for an OCPP charger)."""
    assert facts.started_at is not None
    return SessionProfile(
        start=facts.started_at,
        time_zone=time_zone,
        periods=[
            SessionPeriod(
                minutes=period.seconds / Decimal(60),
                energy_kwh=period.energy_wh / Decimal(1000),
                power_kw=period.power_kw,
                current_a=period.current_a,
                parking=period.parking,
            )
            for period in facts.periods
        ],
    )


def billing_record(
    session: SessionRecord, facts: SessionFacts, tariff: Tariff, priced: PricedSession, now: datetime
) -> BillingRecord:
    assert facts.started_at is not None and facts.ended_at is not None
    # price_session always states the total incl. VAT (unknown VAT bills incl. = excl.)
    assert priced.total_cost.incl_vat is not None
    costs = priced.model_dump(mode="json", include=set(_COST_FIELDS))
    ocpi = {
        "country_code": tariff.country_code,
        "party_id": tariff.party_id,
        "id": session.session_id,
        "start_date_time": ocpp_time(facts.started_at),
        "end_date_time": ocpp_time(facts.ended_at),
        "session_id": session.session_id,
        "cdr_token": {
            "uid": mask_tag(session.id_tag),
            "type": "RFID",
            "contract_id": mask_tag(session.id_tag),
        },
        "auth_method": "WHITELIST",
        "cdr_location": {
            "id": session.charger_id,
            "evse_uid": f"{session.charger_id}*{session.connector_id}",
            "connector_id": str(session.connector_id),
            # as on an OCPI Location: the wall clock the tariff's time restrictions were read on
            "time_zone": priced.time_zone,
        },
        "currency": priced.currency,
        "tariffs": [tariff.model_dump(mode="json", exclude_none=True)],
        **costs,
        "last_updated": ocpp_time(now),
    }
    return BillingRecord(
        cdr_id=session.session_id,
        session_id=session.session_id,
        charger_id=session.charger_id,
        connector_id=session.connector_id,
        start_date_time=facts.started_at,
        end_date_time=facts.ended_at,
        currency=priced.currency,
        total_excl_vat=priced.total_cost.excl_vat,
        total_incl_vat=priced.total_cost.incl_vat,
        energy_wh=int(facts.energy_wh),
        ocpi=ocpi,
    )
