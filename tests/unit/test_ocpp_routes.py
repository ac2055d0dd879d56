"""Which OCPP 1.6 CALLs the backend answers is decided in one place: services/ocpp/routes.py.

Every action the product claims (SUPPORTED_ACTIONS) has exactly one handler, every module of the
handlers package that has handlers is registered, and a module left out of HANDLER_MODULES stops
the router from being built instead of silently answering its actions NotImplemented.
"""

import importlib
import pkgutil
import types
from collections import Counter

import pytest
from ocpp.v16.enums import Action as OcppAction

import chargenet.services.ocpp as handlers_package
from chargenet.ocpp.actions import Action
from chargenet.ocpp.router import Payload, Router, handlers_in, on
from chargenet.services.ocpp import routes


def package_modules() -> list[types.ModuleType]:
    return [
        importlib.import_module(f"{handlers_package.__name__}.{info.name}")
        for info in pkgutil.iter_modules(handlers_package.__path__)
    ]


def test_supported_actions_are_ocpp_16_actions_a_charger_sends():
    assert routes.SUPPORTED_ACTIONS
    assert all(isinstance(action, Action) for action in routes.SUPPORTED_ACTIONS)


def test_the_router_handles_exactly_the_supported_actions():
    assert routes.router.actions == {action.value for action in routes.SUPPORTED_ACTIONS}


def test_every_supported_action_has_exactly_one_handler_in_the_package():
    counts = Counter(action for module in package_modules() for action, _ in handlers_in(module))
    assert set(counts) == routes.SUPPORTED_ACTIONS
    assert [action for action, n in counts.items() if n != 1] == []


def test_every_module_with_handlers_is_registered():
    with_handlers = {module.__name__ for module in package_modules() if handlers_in(module)}
    registered = {module.__name__ for module in routes.HANDLER_MODULES}
    assert with_handlers == registered


def test_a_module_left_out_stops_the_router_from_being_built(monkeypatch):
    kept = tuple(m for m in routes.HANDLER_MODULES if m.__name__.rsplit(".", 1)[-1] != "certificate_calls")
    monkeypatch.setattr(routes, "HANDLER_MODULES", kept)
    with pytest.raises(RuntimeError, match="no handler for \\['DataTransfer', 'SignCertificate'\\]"):
        routes.build_router()


def test_a_handler_for_an_unclaimed_action_stops_the_router_from_being_built(monkeypatch):
    extra = types.ModuleType("extra_calls")

    @on(OcppAction.cancel_reservation)  # type: ignore[arg-type]  # one chargenet does not name
    def cancel_reservation(ctx: object, payload: Payload) -> Payload:
        return {}

    cancel_reservation.__module__ = extra.__name__
    extra.cancel_reservation = cancel_reservation
    monkeypatch.setattr(routes, "HANDLER_MODULES", (*routes.HANDLER_MODULES, extra))
    with pytest.raises(RuntimeError, match="handled but not claimed \\['CancelReservation'\\]"):
        routes.build_router()


def test_two_handlers_for_one_action_are_refused():
    first, second = types.ModuleType("first"), types.ModuleType("second")
    for module in (first, second):

        @on(Action.heartbeat)
        def heartbeat(ctx: object, payload: Payload) -> Payload:
            return {}

        heartbeat.__module__ = module.__name__
        module.heartbeat = heartbeat
    with pytest.raises(ValueError, match="Heartbeat already has a handler"):
        Router.of_modules([first, second])


def test_marking_registers_nothing_and_imported_handlers_are_not_collected_twice():
    from chargenet.services.ocpp import charger_calls

    importer = types.ModuleType("importer")
    importer.boot_notification = charger_calls.boot_notification  # imported, not defined here
    assert handlers_in(importer) == []
    assert not Router.of_modules([importer]).handles("BootNotification")
