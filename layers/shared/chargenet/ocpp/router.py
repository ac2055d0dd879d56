"""`@router.on(Action.X)` routing for CALLs from chargers, in the style of the `ocpp` package."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from ocpp.v16.enums import Action

Ctx = TypeVar("Ctx")
Payload = dict[str, Any]
ActionHandler = Callable[[Ctx, Payload], Payload]


class CallRefused(Exception):
    """A handler's refusal answered as an OCPP CALLERROR (`code` one of OCPP's error codes) rather
    than a CALLRESULT: nothing was changed, and a copy of the CALL is refused again."""

    def __init__(self, code: str, description: str) -> None:
        super().__init__(f"{code}: {description}")
        self.code = code
        self.description = description


@dataclass(frozen=True)
class CallContext(Generic[Ctx]):
    """Who sent the CALL and when it reached the cloud; `deps` are the handlers' ports.

    `principal` is the certificate id the charger's connection was made with (IoT's principal()),
    None when the rule did not say.
    """

    charger_id: str
    message_id: str
    received_at: datetime
    deps: Ctx
    principal: str | None = None


class Router(Generic[Ctx]):
    def __init__(self) -> None:
        self._routes: dict[str, Callable[[CallContext[Ctx], Payload], Payload]] = {}

    def on(
        self, action: Action
    ) -> Callable[
        [Callable[[CallContext[Ctx], Payload], Payload]], Callable[[CallContext[Ctx], Payload], Payload]
    ]:
        def register(
            handler: Callable[[CallContext[Ctx], Payload], Payload],
        ) -> Callable[[CallContext[Ctx], Payload], Payload]:
            if action.value in self._routes:
                raise ValueError(f"{action.value} already has a handler")
            self._routes[action.value] = handler
            return handler

        return register

    def handles(self, action: str) -> bool:
        return action in self._routes

    def dispatch(self, ctx: CallContext[Ctx], action: str, payload: Payload) -> Payload:
        return self._routes[action](ctx, payload)
