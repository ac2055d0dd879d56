"""Which OCPP CALLs the backend answers is decided in one place per version: services/ocpp/routes.py.

Every action the product claims (SUPPORTED_ACTIONS for 1.6, SUPPORTED_ACTIONS_201 for 2.0.1) has
exactly one handler, every module of the handlers packages that has handlers is registered, and a
module left out of its version's list stops the router from being built instead of silently
answering its actions with a CALLERROR.
"""

import importlib
import pkgutil
import types
from collections import Counter

import pytest
from ocpp.v16.enums import Action as OcppAction
from ocpp.v201.enums import Action as Ocpp201Action

import chargenet.services.ocpp as handlers_package
import chargenet.services.ocpp201 as handlers_package_201
from chargenet.ocpp.actions import Action, Action201
from chargenet.ocpp.router import Payload, Router, handlers_in, on
from chargenet.ocpp.versions import OcppVersion
from chargenet.services.ocpp import routes


def package_modules(package: types.ModuleType = handlers_package) -> list[types.ModuleType]:
    return [
        importlib.import_module(f"{package.__name__}.{info.name}")
        for info in pkgutil.iter_modules(package.__path__)
    ]


def test_supported_actions_are_ocpp_16_actions_a_charger_sends():
    assert routes.SUPPORTED_ACTIONS
    assert all(isinstance(action, Action) for action in routes.SUPPORTED_ACTIONS)


def test_the_router_handles_exactly_the_supported_actions():
    assert routes.router_for(OcppVersion.V16).actions == {action.value for action in routes.SUPPORTED_ACTIONS}


def test_the_201_router_handles_exactly_the_201_supported_actions_all_of_them_201_actions():
    assert routes.router_for(OcppVersion.V201).actions == {a.value for a in routes.SUPPORTED_ACTIONS_201}
    assert {a.value for a in routes.SUPPORTED_ACTIONS_201} <= {a.value for a in Ocpp201Action}
    assert all(isinstance(action, Action201) for action in routes.SUPPORTED_ACTIONS_201)


def test_the_two_versions_route_one_action_name_to_different_handlers():
    v16, v201 = routes.router_for(OcppVersion.V16), routes.router_for(OcppVersion.V201)
    assert v16.handles("StartTransaction") and not v201.handles("StartTransaction")
    assert v201.handles("NotifyEvent") and not v16.handles("NotifyEvent")
    assert v16.replay_safe("Heartbeat") and v201.replay_safe("Heartbeat")
    # Reads: no reply cache (its conditional put and update would be the most of their calls).
    assert v16.replay_safe("Authorize") and v201.replay_safe("Authorize")


def test_every_supported_action_has_exactly_one_handler_in_the_package():
    counts = Counter(action for module in package_modules() for action, _ in handlers_in(module))
    assert set(counts) == routes.SUPPORTED_ACTIONS
    assert [action for action, n in counts.items() if n != 1] == []


def test_every_module_with_handlers_is_registered():
    with_handlers = {module.__name__ for module in package_modules() if handlers_in(module)}
    registered = {module.__name__ for module in routes.HANDLER_MODULES}
    assert with_handlers == registered


def test_every_201_module_with_handlers_is_registered_with_each_supported_action_once():
    modules = package_modules(handlers_package_201)
    with_handlers = {module.__name__ for module in modules if handlers_in(module)}
    assert with_handlers == {module.__name__ for module in routes.HANDLER_MODULES_201}
    counts = Counter(action for module in modules for action, _ in handlers_in(module))
    assert set(counts) == routes.SUPPORTED_ACTIONS_201
    assert [action for action, n in counts.items() if n != 1] == []


def test_a_201_module_left_out_stops_the_201_router_from_being_built(monkeypatch):
    kept = tuple(
        m for m in routes.HANDLER_MODULES_201 if m.__name__.rsplit(".", 1)[-1] != "certificate_calls"
    )
    monkeypatch.setattr(routes, "HANDLER_MODULES_201", kept)
    with pytest.raises(
        RuntimeError, match="SUPPORTED_ACTIONS_201: no handler for \\['DataTransfer', 'SignCertificate'\\]"
    ):
        routes.build_router(OcppVersion.V201)


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
