"""Sessions the backend starts and stops: RemoteStartTransaction and RemoteStopTransaction (OCPP 1.6).

A remote start is a driver's visit like any other (charging.py), with the tag the backend
chose and the charge parameters of the charger's `remote_plan`, since no driver tells the
simulator about the car. With AuthorizeRemoteTxRequests true the charger asks Authorize
first, as a real one does; false, it sends StartTransaction at once (OCPP 1.6 §5.11).
A remote stop interrupts the running transaction with reason Remote.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from chargenet_shim.sim.charging import Visit
from chargenet_shim.sim.session import SessionPlan, SessionTruth

if TYPE_CHECKING:
    from chargenet_shim.sim.charger_state import ChargerState
    from chargenet_shim.sim.simulator import SimulatedCharger

AUTHORIZE_REMOTE_TX_REQUESTS = "AuthorizeRemoteTxRequests"


def default_remote_plan() -> SessionPlan:
    """A typical car: 40 -> 80 % of 60 kWh at 22 kW, unplugged 5 min after it is full.

    Connector and tag are placeholders: each remote start puts in the ones it was given.
    """
    return SessionPlan(
        connector_id=1,
        id_tag="REMOTE",
        battery_kwh=60,
        start_soc=40,
        target_soc=80,
        max_power_kw=22,
        idle_minutes_after=5,
    )


def free_connector(charger: ChargerState, connector_id: int | None) -> int | None:
    """The connector a remote start may use (None: the charger picks one), or None if it may not."""
    wanted = range(1, charger.connectors + 1) if connector_id is None else [connector_id]
    return next(
        (
            c
            for c in wanted
            if 1 <= c <= charger.connectors and c not in charger.sessions and charger.board.usable(c)
        ),
        None,
    )


def authorizes_remote_starts(charger: ChargerState) -> bool:
    [key], _ = charger.configuration.get([AUTHORIZE_REMOTE_TX_REQUESTS])
    return key.value == "true"


class RemoteVisit(Visit):
    """A visit whose tag the backend sent: Authorize only when the configuration asks for it."""

    def __init__(self, charger: SimulatedCharger, plan: SessionPlan, *, authorize_first: bool) -> None:
        super().__init__(charger, plan, charger.remote_clock())
        self.authorize_first = authorize_first

    async def _authorize(self) -> None:
        if self.authorize_first:
            await super()._authorize()


def remote_plan_on(
    charger: ChargerState, remote_plan: SessionPlan, connector_id: int, id_tag: str
) -> SessionPlan:
    """The charger's `remote_plan` on the connector and tag a remote start gave."""
    return remote_plan.model_copy(
        update={
            "connector_id": connector_id,
            "id_tag": id_tag,
            "meter_interval_s": remote_plan.meter_interval_s
            or charger.configuration.meter_value_sample_interval,
        }
    )


async def run_remote_session(charger: SimulatedCharger, connector_id: int, id_tag: str) -> SessionTruth:
    """The remotely started session on `connector_id`, on the charger's `remote_clock`, to its end."""
    plan = remote_plan_on(charger, charger.remote_plan, connector_id, id_tag)
    visit = RemoteVisit(charger, plan, authorize_first=authorizes_remote_starts(charger))
    # Raises SessionError if the connector was taken between the answer and now.
    charger.occupy(visit)
    try:
        return await visit.run()
    finally:
        await charger.vacate(visit)
