"""The serial-number allow-list (ProvisioningAllowListTable) and the claim's registry record.

A claim is one DynamoDB transaction: the allow-list entry marked with the device's key and the
charger record created (or left alone when this very claim created it), both conditional, so a
serial is provisioned once and a repeat by the same device changes nothing but the certificate.
"""

from __future__ import annotations

from datetime import datetime

from pynamodb.attributes import UnicodeAttribute, UTCDateTimeAttribute
from pynamodb.exceptions import DoesNotExist, PutError, TransactWriteError
from pynamodb.transactions import TransactWrite

from chargenet.adapters.dynamodb import CHARGER_SK, ChargerItem, conditional_failed
from chargenet.adapters.tables import TableModel, dynamodb_connection, table_meta
from chargenet.adapters.unavailable import raises_store_unavailable
from chargenet.domain.provisioning import AllowedSerial, Claim
from chargenet.ports.audit import Key, Page
from chargenet.ports.provisioning import AllowList


class AllowedSerialItem(TableModel):
    Meta = table_meta("provisioning_allowlist")

    serial_number = UnicodeAttribute(hash_key=True)
    site_id = UnicodeAttribute(default="")
    allowed_at = UTCDateTimeAttribute()
    claimed_at = UTCDateTimeAttribute(null=True)
    claimed_key = UnicodeAttribute(null=True)
    certificate_id = UnicodeAttribute(null=True)
    claim_certificate_id = UnicodeAttribute(null=True)  # the batch's claim certificate

    def to_domain(self) -> AllowedSerial:
        return AllowedSerial(
            serial_number=self.serial_number,
            site_id=self.site_id or "",
            allowed_at=self.allowed_at,
            claimed_at=self.claimed_at,
            claimed_key=self.claimed_key,
            certificate_id=self.certificate_id,
            claim_certificate_id=self.claim_certificate_id,
        )


class ClaimedChargerItem(ChargerItem):
    """The registry record, plus which device key's claim created it (other readers ignore it)."""

    claimed_key = UnicodeAttribute(null=True)


@raises_store_unavailable
class DynamoAllowList(AllowList):
    def get(self, serial_number: str) -> AllowedSerial | None:
        try:
            return AllowedSerialItem.get(serial_number, consistent_read=True).to_domain()
        except DoesNotExist:
            return None

    def claim(self, claim: Claim) -> bool:
        entry = AllowedSerialItem(claim.serial_number)
        charger = ClaimedChargerItem(claim.serial_number, CHARGER_SK)
        same_key = ClaimedChargerItem.claimed_key == claim.device_key
        try:
            with TransactWrite(connection=dynamodb_connection()) as transaction:
                transaction.update(
                    entry,
                    actions=[
                        AllowedSerialItem.claimed_at.set(AllowedSerialItem.claimed_at | claim.at),
                        AllowedSerialItem.claimed_key.set(claim.device_key),
                        AllowedSerialItem.certificate_id.set(claim.certificate_id),
                    ],
                    condition=AllowedSerialItem.serial_number.exists()
                    & (
                        AllowedSerialItem.claimed_key.does_not_exist()
                        | (AllowedSerialItem.claimed_key == claim.device_key)
                    ),
                )
                # An update that creates the record: a repeat after the charger booted keeps its data.
                transaction.update(
                    charger,
                    actions=[
                        ClaimedChargerItem.site_id.set(ClaimedChargerItem.site_id | claim.site_id),
                        ClaimedChargerItem.serial_number.set(
                            ClaimedChargerItem.serial_number | claim.serial_number
                        ),
                        ClaimedChargerItem.registered_at.set(ClaimedChargerItem.registered_at | claim.at),
                        ClaimedChargerItem.online.set(ClaimedChargerItem.online | False),
                        ClaimedChargerItem.presence_version.set(ClaimedChargerItem.presence_version | -1),
                        ClaimedChargerItem.recent_boots.set(ClaimedChargerItem.recent_boots | []),
                        ClaimedChargerItem.certificate_not_after.set(claim.certificate_not_after),
                        ClaimedChargerItem.claimed_key.set(claim.device_key),
                    ],
                    condition=ClaimedChargerItem.charger_id.does_not_exist() | same_key,
                )
        except TransactWriteError as error:
            if getattr(error, "cause_response_code", None) == "TransactionCanceledException":
                return False
            raise
        return True

    def allow(self, serial_number: str, site_id: str, at: datetime, claim_certificate_id: str) -> bool:
        item = AllowedSerialItem(
            serial_number, site_id=site_id, allowed_at=at, claim_certificate_id=claim_certificate_id
        )
        try:
            item.save(condition=AllowedSerialItem.serial_number.does_not_exist())
        except PutError as error:
            if conditional_failed(error):
                return False
            raise
        return True

    def list(self) -> list[AllowedSerial]:
        return sorted((item.to_domain() for item in AllowedSerialItem.scan()), key=lambda a: a.serial_number)

    def page(self, limit: int, start: Key | None) -> Page[AllowedSerial]:
        """One Scan call of at most `limit` entries, sorted within the page."""
        found = AllowedSerialItem._get_connection().scan(limit=limit, exclusive_start_key=start)  # type: ignore[arg-type]  # pynamodb annotates the start key as a string
        entries = [AllowedSerialItem.from_raw_data(item).to_domain() for item in found.get("Items", [])]
        return Page(sorted(entries, key=lambda a: a.serial_number), found.get("LastEvaluatedKey"))
