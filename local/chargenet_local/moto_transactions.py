"""moto's TransactWriteItems without copying the tables it touches.

moto (5.x) starts every TransactWriteItems with a deep copy of each table it names and, when the
transaction is cancelled, puts those copies in place of the tables. In the local stack's server,
which answers requests on many threads, that loses every write other requests made meanwhile,
and it swaps the table's stream shard for a copy that no stream reader's iterator follows: after
the first cancelled transaction on the sessions table (a repeated StartTransaction, a fold that
lost to a newer one), billing never heard of a session again. The copy also costs the size of the
tables (the session events grow by every reading) on every transaction.

DynamoDB checks every condition before it writes anything: so does `apply`'s version. It reads
each item, checks its condition (a ConditionalCheckFailed reason, with the item when
ReturnValuesOnConditionCheckFailure is ALL_OLD), and only when none failed writes them all,
through moto's own put, update and delete, one lock held for the whole transaction. Single-item
writes take the same lock, so none lands between a transaction's checks and its writes (DynamoDB
transactions are serializable with the table's other writes).
"""

from __future__ import annotations

import functools
import threading
from typing import Any

_lock = threading.RLock()  # re-entered: a transaction's writes are moto's single-item writes
_KINDS = {"ConditionCheck", "Put", "Delete", "Update"}
_SINGLE_WRITES = ("put_item", "update_item", "delete_item")
# What `apply` replaces on moto's DynamoDBBackend (tests put them back).
PATCHED = ("transact_write_items", *_SINGLE_WRITES)


def apply() -> None:
    """Patch moto's DynamoDB backend in this process; applying twice changes nothing."""
    from moto.dynamodb.models import DynamoDBBackend

    if getattr(DynamoDBBackend.transact_write_items, "copy_free", False):
        return

    def transact_write_items(self: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
        with _lock:
            parts = [_part(self, item) for item in transact_items]
            _refuse_unless_valid(parts)
            reasons = [_reason(self, kind, op, key) for kind, op, key in parts]
            if any(code is not None for code, _, _ in reasons):
                from moto.dynamodb.exceptions import TransactionCanceledException

                raise TransactionCanceledException(reasons)
            for kind, op, key in parts:
                _write(self, kind, op, key)

    transact_write_items.copy_free = True  # type: ignore[attr-defined]
    DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]
    for name in _SINGLE_WRITES:
        setattr(DynamoDBBackend, name, _serialized(getattr(DynamoDBBackend, name)))


def _serialized(write: Any) -> Any:
    @functools.wraps(write)
    def locked(*args: Any, **kwargs: Any) -> Any:
        with _lock:
            return write(*args, **kwargs)

    return locked


def _part(backend: Any, item: dict[str, Any]) -> tuple[str, dict[str, Any], dict[str, Any]]:
    from moto.dynamodb.exceptions import TransactWriteSingleOpException

    if len(item) != 1:
        raise TransactWriteSingleOpException
    kind, op = next(iter(item.items()))
    if kind not in _KINDS:
        raise ValueError(f"Unsupported transaction operation {kind}")
    if kind != "Put":
        return kind, op, op["Key"]
    table = backend.get_table(op["TableName"])
    names = [table.hash_key_attr, *([table.range_key_attr] if table.range_key_attr else [])]
    return kind, op, {name: op["Item"][name] for name in names}


def _refuse_unless_valid(parts: list[tuple[str, dict[str, Any], dict[str, Any]]]) -> None:
    from moto.dynamodb.exceptions import MultipleTransactionsException, TooManyTransactionsException

    if len(parts) > 100:
        raise TooManyTransactionsException()
    targets = {(op["TableName"], str(sorted(key.items()))) for _, op, key in parts}
    if len(targets) != len(parts):
        raise MultipleTransactionsException()


def _reason(backend: Any, kind: str, op: dict[str, Any], key: dict[str, Any]) -> tuple[Any, Any, Any]:
    """(code, message, item) as moto's TransactionCanceledException takes them; (None,)*3: none."""
    from moto.dynamodb.comparisons import get_filter_expression

    condition = op.get("ConditionExpression")
    if condition is None:
        return None, None, None
    current = backend.get_item(op["TableName"], key)
    names, values = op.get("ExpressionAttributeNames"), op.get("ExpressionAttributeValues")
    if get_filter_expression(condition, names, values).expr(current):
        return None, None, None
    returned = (
        current.to_json()["Attributes"]
        if current and op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD"
        else None
    )
    return "ConditionalCheckFailed", "The conditional request failed", returned


def _write(backend: Any, kind: str, op: dict[str, Any], key: dict[str, Any]) -> None:
    names, values = op.get("ExpressionAttributeNames"), op.get("ExpressionAttributeValues")
    if kind == "Put":
        backend.put_item(op["TableName"], op["Item"])
    elif kind == "Delete":
        backend.delete_item(op["TableName"], key)
    elif kind == "Update":
        backend.update_item(
            op["TableName"],
            key,
            update_expression=op["UpdateExpression"],
            expression_attribute_names=names,
            expression_attribute_values=values,
        )
