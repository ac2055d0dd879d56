"""The real local stack for integration tests: mosquitto over mTLS, moto server, rules, functions."""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from chargenet.adapters.cdrs_dynamodb import DynamoCdrStore
from chargenet.adapters.dynamodb import DynamoChargerRegistry
from chargenet.adapters.sessions_dynamodb import DynamoSessionStore
from chargenet_cli import local_env
from chargenet_cli.provisioning import provision
from chargenet_local.operator_sign_in import act_as_first_admin
from chargenet_local.stack import StackState, down, up
from chargenet_shim.credentials import ChargerCredentials
from chargenet_shim.link import ChargerLink
from chargenet_shim.ocpp_version import OcppVersion

ROOT = Path(__file__).resolve().parents[2]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


def start_stack(home: Path) -> StackState:
    # Scheduled functions (the idle-session sweep) run every second instead of every few minutes.
    os.environ["CHARGENET_SCHEDULE_EVERY_S"] = "1"
    # Outages and major-fault pages after seconds instead of minutes.
    os.environ["CHARGENET_PARAMETERS"] = "OfflineGraceSeconds=2 MajorAlertDelaySeconds=2"
    up(home, ROOT / "template.yaml")
    state = local_env.connect(home)
    # Operator commands (the CLI) go through the operator API: this process acts as the first admin.
    # A test signing in as someone else uses its own CHARGENET_CONFIG_DIR.
    act_as_first_admin(state)
    return state


# One stack per test process (`make test` runs two, pytest-xdist): started by the first test that
# needs it, stopped at the end. Not package scope: a worker alternates between test packages,
# and would stop and start a stack at each switch.
@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackState]:
    home = tmp_path_factory.mktemp("stack")
    state = start_stack(home)
    yield state
    # Killed if it takes longer: the last test's timeout also covers this teardown.
    down(home, timeout_s=15)


@pytest.fixture
def new_charger(stack: StackState) -> Callable[..., ChargerCredentials]:
    def make(site: str = "SITE-T", password: str | None = None) -> ChargerCredentials:
        charger_id = f"CP-{uuid.uuid4().hex[:8]}"
        done = provision(stack, charger_id, site, password)
        return ChargerCredentials.load(done.credentials_dir)

    return make


def registry() -> Any:
    return DynamoChargerRegistry()


def sessions_of(charger_id: str) -> list[Any]:
    return [s for s in DynamoSessionStore().list() if s.charger_id == charger_id]


def cdrs_of(charger_id: str) -> list[Any]:
    return [c for c in DynamoCdrStore().list() if c.charger_id == charger_id]


def eventually(check: Callable[[], Any], timeout: float = 15.0, interval: float = 0.2) -> Any:
    """Poll until check() returns something truthy; the pipeline is asynchronous end to end."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last value: {value!r})")
        time.sleep(interval)


class RawCharger:
    """A charger sending hand-made frames over its own mTLS link (for protocol-level tests)."""

    def __init__(self, credentials: ChargerCredentials, ocpp_version: OcppVersion = OcppVersion.V16) -> None:
        # Past the shim's own frame limit, up to what the broker takes (IoT Core: 128 KB), so the
        # backend's refusal of an oversized frame can be tested. The version picks the ingest rule.
        self.link = ChargerLink(credentials, ocpp_version=ocpp_version, max_frame_bytes=128 * 1024)

    async def __aenter__(self) -> RawCharger:
        await self.link.connect()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.link.close()

    async def send(self, frame: Any) -> None:
        await self.link.send(frame if isinstance(frame, str) else json.dumps(frame))

    async def reply(self, timeout: float = 15.0) -> list[Any]:
        return json.loads(await asyncio.wait_for(self.link.recv(), timeout))

    async def no_reply(self, wait: float = 2.0) -> None:
        try:
            frame = await asyncio.wait_for(self.link.recv(), wait)
        except TimeoutError:
            return
        raise AssertionError(f"unexpected frame {frame}")
