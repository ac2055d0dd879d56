"""The session plan the simulator tests share."""

from chargenet_shim.sim.session import SessionPlan


def typical_plan(id_tag: str = "TAG-1") -> SessionPlan:
    """70 -> 90 % of 60 kWh at 22 kW, then 10 min parked: about 53 simulated minutes."""
    return SessionPlan(
        connector_id=1,
        id_tag=id_tag,
        battery_kwh=60,
        start_soc=70,
        target_soc=90,
        max_power_kw=22,
        meter_interval_s=300,
        idle_minutes_after=10,
    )
