"""The state behind the backend's commands, without OCPP: configuration keys, connector availability."""

import pytest
from ocpp.v16.enums import ChargePointErrorCode, ChargePointStatus

from chargenet_shim.sim.configuration import Configuration
from chargenet_shim.sim.connectors import ConnectorBoard, ConnectorStatus, Fault


@pytest.mark.parametrize(
    ("key", "value", "status", "stored"),
    [
        ("ConnectionTimeOut", "90", "Accepted", "90"),
        ("LocalAuthorizeOffline", "TRUE", "Accepted", "true"),
        ("LocalAuthorizeOffline", "yes", "Rejected", "false"),
        ("HeartbeatInterval", "soon", "Rejected", "300"),
        ("MeterValueSampleInterval", "0", "Rejected", "60"),
        ("ClockAlignedDataInterval", "0", "Accepted", "0"),
        ("StopTxnSampledData", "Energy.Active.Import.Register", "Accepted", "Energy.Active.Import.Register"),
        ("NumberOfConnectors", "4", "Rejected", "2"),
        ("SupportedFeatureProfiles", "Core", "Rejected", "Core,FirmwareManagement,RemoteTrigger"),
    ],
)
def test_a_change_is_taken_only_when_the_key_is_writable_and_the_value_fits(key, value, status, stored):
    configuration = Configuration(connectors=2)

    assert configuration.change(key, value) == status
    [shown], unknown = configuration.get([key])
    assert (shown.value, unknown) == (stored, [])


def test_unknown_keys_are_not_supported_and_listed_as_unknown():
    configuration = Configuration(connectors=2)

    assert configuration.change("Colour", "red") == "NotSupported"
    assert configuration.get(["Colour"]) == ([], ["Colour"])


def test_the_intervals_the_simulator_uses_are_read_as_numbers():
    configuration = Configuration(connectors=2)
    configuration.change("HeartbeatInterval", "45")
    configuration.change("MeterValueSampleInterval", "15")

    assert (configuration.heartbeat_interval, configuration.meter_value_sample_interval) == (45, 15)


def test_idle_statuses_follow_faults_then_availability_and_the_charger_as_a_whole():
    board = ConnectorBoard(connectors=2)
    board.faults[1] = Fault(ChargePointErrorCode.ground_failure, info="RCD", vendor_error_code="E1")
    board.operative[2] = False

    assert board.idle_status(1) == ConnectorStatus(ChargePointStatus.faulted, "GroundFailure", "RCD", "E1")
    assert board.idle_status(2) == ConnectorStatus(ChargePointStatus.unavailable)
    assert board.idle_status(0) == ConnectorStatus(ChargePointStatus.available)
    board.faults[0] = Fault(ChargePointErrorCode.power_meter_failure)
    board.operative[2] = True
    assert [board.usable(c) for c in (0, 1, 2)] == [False, False, False]


def test_a_charger_wide_change_waits_for_every_session_it_covers():
    board = ConnectorBoard(connectors=2)

    assert board.change_availability(0, operative=False, busy={1, 2}) == "Scheduled"
    assert board.apply_due(busy={2}) == []
    assert board.usable(2)
    assert board.apply_due(busy=set()) == [0, 1, 2]
    assert [board.usable(c) for c in (0, 1, 2)] == [False, False, False]


def test_asking_for_the_current_state_cancels_a_scheduled_change():
    board = ConnectorBoard(connectors=2)
    board.change_availability(1, operative=False, busy={1})

    assert board.change_availability(1, operative=True, busy={1}) == "Accepted"
    assert board.apply_due(busy=set()) == []
    assert board.usable(1)


def test_a_restart_keeps_availability_and_only_the_faults_that_survive_it():
    board = ConnectorBoard(connectors=2)
    board.operative[1] = False
    board.faults[1] = Fault(ChargePointErrorCode.ground_failure)
    board.faults[2] = Fault(ChargePointErrorCode.high_temperature, survives_reset=True)

    board.restarted()

    assert board.idle_status(1) == ConnectorStatus(ChargePointStatus.unavailable)
    assert board.idle_status(2).status == ChargePointStatus.faulted
