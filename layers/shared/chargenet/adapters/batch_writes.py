"""Unconditional puts into several tables in one request (BatchWriteItem)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from pynamodb.models import Model

from chargenet.adapters.tables import dynamodb_connection
from chargenet.ports.errors import StoreUnavailable

# DynamoDB may leave items of a batch unprocessed when a table is throttled: they are sent again
# after a short, growing pause (as its SDKs advise), then the invocation fails and is retried.
UNPROCESSED_ATTEMPTS = 4
FIRST_PAUSE_S = 0.05


def put_together(items: Sequence[Model]) -> None:
    """Write `items` (at most 25, no two with the same key) in one BatchWriteItem: one call and the
    same write units as a PutItem each. Only for unconditional, idempotent puts: a batch takes no
    condition, and a repeated request (items left unprocessed, an invocation retried) writes the
    same again."""
    requests: dict[str, list[dict[str, Any]]] = {}
    for item in items:
        requests.setdefault(str(item.Meta.table_name), []).append({"PutRequest": {"Item": item.serialize()}})
    client = dynamodb_connection().client
    for attempt in range(UNPROCESSED_ATTEMPTS):
        requests = client.batch_write_item(RequestItems=requests).get("UnprocessedItems") or {}
        if not requests:
            return
        time.sleep(FIRST_PAUSE_S * 2**attempt)
    raise StoreUnavailable(f"BatchWriteItem left items unprocessed in {sorted(requests)}")
