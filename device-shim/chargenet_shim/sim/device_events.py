"""A 2.0.1 charger's fault reasons: NotifyEvent, since its StatusNotification says only Faulted.

The shared state speaks 1.6's error codes (connectors.Fault); 2.0.1 tells the problem as the
component that has it with its `Problem` (or, for protective devices, `Tripped`) variable "true",
and the same variable "false" once it is gone (OCPP 2.0.1 part 2, appendix 3). The component of
each 1.6 code is the one the backend reads back into that code (chargenet.domain.fault_rules'
device_event); the vendor's code and text travel as techCode and techInfo.
"""

from __future__ import annotations

import datetime as dt
import itertools

from ocpp.v16.enums import ChargePointErrorCode
from ocpp.v201 import call
from ocpp.v201.datatypes import ComponentType, EventDataType, EVSEType, VariableType
from ocpp.v201.enums import EventNotificationEnumType, EventTriggerEnumType

from chargenet_shim.ocpp_time import ocpp_timestamp
from chargenet_shim.sim.connectors import Fault

# (component, variable) per 1.6 code; any other code: the connector's own Problem.
_COMPONENTS: dict[ChargePointErrorCode, tuple[str, str]] = {
    ChargePointErrorCode.ground_failure: ("RCD", "Tripped"),
    ChargePointErrorCode.over_current_failure: ("OverCurrentProtection", "Tripped"),
    ChargePointErrorCode.high_temperature: ("TemperatureSensor", "Problem"),
    ChargePointErrorCode.connector_lock_failure: ("ConnectorPlugRetentionLock", "Problem"),
    ChargePointErrorCode.power_meter_failure: ("FiscalMetering", "Problem"),
    ChargePointErrorCode.power_switch_failure: ("PowerContactor", "Problem"),
    ChargePointErrorCode.internal_error: ("Controller", "Problem"),
    ChargePointErrorCode.reader_failure: ("TokenReader", "Problem"),
    ChargePointErrorCode.weak_signal: ("DataLink", "Problem"),
}
_CONNECTOR = ("Connector", "Problem")


class DeviceEvents:
    """NotifyEvent requests, their eventIds numbered per charger (never repeated while it runs)."""

    def __init__(self) -> None:
        self._event_ids = itertools.count(1)

    def problem(self, evse_id: int, fault: Fault, moment: dt.datetime, *, present: bool) -> call.NotifyEvent:
        """The fault's component on EVSE `evse_id` (0: the station) has the problem, or no longer."""
        component, variable = _COMPONENTS.get(fault.error_code, _CONNECTOR)
        timestamp = ocpp_timestamp(moment)
        event = EventDataType(
            event_id=next(self._event_ids),
            timestamp=timestamp,
            trigger=EventTriggerEnumType.delta,
            actual_value="true" if present else "false",
            event_notification_type=EventNotificationEnumType.hard_wired_notification,
            component=ComponentType(name=component, evse=EVSEType(id=evse_id) if evse_id else None),
            variable=VariableType(name=variable),
            tech_code=fault.vendor_error_code,
            tech_info=fault.info,
            cleared=None if present else True,
        )
        # seqNo numbers the parts of one notification: this one has a single part.
        return call.NotifyEvent(generated_at=timestamp, seq_no=0, event_data=[event])
