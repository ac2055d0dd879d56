"""The router the ingest service dispatches charger CALLs with, built from an explicit list.

`SUPPORTED_ACTIONS` is what the product claims to answer (OCPP 1.6J Core's charger-initiated
CALLs, the firmware and diagnostics notifications, and the security extension's SignCertificate
and SecurityEventNotification); any other action is answered CALLERROR NotImplemented. Building
the router fails, and with it the ingest function's import, unless the modules in
`HANDLER_MODULES` handle exactly those actions, each once: a module left out of the list cannot
silently turn a claimed action into NotImplemented.
"""

from __future__ import annotations

from chargenet.ocpp.actions import Action
from chargenet.ocpp.router import Router
from chargenet.services.ocpp import certificate_calls, charger_calls, transaction_calls
from chargenet.services.ocpp.context import CallDeps

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


def build_router() -> Router[CallDeps]:
    """The router of `HANDLER_MODULES`; a RuntimeError unless it handles exactly `SUPPORTED_ACTIONS`."""
    built: Router[CallDeps] = Router.of_modules(HANDLER_MODULES)
    claimed = {action.value for action in SUPPORTED_ACTIONS}
    missing, unclaimed = claimed - built.actions, built.actions - claimed
    if missing or unclaimed:
        raise RuntimeError(
            f"OCPP handlers do not match SUPPORTED_ACTIONS: no handler for {sorted(missing)}, "
            f"handled but not claimed {sorted(unclaimed)} (a module missing from HANDLER_MODULES?)"
        )
    return built


router = build_router()
