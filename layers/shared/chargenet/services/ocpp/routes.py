"""The routers the ingest service dispatches charger CALLs with, one per OCPP version.

Each version has its handler modules and the actions the product claims to answer in it:
1.6 (`SUPPORTED_ACTIONS`): OCPP 1.6J Core's charger-initiated CALLs, the firmware and diagnostics
notifications, and the security extension's SignCertificate and SecurityEventNotification;
2.0.1 (`SUPPORTED_ACTIONS_201`): the charger-initiated messages of issue 23. Any other action is
answered CALLERROR (NotImplemented; in 2.0.1 NotSupported when 2.0.1 defines it). Building a
router fails, and with it the ingest function's import, unless its version's modules handle
exactly its claimed actions, each once: a module left out of the list cannot silently turn a
claimed action into a CALLERROR.
"""

from __future__ import annotations

from collections.abc import Iterable
from types import ModuleType

from chargenet.ocpp.actions import Action, Action201
from chargenet.ocpp.router import Router
from chargenet.ocpp.versions import OcppVersion
from chargenet.services.ocpp import certificate_calls, charger_calls, transaction_calls
from chargenet.services.ocpp.context import CallDeps
from chargenet.services.ocpp201 import certificate_calls as certificate_calls_201
from chargenet.services.ocpp201 import charger_calls as charger_calls_201
from chargenet.services.ocpp201 import transaction_events

HANDLER_MODULES = (charger_calls, transaction_calls, certificate_calls)

SUPPORTED_ACTIONS: frozenset[Action] = frozenset(
    {
        Action.authorize,
        Action.boot_notification,
        Action.data_transfer,
        Action.diagnostics_status_notification,
        Action.firmware_status_notification,
        Action.heartbeat,
        Action.meter_values,
        Action.security_event_notification,
        Action.sign_certificate,
        Action.start_transaction,
        Action.status_notification,
        Action.stop_transaction,
    }
)

HANDLER_MODULES_201 = (charger_calls_201, certificate_calls_201, transaction_events)

SUPPORTED_ACTIONS_201: frozenset[Action201] = frozenset(
    {
        Action201.authorize,
        Action201.boot_notification,
        Action201.data_transfer,
        Action201.firmware_status_notification,
        Action201.heartbeat,
        Action201.log_status_notification,
        Action201.meter_values,
        Action201.notify_event,
        Action201.notify_report,
        Action201.security_event_notification,
        Action201.sign_certificate,
        Action201.status_notification,
        Action201.transaction_event,
    }
)


def build_router(version: OcppVersion = OcppVersion.V16) -> Router[CallDeps]:
    """The router of `version`'s handler modules; a RuntimeError unless it handles exactly the
    actions claimed for it."""
    if version is OcppVersion.V201:
        return _checked_router(HANDLER_MODULES_201, SUPPORTED_ACTIONS_201, "SUPPORTED_ACTIONS_201")
    return _checked_router(HANDLER_MODULES, SUPPORTED_ACTIONS, "SUPPORTED_ACTIONS")


def _checked_router(
    modules: Iterable[ModuleType], supported: frozenset[Action] | frozenset[Action201], name: str
) -> Router[CallDeps]:
    built: Router[CallDeps] = Router.of_modules(modules)
    claimed = {action.value for action in supported}
    missing, unclaimed = claimed - built.actions, built.actions - claimed
    if missing or unclaimed:
        raise RuntimeError(
            f"OCPP handlers do not match {name}: no handler for {sorted(missing)}, "
            f"handled but not claimed {sorted(unclaimed)} (a module missing from its handler modules?)"
        )
    return built


_ROUTERS = {version: build_router(version) for version in OcppVersion}


def router_for(version: OcppVersion) -> Router[CallDeps]:
    """The router CALLs of `version` are dispatched with."""
    return _ROUTERS[version]
