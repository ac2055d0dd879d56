"""boto3 clients made at an adapter's first call, not when the composition builds the adapter."""

from __future__ import annotations

from typing import Any


def client_at_first_use(service: str, given: Any | None) -> Any:
    """`given` (a test's stub or recorder), else boto3's `service` client.

    Called from a cached property, so a cold invocation that never reaches the service builds
    no client, and one that does shares the botocore session the DynamoDB client has made boto3's
    default (adapters.tables), its loaded endpoints and credentials.
    """
    if given is not None:
        return given
    import boto3  # here: an adapter module alone never needs it

    return boto3.client(service)
