"""The charger's OCPP 1.6 configuration keys (Core profile), for GetConfiguration and ChangeConfiguration.

Two keys change what the simulator does: HeartbeatInterval (the heartbeat loop, charger_state.py)
and MeterValueSampleInterval (sessions whose plan leaves the interval open, charging.py).
The others are kept and reported like on a real charger, with the accessibility the 1.6
specification gives them; the features behind them are not simulated.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

from ocpp.v16.datatypes import KeyValue
from ocpp.v16.enums import ConfigurationStatus

HEARTBEAT_INTERVAL = "HeartbeatInterval"
METER_VALUE_SAMPLE_INTERVAL = "MeterValueSampleInterval"
# What charging.meter_value samples.
SAMPLED_MEASURANDS = "Energy.Active.Import.Register,Power.Active.Import,Current.Import,SoC,Temperature"


class Kind(Enum):
    INTEGER = "integer"
    BOOLEAN = "boolean"
    LIST = "comma-separated list"


@dataclass(frozen=True)
class Key:
    name: str
    default: str
    kind: Kind
    readonly: bool = False
    minimum: int = 0


def standard_keys(connectors: int) -> tuple[Key, ...]:
    return (
        Key("AuthorizeRemoteTxRequests", "true", Kind.BOOLEAN),
        Key("ClockAlignedDataInterval", "0", Kind.INTEGER),
        Key("ConnectionTimeOut", "60", Kind.INTEGER, minimum=1),
        Key("ConnectorPhaseRotation", ",".join(f"{c}.RST" for c in range(1, connectors + 1)), Kind.LIST),
        Key("GetConfigurationMaxKeys", "50", Kind.INTEGER, readonly=True),
        # Until a boot is accepted: the BootNotification reply's interval replaces it.
        Key(HEARTBEAT_INTERVAL, "300", Kind.INTEGER, minimum=1),
        Key("LocalAuthorizeOffline", "false", Kind.BOOLEAN),
        Key("LocalPreAuthorize", "false", Kind.BOOLEAN),
        Key("MeterValuesAlignedData", "Energy.Active.Import.Register", Kind.LIST),
        Key("MeterValuesSampledData", SAMPLED_MEASURANDS, Kind.LIST),
        # Also SessionPlan's default: 0 (no sampled values) is not something a session can do.
        Key(METER_VALUE_SAMPLE_INTERVAL, "60", Kind.INTEGER, minimum=1),
        Key("NumberOfConnectors", str(connectors), Kind.INTEGER, readonly=True),
        Key("ResetRetries", "3", Kind.INTEGER),
        Key("StopTransactionOnEVSideDisconnect", "true", Kind.BOOLEAN),
        Key("StopTransactionOnInvalidId", "false", Kind.BOOLEAN),
        Key("StopTxnAlignedData", "", Kind.LIST),
        Key("StopTxnSampledData", "", Kind.LIST),
        # FirmwareManagement for GetDiagnostics; UpdateFirmware is not simulated.
        Key("SupportedFeatureProfiles", "Core,FirmwareManagement,RemoteTrigger", Kind.LIST, readonly=True),
        Key("TransactionMessageAttempts", "3", Kind.INTEGER),
        Key("TransactionMessageRetryInterval", "60", Kind.INTEGER),
        Key("UnlockConnectorOnEVSideDisconnect", "true", Kind.BOOLEAN),
    )


class Configuration:
    def __init__(self, connectors: int) -> None:
        self._keys = {key.name: key for key in standard_keys(connectors)}
        self._values = {key.name: key.default for key in self._keys.values()}

    def get(self, names: Sequence[str] | None = None) -> tuple[list[KeyValue], list[str]]:
        """GetConfiguration: the known keys asked for (all when none are named), and the unknown ones."""
        wanted = names or list(self._keys)
        known = [
            KeyValue(key=name, readonly=self._keys[name].readonly, value=self._values[name])
            for name in wanted
            if name in self._keys
        ]
        return known, [name for name in wanted if name not in self._keys]

    def change(self, name: str, value: str) -> ConfigurationStatus:
        key = self._keys.get(name)
        if key is None:
            return ConfigurationStatus.not_supported
        normalised = None if key.readonly else parse_value(key, value)
        if normalised is None:
            return ConfigurationStatus.rejected
        self._values[name] = normalised
        return ConfigurationStatus.accepted

    @property
    def heartbeat_interval(self) -> int:
        return int(self._values[HEARTBEAT_INTERVAL])

    @property
    def meter_value_sample_interval(self) -> int:
        return int(self._values[METER_VALUE_SAMPLE_INTERVAL])


def parse_value(key: Key, value: str) -> str | None:
    """The value as stored, or None when it is not one the key takes."""
    if key.kind is Kind.BOOLEAN:
        lowered = value.strip().lower()
        return lowered if lowered in ("true", "false") else None
    if key.kind is Kind.INTEGER:
        try:
            number = int(value)
        except ValueError:
            return None
        return str(number) if number >= key.minimum else None
    return value
