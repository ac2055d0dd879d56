"""Factory provisioning by claim on the real local stack: the batch's claim bundle made by the CLI
through the operator API (signed in), mosquitto's ACL, the MQTT API, the hook Lambda, revocation."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

import boto3
import pytest
from awscrt import mqtt
from awsiot import mqtt_connection_builder

from chargenet.adapters.provisioning_dynamodb import DynamoAllowList
from chargenet_cli.main import main as chargenet
from chargenet_shim.claim import (
    CREATE_FROM_CSR_TOPIC,
    ClaimBundle,
    ClaimConnection,
    ClaimRejected,
    claim,
    read_certificate_reply,
    read_registration_reply,
    register_thing_topic,
)
from chargenet_shim.credentials import ChargerCredentials
from chargenet_shim.keystore import FileKeyStore
from tests.integration.conftest import RawCharger, eventually, registry

BOOT = [2, "boot-1", "BootNotification", {"chargePointVendor": "Factory", "chargePointModel": "F1"}]


def run_cli(stack, *args: str) -> None:
    assert chargenet(["--home", stack.home, *args]) == 0


def new_serial() -> str:
    return f"SN-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def claim_dir(stack, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("claim") / "bundle"
    run_cli(stack, "provisioning", "claim-certificate", "--out", str(folder))
    return folder


def batch(claim_dir: Path) -> tuple[str, str]:
    """`--claim-certificate ID` of the bundle's claim certificate: the batch the serial is allowed under."""
    return ("--claim-certificate", ClaimBundle.load(claim_dir).certificate_id)


def things() -> set[str]:
    return {t["thingName"] for t in boto3.client("iot").list_things()["things"]}


def test_an_allow_listed_serial_claims_its_identity_and_boots_with_it(stack, claim_dir, tmp_path, capsys):
    serial = new_serial()
    run_cli(stack, "provisioning", "allow", serial, "--site", "FACTORY-1", *batch(claim_dir))

    out = asyncio.run(claim(claim_dir, serial, tmp_path / serial))

    credentials = ChargerCredentials.load(out)
    assert credentials.charger_id == serial and credentials.ingest_rule == stack.ingest_rule

    async def boot() -> list:
        async with RawCharger(credentials) as charger:
            await charger.send(BOOT)
            return await charger.reply()

    reply = asyncio.run(boot())
    assert reply[:2] == [3, "boot-1"] and reply[2]["status"] == "Accepted"
    charger = eventually(lambda: registry().get(serial))
    assert charger.site_id == "FACTORY-1" and charger.certificate_not_after is not None
    assert eventually(lambda: registry().get(serial).vendor == "Factory")
    iot = boto3.client("iot")
    assert iot.describe_thing(thingName=serial)["attributes"] == {"site": "FACTORY-1"}
    [principal] = iot.list_thing_principals(thingName=serial)["principals"]
    assert [p["policyName"] for p in iot.list_attached_policies(target=principal)["policies"]] == [
        stack.charger_policy
    ]
    capsys.readouterr()
    run_cli(stack, "provisioning", "list", "--json")
    [listed] = [e for e in json.loads(capsys.readouterr().out) if e["serial_number"] == serial]
    assert listed["site_id"] == "FACTORY-1" and listed["claimed_at"] is not None
    assert principal.endswith(listed["certificate_id"])


def test_a_device_that_lost_its_reply_claims_again_with_its_own_key(stack, claim_dir, tmp_path):
    serial = new_serial()
    run_cli(stack, "provisioning", "allow", serial, *batch(claim_dir))
    out = tmp_path / serial
    asyncio.run(claim(claim_dir, serial, out))
    first_certificate = (out / "cert.pem").read_text()

    asyncio.run(claim(claim_dir, serial, out))  # the same key store: the same device starting over

    assert (out / "cert.pem").read_text() != first_certificate
    [entry] = [e for e in _allow_list().list() if e.serial_number == serial]
    principals = boto3.client("iot").list_thing_principals(thingName=serial)["principals"]
    assert any(p.endswith(entry.certificate_id) for p in principals)


def test_a_serial_not_on_the_list_is_rejected_and_no_thing_is_created(stack, claim_dir, tmp_path):
    serial = new_serial()

    with pytest.raises(ClaimRejected, match="AccessDenied"):
        asyncio.run(claim(claim_dir, serial, tmp_path / serial))

    assert serial not in things()
    assert registry().get(serial) is None
    assert not (tmp_path / serial / "charger.json").exists()


def test_the_claimed_serial_cannot_be_claimed_again_by_a_different_key(stack, claim_dir, tmp_path):
    """Two devices get a certificate for the same serial; the hook lets only the first register."""
    serial = new_serial()
    run_cli(stack, "provisioning", "allow", serial, *batch(claim_dir))
    bundle = ClaimBundle.load(claim_dir)
    register_topic = register_thing_topic(bundle.template_name)

    async def race() -> tuple[object, ClaimRejected]:
        first_store, second_store = FileKeyStore(tmp_path / "first"), FileKeyStore(tmp_path / "second")
        async with (
            ClaimConnection(claim_dir, bundle) as first,
            ClaimConnection(claim_dir, bundle) as second,
        ):
            signed = []
            for connection, store in ((first, first_store), (second, second_store)):
                request = {"certificateSigningRequest": store.create_csr(serial)}
                signed.append(
                    read_certificate_reply(*await connection.request(CREATE_FROM_CSR_TOPIC, request))
                )
            parameters = {"SerialNumber": serial}
            registration = read_registration_reply(
                *await first.request(
                    register_topic,
                    {"certificateOwnershipToken": signed[0].ownership_token, "parameters": parameters},
                )
            )
            with pytest.raises(ClaimRejected) as refused:
                read_registration_reply(
                    *await second.request(
                        register_topic,
                        {"certificateOwnershipToken": signed[1].ownership_token, "parameters": parameters},
                    )
                )
            # The first device, having lost its reply, asks again with the same token: same answer.
            again = read_registration_reply(
                *await first.request(
                    register_topic,
                    {"certificateOwnershipToken": signed[0].ownership_token, "parameters": parameters},
                )
            )
            assert again == registration
            return registration, refused.value

    registration, refused = asyncio.run(race())
    assert registration.thing_name == serial
    assert "AccessDenied (403)" in str(refused)
    [principal] = boto3.client("iot").list_thing_principals(thingName=serial)["principals"]
    [entry] = [e for e in _allow_list().list() if e.serial_number == serial]
    assert principal.endswith(entry.certificate_id)
    # And a third device cannot even get a certificate for it any more.
    with pytest.raises(ClaimRejected, match="certificate request rejected: AccessDenied"):
        asyncio.run(claim(claim_dir, serial, tmp_path / "third"))


def test_a_revoked_claim_certificate_cannot_claim_even_an_allowed_serial(stack, tmp_path):
    """Revoked through the operator API: locally onto the broker's CRL, so the bundle cannot connect."""
    revoked_batch = tmp_path / "revoked-batch"
    run_cli(stack, "provisioning", "claim-certificate", "--out", str(revoked_batch))
    serial = new_serial()
    run_cli(stack, "provisioning", "allow", serial, *batch(revoked_batch))
    run_cli(stack, "provisioning", "revoke-claim-certificate", ClaimBundle.load(revoked_batch).certificate_id)

    with pytest.raises(ClaimRejected, match="cannot connect with the claim certificate"):
        asyncio.run(claim(revoked_batch, serial, tmp_path / serial))

    assert serial not in things()
    assert registry().get(serial) is None


def test_a_claim_certificate_cannot_reach_charger_topics(stack, claim_dir, new_charger):
    victim = new_charger()
    spied: list[bytes] = []
    connection = _connect(claim_dir, "claim:spy")
    try:
        connection.subscribe(
            f"chargers/{victim.charger_id}/out",
            mqtt.QoS.AT_LEAST_ONCE,
            lambda topic, payload, **_: spied.append(payload),
        )[0].result(5)

        async def run() -> None:
            async with RawCharger(victim) as charger:
                spoofed = f"$aws/rules/{victim.ingest_rule}/chargers/{victim.charger_id}/in"
                connection.publish(spoofed, json.dumps(BOOT).encode(), mqtt.QoS.AT_LEAST_ONCE)[0].result(5)
                await charger.no_reply(wait=3)

        asyncio.run(run())
    finally:
        connection.disconnect().result(5)
    assert registry().get(victim.charger_id).vendor is None
    assert spied == []


def test_a_charger_certificate_cannot_use_the_provisioning_api(stack, claim_dir, new_charger):
    """The charger's request never reaches the API: a claim client listening for replies hears none."""
    charger = new_charger()
    heard: list[bytes] = []
    observer = _connect(claim_dir, "claim:observer")
    intruder = mqtt_connection_builder.mtls_from_path(
        endpoint=charger.mqtt_host,
        port=charger.mqtt_port,
        cert_filepath=str(charger.cert_path),
        pri_key_filepath=str(charger.key_path),
        ca_filepath=str(charger.ca_path),
        client_id=charger.charger_id,
        clean_session=True,
    )
    try:
        for outcome in ("accepted", "rejected"):
            observer.subscribe(
                f"{CREATE_FROM_CSR_TOPIC}/{outcome}",
                mqtt.QoS.AT_LEAST_ONCE,
                lambda topic, payload, **_: heard.append(payload),
            )[0].result(5)
        intruder.connect().result(10)
        csr = FileKeyStore(Path(stack.home) / "intruder" / uuid.uuid4().hex).create_csr(charger.charger_id)
        body = json.dumps({"certificateSigningRequest": csr}).encode()
        intruder.publish(CREATE_FROM_CSR_TOPIC, body, mqtt.QoS.AT_LEAST_ONCE)[0].result(5)
        asyncio.run(asyncio.sleep(2))
    finally:
        intruder.disconnect().result(5)
        observer.disconnect().result(5)
    assert heard == []


def _connect(claim_dir: Path, client_id: str) -> mqtt.Connection:
    bundle = ClaimBundle.load(claim_dir)
    connection = mqtt_connection_builder.mtls_from_path(
        endpoint=bundle.mqtt_host,
        port=bundle.mqtt_port,
        cert_filepath=str(claim_dir / "claim.pem"),
        pri_key_filepath=str(claim_dir / "claim.key"),
        ca_filepath=str(claim_dir / "ca.pem"),
        client_id=client_id,
        clean_session=True,
    )
    connection.connect().result(10)
    return connection


def _allow_list():
    return DynamoAllowList()
