"""The charger simulator: chargers that exist only in software, for tests, demos, scenarios and benchmarks.

A real site runs the gateway (chargenet_shim.gateway and the modules it imports): real chargers
speak OCPP-J to it and it bridges each to its own mTLS MQTT link. Everything here stands in for
such a charger instead, speaking OCPP 1.6 or 2.0.1 on the charger's MQTT link itself (each
version to its own ingest topic): the 1.6 charger (simulator.py, with its command handlers in
remote.py, remote_start.py, firmware_updates.py), the 2.0.1 charger (charger201.py, its
handlers in remote201.py, its device model in device_model.py, its fault reasons as NotifyEvents
in device_events.py), the state and fault hooks both
share (charger_state.py, connectors.py, configuration.py, injections.py), their sessions
(session.py plans them, charging.py runs them in 1.6, charging201.py as 2.0.1 TransactionEvents,
metering.py counts energy, outbox.py queues transaction messages offline), a simulated clock
(simclock.py), the delivery chaos (chaos.py), A/B firmware slots (firmware_install.py), the
fleet runner, fleets of mixed versions included (fleet.py), scenario files with their run and
scoring (scenario.py, scenario_run.py, scoring.py) and `chargenet-shim simulate` (command.py).

The simulator uses the gateway's parts where a real charger's site would too (the MQTT link,
credentials, firmware verification, certificate rotation), never the other way round: no
other module of chargenet_shim imports it, except the command line, which loads it only for
`simulate` (device-shim/tests/test_package_layout.py). The operator CLI's demos and scenario
runs, the benchmarks and the tests drive it from outside.
"""
