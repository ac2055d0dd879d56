"""IoT Jobs firmware rollouts on a simulated charger, in process: the Jobs API messages on a FakeLink."""

from __future__ import annotations

import asyncio
import contextlib
import json

import pytest
from awscrt import mqtt
from booted import until
from fake_link import FakeLink
from test_firmware import IMAGE, TARGET, package_server
from test_firmware_updates import OPERATOR_PEM, PINNED, boot_versions, booted, firmware_statuses, package
from test_gateway_firmware import RelayUnderTest, relay_with
from test_gateway_firmware import package as gateway_package

from chargenet_firmware_format import pack, sign
from chargenet_shim.link import ChargerLink
from chargenet_shim.sim.simulator import SimulatedCharger

pytestmark = pytest.mark.timeout(15)

JOBS = "$aws/things/CP-UNIT/jobs/"


def execution(job_id: str, location: str, version: str = "1.1.0", changes: dict | None = None) -> dict:
    job_document = {"operation": "chargenet.firmware.update", "version": version, "force": False}
    job_document |= {"location": location} | (changes or {})
    return {
        "jobId": job_id,
        "thingName": "CP-UNIT",
        "status": "IN_PROGRESS",
        "jobDocument": job_document,
        "versionNumber": 2,
        "executionNumber": 1,
    }


def updates(link: FakeLink, job_id: str) -> list[dict]:
    return [message for topic, message in link.published if topic == f"{JOBS}{job_id}/update"]


def terminal(link: FakeLink, job_id: str) -> dict | None:
    return next((u for u in updates(link, job_id) if u["status"] != "IN_PROGRESS"), None)


def start_next_requests(link: FakeLink) -> int:
    return sum(topic == f"{JOBS}start-next" for topic, _ in link.published)


@contextlib.asynccontextmanager
async def with_jobs():
    """A booted charger running firmware 1.0.0 whose Jobs client has asked for its next execution."""
    async with booted() as (charger, link):
        charger.start_firmware_jobs(link)
        await until(lambda: start_next_requests(link) == 1)
        yield charger, link


def test_a_firmware_job_installs_and_the_execution_reports_each_status_then_succeeds():
    async def scenario():
        with package_server() as packages:
            async with with_jobs() as (_, link):
                location = packages.publish("fw", package("1.1.0"))
                link.deliver(f"{JOBS}start-next/accepted", {"execution": execution("job-1", location)})
                await until(lambda: terminal(link, "job-1"))
                return link

    link = asyncio.run(scenario())

    sent = updates(link, "job-1")
    assert [(u["status"], u["statusDetails"].get("firmwareStatus")) for u in sent] == [
        ("IN_PROGRESS", "Downloading"),
        ("IN_PROGRESS", "Downloaded"),
        ("IN_PROGRESS", "Installing"),
        ("SUCCEEDED", "Installed"),
    ]
    assert sent[-1]["statusDetails"]["runningVersion"] == "1.1.0"
    assert all(isinstance(value, str) for u in sent for value in u["statusDetails"].values())
    # The backend hears of it as of an UpdateFirmware: the same routine ran.
    assert firmware_statuses(link) == ["Downloading", "Downloaded", "Installing", "Installed"]
    assert boot_versions(link) == ["1.0.0", "1.1.0"]


def test_a_release_that_does_not_boot_fails_the_execution_after_the_rollback():
    async def scenario():
        with package_server() as packages:
            async with with_jobs() as (charger, link):
                charger.unbootable_firmware = frozenset({"1.1.0"})
                location = packages.publish("fw", package("1.1.0"))
                link.deliver(f"{JOBS}start-next/accepted", {"execution": execution("job-1", location)})
                await until(lambda: terminal(link, "job-1"))
                return link

    link = asyncio.run(scenario())

    end = terminal(link, "job-1")
    assert (end["status"], end["statusDetails"]["firmwareStatus"]) == ("FAILED", "InstallationFailed")
    assert end["statusDetails"]["reason"] == "1.1.0 did not boot: rolled back to 1.0.0"
    assert end["statusDetails"]["runningVersion"] == "1.0.0"


@pytest.mark.parametrize(
    "tampered",
    [
        pytest.param(
            pack(sign(IMAGE, "1.1.0", OPERATOR_PEM, target=TARGET), IMAGE[:-1] + b"X"), id="tampered image"
        ),
        pytest.param(
            pack(
                sign(IMAGE, "1.1.0", OPERATOR_PEM, target=TARGET).model_copy(update={"signature": None}),
                IMAGE,
            ),
            id="unsigned",
        ),
    ],
)
def test_a_package_that_fails_verification_is_refused_and_nothing_is_installed(tampered):
    async def scenario():
        with package_server() as packages:
            async with with_jobs() as (charger, link):
                location = packages.publish("fw", tampered)
                link.deliver(
                    f"{JOBS}notify-next", {"timestamp": 1, "execution": execution("job-1", location)}
                )
                await until(lambda: terminal(link, "job-1"))
                return charger, link

    charger, link = asyncio.run(scenario())

    end = terminal(link, "job-1")
    assert end["status"] == "REJECTED"
    assert end["statusDetails"] == {
        "firmwareStatus": "InstallationFailed",
        "reason": "InvalidFirmwareSignature",
        "runningVersion": "1.0.0",
    }
    assert charger.running_firmware == "1.0.0"
    assert boot_versions(link) == ["1.0.0"]


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        ({"operation": "chargenet.diagnostics.upload"}, "unknown operation 'chargenet.diagnostics.upload'"),
        ({"version": "latest"}, "invalid job document: version"),
        ({"location": "file:///etc/passwd"}, "invalid job document: location"),
    ],
)
def test_an_unknown_operation_or_invalid_document_is_rejected_without_a_download(document, reason):
    async def scenario():
        with package_server() as packages:
            async with with_jobs() as (_, link):
                location = packages.publish("fw", package("1.1.0"))
                link.deliver(
                    f"{JOBS}start-next/accepted",
                    {"execution": execution("job-1", location, changes=document)},
                )
                await until(lambda: terminal(link, "job-1"))
                return link, packages.requests

    link, downloads = asyncio.run(scenario())

    end = terminal(link, "job-1")
    assert end["status"] == "REJECTED"
    assert end["statusDetails"]["reason"].startswith(reason)
    assert updates(link, "job-1") == [end]
    assert downloads == []
    assert firmware_statuses(link) == []


def test_the_same_execution_delivered_again_installs_once():
    async def scenario():
        with package_server() as packages:
            async with with_jobs() as (_, link):
                job = execution("job-1", packages.publish("fw", package("1.1.0")))
                link.deliver(f"{JOBS}notify-next", {"timestamp": 1, "execution": job})
                link.deliver(f"{JOBS}start-next/accepted", {"execution": job})
                link.deliver(f"{JOBS}start-next/accepted", {"execution": job})
                await until(lambda: terminal(link, "job-1"))
                # And once more after it finished (a re-delivery after a reconnect).
                link.deliver(f"{JOBS}notify-next", {"timestamp": 2, "execution": job})
                await until(
                    lambda: len([u for u in updates(link, "job-1") if u["status"] == "SUCCEEDED"]) == 2
                )
                return link, packages.requests

    link, downloads = asyncio.run(scenario())

    assert downloads == ["/fw"]
    assert boot_versions(link) == ["1.0.0", "1.1.0"]
    assert firmware_statuses(link).count("Installed") == 1


def test_a_retry_of_a_failed_job_is_a_new_execution_and_runs_again():
    async def scenario():
        with package_server() as packages:
            async with with_jobs() as (_, link):
                location = packages.publish("fw", b"not a package")
                link.deliver(f"{JOBS}start-next/accepted", {"execution": execution("job-1", location)})
                await until(lambda: terminal(link, "job-1"))
                packages.publish("fw", package("1.1.0"))
                retry = execution("job-1", location) | {"executionNumber": 2}
                link.deliver(f"{JOBS}notify-next", {"timestamp": 2, "execution": retry})
                await until(lambda: any(u["status"] == "SUCCEEDED" for u in updates(link, "job-1")))
                return link

    link = asyncio.run(scenario())

    assert [u["status"] for u in updates(link, "job-1") if u["status"] != "IN_PROGRESS"] == [
        "REJECTED",
        "SUCCEEDED",
    ]
    assert boot_versions(link) == ["1.0.0", "1.1.0"]


def test_an_in_progress_execution_for_the_running_version_succeeds_without_reinstalling():
    """The shim restarted after installing, before IoT had the SUCCEEDED: the job comes back IN_PROGRESS."""

    async def scenario():
        with package_server() as packages:
            async with with_jobs() as (_, link):
                job = execution("job-1", packages.publish("fw", package("1.0.0")), version="1.0.0")
                job["statusDetails"] = {"firmwareStatus": "Installing"}
                link.deliver(f"{JOBS}start-next/accepted", {"execution": job})
                await until(lambda: terminal(link, "job-1"))
                return link, packages.requests

    link, downloads = asyncio.run(scenario())

    assert updates(link, "job-1") == [
        {
            "status": "SUCCEEDED",
            "statusDetails": {"runningVersion": "1.0.0"},
            "clientToken": terminal(link, "job-1")["clientToken"],
        }
    ]
    assert downloads == []
    assert boot_versions(link) == ["1.0.0"]


def test_a_message_on_another_things_topic_is_ignored():
    async def scenario():
        with package_server() as packages:
            async with with_jobs() as (_, link):
                job = execution("job-1", packages.publish("fw", package("1.1.0")))
                on_message = link.subscriptions[f"{JOBS}notify-next"]
                on_message("$aws/things/CP-OTHER/jobs/notify-next", json.dumps({"execution": job}).encode())
                await asyncio.sleep(0.2)
                return link, packages.requests

    link, downloads = asyncio.run(scenario())

    assert downloads == []
    assert updates(link, "job-1") == []


def test_start_next_is_asked_again_once_a_terminal_update_is_accepted_or_already_terminal():
    async def scenario():
        with package_server() as packages:
            async with with_jobs() as (_, link):
                location = packages.publish("fw", package("1.1.0"))
                link.deliver(f"{JOBS}start-next/accepted", {"execution": execution("job-1", location)})
                end = await until(lambda: terminal(link, "job-1"))
                # An IN_PROGRESS accepted asks for nothing.
                link.deliver(f"{JOBS}job-1/update/accepted", {"executionState": {"status": "IN_PROGRESS"}})
                await asyncio.sleep(0.1)
                asked_before = start_next_requests(link)
                link.deliver(
                    f"{JOBS}job-1/update/accepted",
                    {
                        "clientToken": end["clientToken"],
                        "executionState": {"status": "SUCCEEDED", "versionNumber": 6},
                    },
                )
                await until(lambda: start_next_requests(link) == 2)
                link.deliver(
                    f"{JOBS}job-1/update/rejected",
                    {
                        "code": "InvalidStateTransition",
                        "message": "terminal",
                        "clientToken": end["clientToken"],
                    },
                )
                await until(lambda: start_next_requests(link) == 3)
                return asked_before

    assert asyncio.run(scenario()) == 1


def test_start_next_is_asked_again_when_the_link_comes_back():
    async def scenario():
        async with with_jobs() as (_, link):
            link.go_offline()
            await asyncio.sleep(0.05)
            link.go_online()
            await until(lambda: start_next_requests(link) == 2)
            return sorted(link.subscriptions)

    assert asyncio.run(scenario()) == sorted(
        f"{JOBS}{suffix}"
        for suffix in (
            "notify-next",
            "start-next/accepted",
            "start-next/rejected",
            "+/update/accepted",
            "+/update/rejected",
        )
    )


# ------------------------------------------------------------ a real charger behind the gateway
def test_a_firmware_job_for_a_real_charger_is_offered_with_signed_update_firmware_and_follows_its_statuses():
    async def signed_status(relay: RelayUnderTest, status: str) -> None:
        frame = [2, f"s-{status}", "SignedFirmwareStatusNotification", {"status": status, "requestId": 7}]
        await relay.relay.from_charger(json.dumps(frame))

    async def scenario():
        with package_server() as packages:
            async with relay_with() as relay:
                link = FakeLink(charger_id="CP-REAL")
                link.go_online()
                jobs = asyncio.create_task(relay.relay.run_jobs(link))
                await asyncio.sleep(0.05)
                asked_before_boot = len(link.published)
                await relay.boot("1.0.0")
                await until(lambda: link.published)
                job = execution("job-9", packages.publish("fw", gateway_package("2.0.0")), version="2.0.0")
                link.deliver("$aws/things/CP-REAL/jobs/start-next/accepted", {"execution": job})
                [offer] = await until(lambda: relay.to_charger)
                await relay.relay.from_charger(json.dumps([3, offer[1], {"status": "Accepted"}]))
                for status in ("SignatureVerified", "Installing", "InstallRebooting"):
                    await signed_status(relay, status)
                await relay.boot("2.0.0")  # the charger restarts into the new firmware
                await signed_status(relay, "Installed")
                end = await until(lambda: terminal_of(link, "$aws/things/CP-REAL/jobs/job-9/update"))
                jobs.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await jobs
                return asked_before_boot, offer, end, link

    asked_before_boot, offer, end, link = asyncio.run(scenario())

    assert asked_before_boot == 0, "the charger's version is unknown before its BootNotification"
    assert offer[2] == "SignedUpdateFirmware"
    progress = [
        m["statusDetails"]["firmwareStatus"]
        for topic, m in link.published
        if topic.endswith("job-9/update") and m["status"] == "IN_PROGRESS"
    ]
    # The gateway's own statuses and the charger's relayed ones interleave as they arrive.
    assert progress[0] == "Downloading"
    assert set(progress) == {"Downloading", "Downloaded", "Installing"}
    assert end["status"] == "SUCCEEDED"
    assert end["statusDetails"] == {"firmwareStatus": "Installed", "runningVersion": "2.0.0"}


def terminal_of(link: FakeLink, topic: str) -> dict | None:
    return next((m for t, m in link.published if t == topic and m["status"] != "IN_PROGRESS"), None)


# ------------------------------------------------------------ the Jobs API on the charger's real link
def test_the_chargers_link_carries_the_jobs_api_through_a_reconnect_and_hears_only_its_own_thing(
    provision, backend
):
    creds = provision()
    jobs = f"$aws/things/{creds.charger_id}/jobs/"
    other = "$aws/things/CP-SOMEONE-ELSE/jobs/notify-next"
    asked: list[str] = []
    subscribed, _ = backend._connection.subscribe(
        f"{jobs}start-next", mqtt.QoS.AT_LEAST_ONCE, callback=lambda topic, payload, **_: asked.append(topic)
    )
    subscribed.result(5)

    async def from_cloud(topic: str, payload: bytes) -> None:
        published, _ = backend._connection.publish(topic, payload, mqtt.QoS.AT_LEAST_ONCE)
        await asyncio.wrap_future(published)

    async def scenario() -> list[tuple[str, bytes]]:
        received: list[tuple[str, bytes]] = []
        link = ChargerLink(creds)
        await link.connect(5)
        try:
            for topic_filter in (f"{jobs}notify-next", other):
                await link.subscribe(topic_filter, lambda topic, payload: received.append((topic, payload)))
            await link.publish(f"{jobs}start-next", b'{"clientToken": "t"}')
            await until(lambda: asked)
            # Still subscribed after the link was dropped and came back.
            await link.disconnect()
            await link.reconnect(5)
            await from_cloud(other, b'{"someone": "else"}')
            await from_cloud(f"{jobs}notify-next", b"{}")
            await until(lambda: received)
            await asyncio.sleep(0.2)
            return received
        finally:
            await link.close()

    received = asyncio.run(scenario())

    # The broker's ACL (ChargerPolicy's twin) delivers nothing of another charger's jobs.
    assert received == [(f"{jobs}notify-next", b"{}")]
    assert asked == [f"{jobs}start-next"]


def test_a_simulated_charger_on_its_mqtt_link_takes_a_firmware_job_from_boot_to_succeeded(provision, backend):
    creds = provision()
    jobs = f"$aws/things/{creds.charger_id}/jobs/"
    heard: list[tuple[str, dict]] = []
    subscribed, _ = backend._connection.subscribe(
        f"{jobs}#",
        mqtt.QoS.AT_LEAST_ONCE,
        callback=lambda topic, payload, **_: heard.append((topic, json.loads(payload))),
    )
    subscribed.result(5)

    async def scenario() -> list[tuple[str, dict]]:
        with package_server() as packages:
            charger = SimulatedCharger(creds, firmware="1.0.0")
            charger.firmware_key = PINNED
            await charger.start(5)
            try:
                await charger.run_boot()
                await until(lambda: any(topic == f"{jobs}start-next" for topic, _ in heard))
                job = execution("job-7", packages.publish("fw", package("1.1.0")))
                published, _ = backend._connection.publish(
                    f"{jobs}start-next/accepted",
                    json.dumps({"execution": job}).encode(),
                    mqtt.QoS.AT_LEAST_ONCE,
                )
                await asyncio.wrap_future(published)
                await until(lambda: any(m.get("status") == "SUCCEEDED" for _, m in heard), timeout=10)
                return [(topic, m) for topic, m in heard if topic == f"{jobs}job-7/update"]
            finally:
                await charger.stop()

    sent = asyncio.run(scenario())

    assert [m["status"] for _, m in sent] == ["IN_PROGRESS"] * 3 + ["SUCCEEDED"]
    assert sent[-1][1]["statusDetails"]["runningVersion"] == "1.1.0"
