"""What the backend does with each CALL a charger sends (OCPP 1.6J): application code, not domain.

The handlers read and write through ports (`chargenet.ports`) and decide with the pure domain
(`chargenet.domain`). Each is a function marked `@on(Action.X)` in one of the modules below;
`routes.py` lists those modules, builds the router the ingest service dispatches with, and
refuses to build unless the actions handled are exactly `routes.SUPPORTED_ACTIONS`, each once
(`tests/unit/test_ocpp_routes.py` also fails on a module here with handlers that is not listed).

    context             CallDeps (the handlers' ports) and Ctx
    charger_calls       BootNotification, Heartbeat, StatusNotification, Diagnostics/FirmwareStatusNotification,
                        SecurityEventNotification
    transaction_calls   Authorize, StartTransaction, MeterValues, StopTransaction
    certificate_calls   SignCertificate, DataTransfer (certificate rotation)
    session_log         appending what a charger said to its session; folding it, or moving a
                        running session's aggregates on (domain.running_meter)
    routes              HANDLER_MODULES, SUPPORTED_ACTIONS, router

Nothing is imported here: the session sweep needs `session_log` without the handlers.
"""
