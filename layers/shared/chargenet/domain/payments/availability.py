"""Whether a driver may pay for a connector now."""

from __future__ import annotations

from enum import StrEnum

from chargenet.domain.models import Charger, ConnectorStatus


class Availability(StrEnum):
    AVAILABLE = "available"
    OFFLINE = "offline"
    FAULTED = "faulted"
    BUSY = "busy"
    UNKNOWN = "unknown"  # the connector never reported a status


# Preparing (1.6) and Occupied (2.0.1): the driver plugged in and the charger waits for
# authorization, the usual case here. A 2.0.1 connector in a transaction reads its transaction's
# chargingState instead of Occupied (services.ocpp201.transaction_events records it), EVConnected
# and Idle included: the EVSE is taken until the transaction ends.
_FREE = frozenset({"Available", "Preparing", "Occupied"})
_BUSY = frozenset(
    {"Charging", "SuspendedEV", "SuspendedEVSE", "Finishing", "Reserved", "EVConnected", "Idle"}
)
_OUT_OF_ORDER = frozenset({"Faulted", "Unavailable"})


def connector_availability(
    charger: Charger, statuses: list[ConnectorStatus], connector_id: int
) -> Availability:
    """Whether a driver may pay for this connector now: only a connected charger whose connector
    is free and whose charger as a whole (connector 0) is not out of order."""
    if not charger.online:
        return Availability.OFFLINE
    by_connector = {s.connector_id: s for s in statuses}
    whole = by_connector.get(0)
    if whole is not None and whole.status in _OUT_OF_ORDER:
        return Availability.FAULTED
    status = by_connector.get(connector_id)
    if status is None:
        return Availability.UNKNOWN
    if status.status in _OUT_OF_ORDER:
        return Availability.FAULTED
    if status.status in _BUSY:
        return Availability.BUSY
    return Availability.AVAILABLE if status.status in _FREE else Availability.UNKNOWN
