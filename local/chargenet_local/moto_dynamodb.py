"""moto's DynamoDB answering a Query on a table's key from that partition, as DynamoDB does.

moto (5.2) answers every Query on a table's own key by sorting ALL the table's items and then
keeping those of the partition asked for, so each Query costs O(n log n) in the table's size.
The session-event and idempotency tables grow by every OCPP message, and in a long run of the
local stack (the chaos run: 300 sessions) the single daemon spent its time sorting them until
chargers' replies passed their 10 s timeout. DynamoDB reads only the partition, and so does moto
after `apply`: its own Query code runs unchanged, with `all_items` narrowed to the partition
while that Query runs. Queries on an index, and Scans, still read the whole table, as they do in
DynamoDB. No moto release does this; it is patched here, in the stack's process, where moto serves.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
from typing import Any

# The partition a base-table Query on this thread is reading (moto serves each request on a thread).
_partition: contextvars.ContextVar[Any] = contextvars.ContextVar("moto_query_partition", default=None)


def apply() -> None:
    """Patch moto's DynamoDB Table in this process; applying twice changes nothing."""
    from moto.dynamodb.models.table import Table

    from chargenet_local import moto_transactions

    moto_transactions.apply()  # TransactWriteItems without copying (and on cancel, losing) tables

    if getattr(Table.query, "partition_local", False):
        return
    query, all_items = Table.query, Table.all_items
    signature = inspect.signature(query)

    @functools.wraps(query)
    def partition_query(self: Table, *args: Any, **kwargs: Any) -> Any:
        asked = signature.bind(self, *args, **kwargs).arguments
        if asked.get("index_name") or asked.get("hash_key") is None:
            return query(self, *args, **kwargs)
        token = _partition.set(asked["hash_key"])
        try:
            return query(self, *args, **kwargs)
        finally:
            _partition.reset(token)

    @functools.wraps(all_items)
    def partition_items(self: Table) -> Any:
        hash_key = _partition.get()
        if hash_key is None:
            return all_items(self)
        # Not self.items[hash_key]: items is a defaultdict, and a read must not add a partition.
        partition = self.items.get(hash_key)
        if partition is None:
            return []
        if not self.range_key_attr:
            return [partition]
        return sorted(partition.values(), key=lambda item: item.range_key)

    partition_query.partition_local = True  # type: ignore[attr-defined]
    Table.query = partition_query  # type: ignore[method-assign]
    Table.all_items = partition_items  # type: ignore[method-assign]
