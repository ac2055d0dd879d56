"""ProvisioningHookFunction: fleet provisioning's allow-list (IoT waits 5 s: only what the hook needs)."""

from __future__ import annotations

from functools import cache

from chargenet.adapters.provisioning_dynamodb import DynamoAllowList
from chargenet.composition.settings import FunctionEnvironment, environment


@cache
def allow_list() -> DynamoAllowList:
    environment(FunctionEnvironment)
    return DynamoAllowList()
