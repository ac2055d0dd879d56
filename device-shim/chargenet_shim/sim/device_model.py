"""A simulated 2.0.1 charger's device model: GetVariables, SetVariables and GetBaseReport's NotifyReport.

OCPP 2.0.1 replaces 1.6's configuration keys with variables of components (B05-B07). The
variables that change what the simulator does are the 1.6 keys under their 2.0.1 names, and
their values live in the charger's Configuration once, so the code both versions share reads
them there (the heartbeat loop, the meter interval of a session, whether a remote start asks
Authorize):

    OCPPCommCtrlr.HeartbeatInterval        HeartbeatInterval
    SampledDataCtrlr.TxUpdatedInterval     MeterValueSampleInterval
    AuthCtrlr.AuthorizeRemoteStart         AuthorizeRemoteTxRequests

The others are kept and reported as a real station's are; the features behind them are not
simulated. Only the Actual attribute exists (no Target/MinSet/MaxSet).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from ocpp.v201.datatypes import (
    ComponentType,
    GetVariableResultType,
    ReportDataType,
    SetVariableResultType,
    VariableAttributeType,
    VariableCharacteristicsType,
    VariableType,
)
from ocpp.v201.enums import (
    AttributeEnumType,
    DataEnumType,
    GetVariableStatusEnumType,
    MutabilityEnumType,
    ReportBaseEnumType,
    SetVariableStatusEnumType,
)

from chargenet_shim.sim.configuration import (
    HEARTBEAT_INTERVAL,
    METER_VALUE_SAMPLE_INTERVAL,
    Configuration,
    Key,
    Kind,
    parse_value,
)
from chargenet_shim.sim.remote_start import AUTHORIZE_REMOTE_TX_REQUESTS

# Report entries per NotifyReport frame (DeviceDataCtrlr.ItemsPerMessage for GetReport's answers).
REPORT_ITEMS_PER_MESSAGE = 8

# What charging201.meter_value samples.
SAMPLED_MEASURANDS = "Energy.Active.Import.Register,Power.Active.Import,Current.Import,SoC"
_DATA_TYPES = {Kind.INTEGER: DataEnumType.integer, Kind.BOOLEAN: DataEnumType.boolean}


@dataclass(frozen=True)
class Variable:
    component: str
    name: str
    default: str
    kind: Kind
    readonly: bool = False
    minimum: int = 0
    instance: str | None = None
    unit: str | None = None
    # The 1.6 configuration key that holds the value; None: the device model keeps it.
    backed_by: str | None = None

    @property
    def key(self) -> Key:
        return Key(self.name, self.default, self.kind, self.readonly, self.minimum)

    def report(self, value: str) -> ReportDataType:
        mutability = MutabilityEnumType.read_only if self.readonly else MutabilityEnumType.read_write
        return ReportDataType(
            component=ComponentType(name=self.component),
            variable=VariableType(name=self.name, instance=self.instance),
            variable_attribute=[
                VariableAttributeType(type=AttributeEnumType.actual, value=value, mutability=mutability)
            ],
            variable_characteristics=VariableCharacteristicsType(
                data_type=_DATA_TYPES.get(self.kind, DataEnumType.member_list),
                supports_monitoring=False,
                unit=self.unit,
            ),
        )


STANDARD_VARIABLES = (
    # Backed variables: their default is the Configuration key's, never this one.
    Variable("AuthCtrlr", "AuthorizeRemoteStart", "", Kind.BOOLEAN, backed_by=AUTHORIZE_REMOTE_TX_REQUESTS),
    Variable("AuthCtrlr", "LocalAuthorizeOffline", "false", Kind.BOOLEAN),
    Variable("AuthCtrlr", "LocalPreAuthorize", "false", Kind.BOOLEAN),
    Variable(
        "DeviceDataCtrlr", "ItemsPerMessage", str(REPORT_ITEMS_PER_MESSAGE), Kind.INTEGER, readonly=True
    ),
    Variable("OCPPCommCtrlr", "HeartbeatInterval", "", Kind.INTEGER, unit="s", backed_by=HEARTBEAT_INTERVAL),
    Variable("OCPPCommCtrlr", "MessageTimeout", "30", Kind.INTEGER, minimum=1, instance="Default", unit="s"),
    Variable("OCPPCommCtrlr", "MessageAttempts", "3", Kind.INTEGER, instance="TransactionEvent"),
    Variable(
        "OCPPCommCtrlr", "MessageAttemptInterval", "60", Kind.INTEGER, instance="TransactionEvent", unit="s"
    ),
    Variable(
        "SampledDataCtrlr",
        "TxUpdatedInterval",
        "",
        Kind.INTEGER,
        unit="s",
        backed_by=METER_VALUE_SAMPLE_INTERVAL,
    ),
    Variable("SampledDataCtrlr", "TxUpdatedMeasurands", SAMPLED_MEASURANDS, Kind.LIST),
    Variable("SampledDataCtrlr", "TxEndedMeasurands", "Energy.Active.Import.Register", Kind.LIST),
    Variable("SampledDataCtrlr", "TxEndedInterval", "0", Kind.INTEGER, unit="s"),
    Variable("TxCtrlr", "EVConnectionTimeOut", "60", Kind.INTEGER, minimum=1, unit="s"),
    # A transaction runs while both the cable and an authorization are there (the 1.6 behaviour).
    Variable("TxCtrlr", "TxStartPoint", "PowerPathClosed", Kind.LIST),
    Variable("TxCtrlr", "TxStopPoint", "PowerPathClosed", Kind.LIST),
    Variable("TxCtrlr", "StopTxOnEVSideDisconnect", "true", Kind.BOOLEAN, readonly=True),
    Variable("TxCtrlr", "StopTxOnInvalidId", "false", Kind.BOOLEAN),
)


class DeviceModel:
    def __init__(self, configuration: Configuration) -> None:
        self._configuration = configuration
        self._variables = {(v.component, v.name, v.instance): v for v in STANDARD_VARIABLES}
        self._values = {address: v.default for address, v in self._variables.items() if v.backed_by is None}

    def get(self, requested: dict[str, Any]) -> GetVariableResultType:
        """One GetVariableData entry (snake_case, as ocpp hands it over) answered."""
        component, variable = requested["component"], requested["variable"]
        status, found = self._find(component, variable, requested.get("attribute_type"))
        return GetVariableResultType(
            attribute_status=GetVariableStatusEnumType(status),
            component=_component(component),
            variable=_variable(variable),
            attribute_type=requested.get("attribute_type"),
            attribute_value=None if found is None else self._value(found),
        )

    def set(self, requested: dict[str, Any]) -> tuple[SetVariableResultType, Variable | None]:
        """One SetVariableData entry answered, and the variable it changed (None: none)."""
        component, variable = requested["component"], requested["variable"]
        status, found = self._find(component, variable, requested.get("attribute_type"))
        changed = None
        if found is not None:
            status = self._change(found, requested["attribute_value"])
            changed = found if status == SetVariableStatusEnumType.accepted else None
        result = SetVariableResultType(
            attribute_status=SetVariableStatusEnumType(status),
            component=_component(component),
            variable=_variable(variable),
            attribute_type=requested.get("attribute_type"),
        )
        return result, changed

    def report(self, base: ReportBaseEnumType) -> list[ReportDataType] | None:
        """GetBaseReport's entries; None for a report this station does not make (SummaryInventory)."""
        if base == ReportBaseEnumType.summary_inventory:
            return None
        wanted = [
            v for v in self._variables.values() if base == ReportBaseEnumType.full_inventory or not v.readonly
        ]
        return [v.report(self._value(v)) for v in wanted]

    def _find(
        self, component: dict[str, Any], variable: dict[str, Any], attribute: str | None
    ) -> tuple[str, Variable | None]:
        """(status word shared by Get and Set results, the variable when it is there)."""
        if not any(v.component == component["name"] for v in self._variables.values()):
            return "UnknownComponent", None
        found = self._variables.get((component["name"], variable["name"], variable.get("instance")))
        if found is None:
            return "UnknownVariable", None
        if attribute not in (None, AttributeEnumType.actual):
            return "NotSupportedAttributeType", None
        return "Accepted", found

    def _value(self, variable: Variable) -> str:
        if variable.backed_by is None:
            return self._values[(variable.component, variable.name, variable.instance)]
        [key], _ = self._configuration.get([variable.backed_by])
        return str(key.value)

    def _change(self, variable: Variable, value: str) -> SetVariableStatusEnumType:
        if variable.backed_by is not None:
            accepted = self._configuration.change(variable.backed_by, value) == "Accepted"
        else:
            normalised = None if variable.readonly else parse_value(variable.key, value)
            accepted = normalised is not None
            if normalised is not None:
                self._values[(variable.component, variable.name, variable.instance)] = normalised
        return SetVariableStatusEnumType.accepted if accepted else SetVariableStatusEnumType.rejected


def pages(
    entries: Sequence[ReportDataType], size: int = REPORT_ITEMS_PER_MESSAGE
) -> Iterator[list[ReportDataType]]:
    """NotifyReport's frames: at most `size` entries each, at least one frame."""
    for start in range(0, max(len(entries), 1), size):
        yield list(entries[start : start + size])


def _component(component: dict[str, Any]) -> ComponentType:
    return ComponentType(name=component["name"], instance=component.get("instance"))


def _variable(variable: dict[str, Any]) -> VariableType:
    return VariableType(name=variable["name"], instance=variable.get("instance"))
