"""A link dropped on purpose (fault injection: the site's network fails) and brought back."""

import asyncio
import json

import pytest

from chargenet_shim.link import ChargerLink, LinkError

pytestmark = [pytest.mark.integration, pytest.mark.timeout(30)]


def test_disconnect_is_seen_by_the_broker_and_reconnect_keeps_the_session(provision, broker, backend):
    creds = provision()

    async def scenario() -> str:
        link = ChargerLink(creds)
        await link.connect(5)
        try:
            await link.disconnect()
            assert not link.online
            await asyncio.to_thread(broker.wait_for_presence, creds.charger_id, connected=False)
            # Sent while the charger is away: the broker holds it in the charger's session.
            await asyncio.to_thread(backend.send, creds.charger_id, '[2,"while-away","Heartbeat",{}]')
            await link.reconnect(5)
            assert link.online
            held = await asyncio.wait_for(link.recv(), 5)
            await link.send('[2,"back","Heartbeat",{}]')
            await asyncio.to_thread(backend.wait_for, creds.charger_id, lambda f: '"back"' in f)
            return held
        finally:
            await link.close()

    assert json.loads(asyncio.run(scenario()))[1] == "while-away"


def test_disconnect_and_reconnect_before_connect_are_link_errors(provision):
    async def scenario() -> None:
        link = ChargerLink(provision())
        with pytest.raises(LinkError, match="not connected"):
            await link.disconnect()
        with pytest.raises(LinkError, match="not connected"):
            await link.reconnect()

    asyncio.run(scenario())


def test_close_while_dropped_is_clean(provision, broker):
    async def scenario() -> None:
        link = ChargerLink(provision())
        await link.connect(5)
        await link.disconnect()
        await link.close()
        assert not link.online

    asyncio.run(scenario())
