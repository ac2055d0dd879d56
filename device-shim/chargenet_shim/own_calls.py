"""The shim's own OCPP CALLs on a connection that carries someone else's OCPP too.

The gateway calls a real charger over the charger's WebSocket (SignedUpdateFirmware, or a 2.0.1
charger's UpdateFirmware) and calls the cloud over the charger's MQTT link (SignCertificate): the
answers arrive among the other side's frames and are told apart by message ids of the shim's own.
The request is an `ocpp` payload class of the charger's version; its class name is the action.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from ocpp.charge_point import remove_nones, serialize_as_dict, snake_to_camel_case

MESSAGE_ID_MAX = 36  # OCPP-J's limit


class OwnCalls:
    def __init__(self, send: Callable[[str], Awaitable[None]], *, prefix: str, timeout_s: float) -> None:
        self.send = send  # the connection's own sender, for frames that are not these CALLs
        self._prefix = prefix
        self._timeout_s = timeout_s
        self._waiting: dict[str, asyncio.Future[list[Any]]] = {}

    async def call(self, request: Any) -> list[Any]:
        """The CALLRESULT or CALLERROR frame answering `request`; TimeoutError when none comes."""
        # Ids of their own: never one the other side uses for its CALLs on the same connection.
        message_id = f"{self._prefix}-{uuid.uuid4().hex}"[:MESSAGE_ID_MAX]
        payload = remove_nones(snake_to_camel_case(serialize_as_dict(request)))
        answer = asyncio.get_running_loop().create_future()
        self._waiting[message_id] = answer
        try:
            await self.send(json.dumps([2, message_id, type(request).__name__, payload]))
            return await asyncio.wait_for(answer, self._timeout_s)
        finally:
            self._waiting.pop(message_id, None)

    def take(self, frame: list[Any]) -> bool:
        """Whether `frame` answers one of these CALLs (it is then consumed)."""
        if frame[0] not in (3, 4) or (answer := self._waiting.get(str(frame[1]))) is None:
            return False
        if not answer.done():
            answer.set_result(frame)
        return True
