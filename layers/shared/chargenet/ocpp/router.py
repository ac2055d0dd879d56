"""`@on(Action.X)` routing for CALLs from chargers, in the style of the `ocpp` package.

A handler is a function marked with `@on(Action.X)`; marking registers nothing. A `Router` is
built from an explicit list of modules (`Router.of_modules`): it collects every marked function
defined in them and refuses a second handler for an action, so which actions are answered is
decided in one place and never by which modules happen to have been imported. Each OCPP version
has its own router (services/ocpp/routes.py): the same action name is a different message in
1.6 and 2.0.1.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from types import ModuleType
from typing import Any, Generic, TypeVar

from chargenet.ocpp.actions import Action, Action201

Ctx = TypeVar("Ctx")
Payload = dict[str, Any]
ActionHandler = Callable[[Ctx, Payload], Payload]
_H = TypeVar("_H", bound=Callable[..., Payload])
_MARK = "__ocpp_action__"
_REPLAY_SAFE = "__ocpp_replay_safe__"
AnyAction = Action | Action201


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


def on(action: AnyAction, replay_safe: bool = False) -> Callable[[_H], _H]:
    """Mark a function as the handler of `action` (as `ocpp.routing.on` marks a method).

    `replay_safe`: running the handler again on a copy of the CALL changes nothing and answers
    the same (its writes are keyed on the frame's own facts), so its replies need no cache.
    """

    def mark(handler: _H) -> _H:
        setattr(handler, _MARK, action)
        setattr(handler, _REPLAY_SAFE, replay_safe)
        return handler

    return mark


def handlers_in(module: ModuleType) -> list[tuple[AnyAction, Callable[..., Payload]]]:
    """The marked functions defined in `module` (not those it imports), in definition order."""
    return [
        (getattr(value, _MARK), value)
        for value in vars(module).values()
        if callable(value) and hasattr(value, _MARK) and getattr(value, "__module__", None) == module.__name__
    ]


class Router(Generic[Ctx]):
    def __init__(self, routes: dict[str, Callable[[CallContext[Ctx], Payload], Payload]]) -> None:
        self._routes = dict(routes)

    @classmethod
    def of_modules(cls, modules: Iterable[ModuleType]) -> Router[Ctx]:
        """A router with every handler of `modules`; a ValueError when two handle one action."""
        routes: dict[str, Callable[[CallContext[Ctx], Payload], Payload]] = {}
        for module in modules:
            for action, handler in handlers_in(module):
                if action.value in routes:
                    raise ValueError(
                        f"{action.value} already has a handler ({routes[action.value].__module__})"
                    )
                routes[action.value] = handler
        return cls(routes)

    @property
    def actions(self) -> frozenset[str]:
        return frozenset(self._routes)

    def handles(self, action: str) -> bool:
        return action in self._routes

    def replay_safe(self, action: str) -> bool:
        """Whether the action's handler was marked safe to run again on a copy of its CALL."""
        handler = self._routes.get(action)
        return handler is not None and getattr(handler, _REPLAY_SAFE, False) is True

    def dispatch(self, ctx: CallContext[Ctx], action: str, payload: Payload) -> Payload:
        return self._routes[action](ctx, payload)
