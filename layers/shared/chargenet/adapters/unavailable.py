"""botocore and pynamodb failures become the ports' one StoreUnavailable here, and go no further.

`@raises_store_unavailable` on an adapter class wraps its public methods: what the AWS clients
raise when a service fails or cannot be reached (throttling, ProvisionedThroughputExceeded, a 5xx,
a connection or read timeout, pynamodb's wrappers of those) leaves the adapter as StoreUnavailable,
chained to the original. A conditional-check failure never gets here: each method that writes
conditionally catches it and answers False (or the loser's value) itself.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

from botocore.exceptions import BotoCoreError, ClientError
from pynamodb.exceptions import PynamoDBException

from chargenet.ports.errors import StoreUnavailable

INFRASTRUCTURE_ERRORS: tuple[type[Exception], ...] = (BotoCoreError, ClientError, PynamoDBException)
_C = TypeVar("_C", bound=type)


def raises_store_unavailable(cls: _C) -> _C:
    """Class decorator: the class's own public methods raise StoreUnavailable for INFRASTRUCTURE_ERRORS."""
    for name, member in list(vars(cls).items()):
        if not name.startswith("_") and inspect.isfunction(member):
            setattr(cls, name, _translating(member))
    return cls


def _translating(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except INFRASTRUCTURE_ERRORS as error:
            raise StoreUnavailable(f"{type(error).__name__}: {error}") from error

    return call
