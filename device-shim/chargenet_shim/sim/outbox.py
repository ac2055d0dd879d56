"""OCPP 1.6 offline behaviour: transaction messages survive a lost link and arrive in order.

A charger MUST keep StartTransaction, MeterValues and StopTransaction while it cannot reach
the backend and deliver them later in the order they were made; anything else (status,
heartbeat, Authorize) is only worth sending while online, and is dropped otherwise.

A transaction message is queued when the link is down, when the publish fails, when the
link drops before the reply, or when no reply arrives in time; and every later transaction
message queues behind it, so order holds. The queue is worked off once the link is back,
one CALL at a time through ocpp's ChargePoint.call. A retry reuses the message id: the
first attempt may have got through, and the backend recognises the repeat by its id.

A StartTransaction that is queued has no transactionId yet. The messages after it carry a
TransactionRef instead, filled in from the Start's reply before they are sent: the Start is
the head of the queue until answered, so nothing that needs its id can overtake it.

OCPP 2.0.1 keeps the same rule for its TransactionEvents (E04: queued, delivered in order), with
less to do: the charger names its transactions itself, so nothing waits for a reply's id; a
TransactionEvent Started plays the StartTransaction's part when the backend refuses it.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from ocpp.exceptions import OCPPError
from ocpp.v16 import call
from ocpp.v201 import call as call201
from ocpp.v201.enums import TransactionEventEnumType

from chargenet_shim.link import LinkError, LinkState

LOG = logging.getLogger(__name__)

TransactionRequest = (
    call.StartTransaction | call.MeterValues | call.StopTransaction | call201.TransactionEvent
)
# ocpp's ChargePoint.call(payload, suppress=..., unique_id=...)
CallFn = Callable[..., Awaitable[Any]]


@dataclass(eq=False)
class TransactionRef:
    """The backend's id for one transaction, known once its StartTransaction is answered."""

    id: int | None = None
    # The backend answered the StartTransaction with a CALLERROR: nothing of it can be delivered.
    refused: bool = False


@dataclass(eq=False)
class _Pending:
    request: TransactionRequest
    transaction: TransactionRef
    unique_id: str = dataclasses.field(default_factory=lambda: str(uuid.uuid4()))

    def bound(self) -> TransactionRequest:
        if not isinstance(self.request, call.MeterValues | call.StopTransaction):
            return self.request
        if self.transaction.id is None:
            raise RuntimeError("a transaction message was about to overtake its StartTransaction")
        return dataclasses.replace(self.request, transaction_id=self.transaction.id)


class _Undelivered(Exception):
    """No reply: the link dropped, the publish failed or the backend stayed silent."""


class Outbox:
    def __init__(self, call_fn: CallFn, link: LinkState, retry_delay: float = 1.0) -> None:
        self._call = call_fn
        self._link = link
        self._retry_delay = retry_delay
        self._backlog: collections.deque[_Pending] = collections.deque()
        self._drainer: asyncio.Task[None] | None = None
        self.queued_total = 0

    @property
    def backlog(self) -> int:
        return len(self._backlog)

    async def call(self, request: Any) -> Any:
        """A CALL that is not kept: its reply, or LinkError when offline or the link drops meanwhile."""
        if not self._link.online:
            raise LinkError(f"offline: {type(request).__name__} dropped")
        try:
            return await self._unless_offline(self._call(request, suppress=False))
        except _Undelivered as exc:
            raise LinkError(f"{type(request).__name__} dropped: {exc}") from exc

    async def transaction_call(self, request: TransactionRequest, transaction: TransactionRef) -> Any | None:
        """The reply, or None when the message was queued (the reply is then the queue's business)
        or belongs to a transaction whose queued StartTransaction the backend refused.

        A CALLERROR the backend answers to a message sent now is raised as OCPPError.
        """
        if transaction.refused:
            LOG.warning("%s of a transaction the backend refused: discarded", type(request).__name__)
            return None
        pending = _Pending(request, transaction)
        if not self._backlog and self._link.online:
            with contextlib.suppress(_Undelivered):
                return await self._deliver(pending)
        self._enqueue(pending)
        return None

    async def flushed(self) -> None:
        """Until every queued message has been delivered (or refused by the backend)."""
        while self._backlog and self._drainer is not None:
            # shield: a caller giving up must not stop the delivery.
            await asyncio.shield(self._drainer)

    async def close(self) -> None:
        drainer, self._drainer = self._drainer, None
        if drainer is not None:
            drainer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await drainer

    def _enqueue(self, pending: _Pending) -> None:
        LOG.info("queued %s for later delivery", type(pending.request).__name__)
        self._backlog.append(pending)
        self.queued_total += 1
        if self._drainer is None or self._drainer.done():
            self._drainer = asyncio.create_task(self._drain(), name="ocpp-outbox")

    async def _drain(self) -> None:
        while self._backlog:
            pending = self._backlog[0]
            if not pending.transaction.refused:
                await self._link.wait_online()
                try:
                    await self._deliver(pending)
                except _Undelivered as exc:
                    LOG.warning("queued %s not delivered, retrying: %s", type(pending.request).__name__, exc)
                    await asyncio.sleep(self._retry_delay)
                    continue
                except OCPPError as exc:
                    # Retrying cannot change the backend's mind; OCPP 1.6 lets the charger discard it.
                    LOG.error("backend refused queued %s, discarded: %r", type(pending.request).__name__, exc)
                    if _opens_transaction(pending.request):
                        pending.transaction.refused = True
            self._backlog.popleft()

    async def _deliver(self, pending: _Pending) -> Any:
        request = pending.bound()
        reply = await self._unless_offline(self._call(request, suppress=False, unique_id=pending.unique_id))
        if isinstance(request, call.StartTransaction):
            pending.transaction.id = reply.transaction_id
        return reply

    async def _unless_offline(self, calling: Awaitable[Any]) -> Any:
        # ChargePoint.call waits response_timeout for a reply that cannot come once the link is
        # down; give up on it as soon as the link says so.
        work = asyncio.ensure_future(calling)
        offline = asyncio.ensure_future(self._link.wait_offline())
        try:
            await asyncio.wait({work, offline}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (work, offline):
                task.cancel()
            await asyncio.gather(work, offline, return_exceptions=True)
        if work.cancelled():
            raise _Undelivered("the link went down before the reply")
        try:
            return work.result()
        except (LinkError, TimeoutError) as exc:
            raise _Undelivered(str(exc) or type(exc).__name__) from exc


def _opens_transaction(request: TransactionRequest) -> bool:
    if isinstance(request, call201.TransactionEvent):
        return request.event_type == TransactionEventEnumType.started
    return isinstance(request, call.StartTransaction)
