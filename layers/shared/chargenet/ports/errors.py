"""The one failure every port may raise for the infrastructure behind it."""

from __future__ import annotations

# The client libraries the adapters use, named, not imported (the domain and services never import
# them). Their exceptions are the adapters' to translate into StoreUnavailable; one that gets past
# an adapter anyway is still the infrastructure's failure, not the input's.
_INFRASTRUCTURE_PACKAGES = frozenset({"botocore", "boto3", "pynamodb", "urllib3"})


class StoreUnavailable(Exception):
    """The store or service behind a port did not answer usably: throttled, unreachable, timed
    out, a 5xx. Nothing about the input is wrong, so the caller does not answer it as an error:
    it lets the invocation fail and be retried (Lambda retries twice, then the dead-letter queue),
    by when the store is usually back.

    Adapters raise it `from` the infrastructure exception (botocore, pynamodb), which stays inside
    the adapter; a conditional-check failure is not one, the adapter answers it itself."""


def is_unavailable(error: BaseException) -> bool:
    """Whether `error` is the infrastructure's failure, to be retried rather than answered:
    StoreUnavailable, an OS-level one (a socket timeout, a refused connection), or a client
    library's exception an adapter let through."""
    if isinstance(error, StoreUnavailable | OSError):
        return True
    return type(error).__module__.partition(".")[0] in _INFRASTRUCTURE_PACKAGES
