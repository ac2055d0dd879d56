"""DynamoDB adapter for billing records: one CDR per session, written once, never changed."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from pynamodb.attributes import NumberAttribute, UnicodeAttribute, UTCDateTimeAttribute
from pynamodb.exceptions import DoesNotExist, PutError

from chargenet.adapters.dynamodb import conditional_failed
from chargenet.adapters.pages import scan_page
from chargenet.adapters.tables import TableModel, table_meta
from chargenet.adapters.unavailable import raises_store_unavailable
from chargenet.domain.billing import BillingRecord
from chargenet.ports.audit import Key, Page
from chargenet.ports.billing import CdrStore
from chargenet.ports.operator_sessions import CdrPages


class CdrItem(TableModel):
    Meta = table_meta("cdrs")

    cdr_id = UnicodeAttribute(hash_key=True)
    session_id = UnicodeAttribute()
    charger_id = UnicodeAttribute()
    connector_id = NumberAttribute()
    start_date_time = UTCDateTimeAttribute()
    end_date_time = UTCDateTimeAttribute()
    currency = UnicodeAttribute()
    total_excl_vat = UnicodeAttribute()  # Decimal as text: never a float on the way in or out
    total_incl_vat = UnicodeAttribute()
    energy_wh = NumberAttribute()
    ocpi = UnicodeAttribute()  # the OCPI 2.2.1 CDR object
    payment_reference = UnicodeAttribute(null=True)
    credit_reference_id = UnicodeAttribute(null=True)

    def to_domain(self) -> BillingRecord:
        return BillingRecord(
            cdr_id=self.cdr_id,
            session_id=self.session_id,
            charger_id=self.charger_id,
            connector_id=int(self.connector_id),
            start_date_time=self.start_date_time,
            end_date_time=self.end_date_time,
            currency=self.currency,
            total_excl_vat=Decimal(self.total_excl_vat),
            total_incl_vat=Decimal(self.total_incl_vat),
            energy_wh=int(self.energy_wh),
            ocpi=json.loads(self.ocpi, parse_float=Decimal),
            payment_reference=self.payment_reference,
            credit_reference_id=self.credit_reference_id,
        )


@raises_store_unavailable
class DynamoCdrStore(CdrStore, CdrPages):
    def create(self, record: BillingRecord) -> bool:
        """Write the record once; False when it exists (a session's CDR, or a CDR's credit)."""
        fields: dict[str, Any] = record.model_dump(exclude={"ocpi", "total_excl_vat", "total_incl_vat"})
        item = CdrItem(
            **fields,
            total_excl_vat=str(record.total_excl_vat),
            total_incl_vat=str(record.total_incl_vat),
            ocpi=json.dumps(record.ocpi, default=str),
        )
        try:
            item.save(condition=CdrItem.cdr_id.does_not_exist())
        except PutError as error:
            if conditional_failed(error):
                return False
            raise
        return True

    def get(self, cdr_id: str) -> BillingRecord | None:
        try:
            return CdrItem.get(cdr_id, consistent_read=True).to_domain()
        except DoesNotExist:
            return None

    def list(self) -> list[BillingRecord]:
        return sorted((item.to_domain() for item in CdrItem.scan()), key=lambda r: r.start_date_time)

    def page(self, limit: int, start: Key | None) -> Page[BillingRecord]:
        """One Scan call of at most `limit` records (the operator API's listing)."""
        items, next_key = scan_page(CdrItem, limit, start)
        return Page([item.to_domain() for item in items], next_key)
