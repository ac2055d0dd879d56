"""OperatorSignOutsTable: each operator's last sign-out, by Cognito subject, with a TTL."""

from __future__ import annotations

from pynamodb.attributes import NumberAttribute, UnicodeAttribute

from chargenet.adapters.tables import TableModel, table_meta
from chargenet.adapters.unavailable import raises_store_unavailable
from chargenet.ports.sign_outs import SignOuts


class SignOutItem(TableModel):
    Meta = table_meta("operator_sign_outs")

    subject = UnicodeAttribute(hash_key=True)  # the token's `sub`
    signed_out_at = NumberAttribute()  # epoch seconds
    expires_at = NumberAttribute()  # the table's TTL attribute, epoch seconds


@raises_store_unavailable
class DynamoSignOuts(SignOuts):
    def signed_out_at(self, subject: str) -> int | None:
        # Strongly consistent: a sign-out refuses the next request, whichever function serves it.
        try:
            item = SignOutItem.get(subject, consistent_read=True)
        except SignOutItem.DoesNotExist:
            return None
        return int(item.signed_out_at)

    def record(self, subject: str, at: int, expires_at: int) -> None:
        SignOutItem(subject, signed_out_at=at, expires_at=expires_at).save()
