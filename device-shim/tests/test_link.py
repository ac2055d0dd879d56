import asyncio
import contextlib
import gc
import json
import logging

import pytest
from shim_stack import cloud_backend, free_port, link_cutter, mosquitto

from chargenet_local.pki import LocalCA
from chargenet_shim.frame_limit import MAX_FRAME_BYTES, FrameTooLarge
from chargenet_shim.link import ChargerLink, LinkError, PublishRefused

pytestmark = [pytest.mark.integration, pytest.mark.timeout(30)]


def test_frames_reach_the_ingest_topic_and_replies_come_back(provision, backend):
    creds = provision()

    async def scenario() -> str:
        link = ChargerLink(creds)
        await link.connect(5)
        try:
            await link.send('[2,"u1","Heartbeat",{}]')
            return await asyncio.wait_for(link.recv(), 5)
        finally:
            await link.close()

    reply = asyncio.run(scenario())

    assert backend.frames(creds.charger_id) == ['[2,"u1","Heartbeat",{}]']
    assert json.loads(reply)[:2] == [3, "u1"]


def test_a_pending_recv_ends_with_link_error_on_close(provision, backend):
    async def scenario() -> None:
        link = ChargerLink(provision())
        await link.connect(5)
        waiting = asyncio.create_task(link.recv())
        await asyncio.sleep(0)
        await link.close()
        with pytest.raises(LinkError, match="closed"):
            await waiting

    asyncio.run(scenario())


def test_send_before_connect_is_a_link_error(provision):
    async def scenario() -> None:
        with pytest.raises(LinkError, match="not connected"):
            await ChargerLink(provision()).send("[]")

    asyncio.run(scenario())


def test_broker_down_is_a_link_error(provision):
    creds = provision().model_copy(update={"mqtt_port": free_port()})

    with pytest.raises(LinkError, match="CONNECTION_REFUSED"):
        asyncio.run(ChargerLink(creds).connect(5))


def test_a_certificate_from_another_ca_is_refused_by_the_broker(provision, tmp_path):
    rogue = LocalCA(tmp_path / "rogue-ca").ensure()

    with pytest.raises(LinkError, match="TLS"):
        asyncio.run(ChargerLink(provision(ca=rogue)).connect(5))


def test_a_revoked_certificate_is_refused_by_the_broker(provision, broker):
    creds = provision()
    broker.ca.revoke(creds.cert_path.read_text())
    broker.reload_crl()

    async def connect_until_refused() -> LinkError:
        # SIGHUP makes mosquitto re-read the CRL asynchronously.
        for _ in range(20):
            link = ChargerLink(creds)
            try:
                await link.connect(5)
            except LinkError as exc:
                return exc
            await link.close()
            await asyncio.sleep(0.1)
        raise AssertionError("the revoked certificate is still accepted")

    assert "TLS" in str(asyncio.run(connect_until_refused()))


def test_a_broker_certificate_the_charger_does_not_trust_ends_in_a_timeout(provision, tmp_path):
    # awscrt (s2n) delays reporting a failed TLS verification by 10-30 s, so the connect timeout decides.
    other_ca = LocalCA(tmp_path / "other-ca").ensure()
    creds = provision().model_copy(update={"ca_path": other_ca.cert_path})

    with pytest.raises(LinkError, match="not trusted"):
        asyncio.run(ChargerLink(creds).connect(1))


def test_the_link_reconnects_and_resubscribes_after_a_broker_restart(provision, ca, tmp_path):
    port = free_port()
    creds = provision().model_copy(update={"mqtt_port": port})

    async def until_delivered(link: ChargerLink, backend) -> str:
        # Nothing tells the test when awscrt has reconnected: keep offering a frame until one arrives.
        for attempt in range(50):
            await asyncio.to_thread(backend.send, creds.charger_id, f'[3,"after-{attempt}",{{}}]')
            with contextlib.suppress(TimeoutError):
                return await asyncio.wait_for(link.recv(), 0.2)
        raise AssertionError("no frame reached the link after the broker restart")

    async def scenario() -> str:
        link = ChargerLink(creds)
        with mosquitto(ca, tmp_path / "broker", port):
            await link.connect(5)
        # mosquitto runs without persistence: the restarted broker has no session for the charger.
        with (
            mosquitto(ca, tmp_path / "broker", port) as restarted,
            cloud_backend(restarted, tmp_path / "be") as be,
        ):
            try:
                received = await until_delivered(link, be)
                await link.send('[2,"up-again","Heartbeat",{}]')
                be.wait_for(creds.charger_id, lambda f: "up-again" in f)
                return received
            finally:
                await link.close()

    assert json.loads(asyncio.run(scenario()))[0] == 3


def test_a_link_closed_while_connecting_gives_up_its_client_id(provision, broker):
    creds = provision()

    async def scenario() -> None:
        link = ChargerLink(creds)
        connecting = asyncio.create_task(link.connect(5))
        await asyncio.sleep(0)
        await link.close()
        with pytest.raises(LinkError, match="closed while connecting"):
            await connecting
        with pytest.raises(LinkError, match="connects once"):
            await link.connect(5)

    asyncio.run(scenario())

    assert broker.wait_for_presence(creds.charger_id, connected=False)


def test_online_follows_the_connection_through_an_outage(provision, broker):
    with link_cutter(broker.port) as cutter:
        creds = provision().model_copy(update={"mqtt_port": cutter.port})

        async def scenario() -> None:
            link = ChargerLink(creds)
            assert not link.online
            await link.connect(5)
            assert link.online
            cutter.cut()
            await asyncio.wait_for(link.wait_offline(), 5)
            cutter.restore()
            # awscrt retries after RECONNECT_MIN_SECS; the broker kept the session.
            await asyncio.wait_for(link.wait_online(), 10)
            await link.close()
            assert not link.online

        asyncio.run(scenario())


def _big_call(size: int) -> str:
    return json.dumps([2, "big-1", "DataTransfer", {"vendorId": "ACME", "data": "x" * size}])


def test_a_frame_over_the_limit_is_refused_before_it_is_published(provision, backend, broker):
    creds = provision()

    async def scenario() -> str:
        link = ChargerLink(creds)
        await link.connect(5)
        try:
            with pytest.raises(FrameTooLarge, match=f"exceeds {MAX_FRAME_BYTES}"):
                await link.send(_big_call(MAX_FRAME_BYTES))
            await link.send('[2,"hb-1","Heartbeat",{}]')
            return await asyncio.wait_for(link.recv(), 5)
        finally:
            await link.close()

    assert json.loads(asyncio.run(scenario()))[:2] == [3, "hb-1"]
    assert backend.frames(creds.charger_id) == ['[2,"hb-1","Heartbeat",{}]']
    assert not any("oversize" in line for line in broker.log_of(creds.charger_id))


def test_a_publish_the_broker_refuses_is_given_up_and_the_frames_behind_it_go_out(
    provision, backend, broker, caplog
):
    # A link allowed more than the broker takes (mosquitto's max_packet_size is 129 KiB): the broker
    # drops the connection for the publish, and awscrt resent it on every reconnect, forever.
    creds = provision()
    refused_frame = _big_call(140_000)

    async def scenario() -> tuple[BaseException | None, str]:
        link = ChargerLink(creds, max_frame_bytes=2 * 1024 * 1024)
        await link.connect(5)
        try:
            refused, _ = await asyncio.gather(
                link.send(refused_frame), link.send('[2,"hb-1","Heartbeat",{}]'), return_exceptions=True
            )
            return refused, await asyncio.wait_for(link.recv(), 5)
        finally:
            await link.close()

    with caplog.at_level(logging.INFO):
        refused, heartbeat = asyncio.run(scenario())
        gc.collect()  # an unretrieved future's error is logged when it is collected

    assert isinstance(refused, PublishRefused)
    assert f"{len(refused_frame)}-byte publish" in str(refused)
    assert json.loads(heartbeat)[:2] == [3, "hb-1"]
    assert backend.frames(creds.charger_id) == ['[2,"hb-1","Heartbeat",{}]']
    # Sent once, resent once on the resumed connection, never again.
    oversize = [line for line in broker.log_of(creds.charger_id) if "oversize" in line]
    assert len(oversize) == 2, oversize
    assert "it refuses it" in caplog.text
    assert "not trusted" not in caplog.text
    assert "never retrieved" not in caplog.text
