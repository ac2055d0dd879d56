"""One page of a DynamoDB table for the operator API's listings: one Scan call with a Limit."""

from __future__ import annotations

from typing import Any, TypeVar

from pynamodb.models import Model

from chargenet.ports.audit import Key

M = TypeVar("M", bound=Model)


def scan_page(
    model: type[M], limit: int, start: Key | None, condition: Any = None
) -> tuple[list[M], Key | None]:
    """At most `limit` items read from `start` (a filtered page may hold fewer), and where the
    next page starts (None: the table's end)."""
    found = model._get_connection().scan(
        filter_condition=condition,
        limit=limit,
        # pynamodb annotates the start key as a string; DynamoDB's key dict goes through as is
        exclusive_start_key=start,  # type: ignore[arg-type]
    )
    return [model.from_raw_data(item) for item in found.get("Items", [])], found.get("LastEvaluatedKey")
