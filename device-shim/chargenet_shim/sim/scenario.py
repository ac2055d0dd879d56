"""Scenario files: a fleet run with scripted faults, in YAML (or JSON, in a .json file).

    name: ground-failure
    description: one charger trips its RCD, the other stays healthy
    speed: 10                  # simulated seconds per real second (SimClock)
    settle_s: 30               # real seconds to wait for alerts once the run is over
    chargers: {count: 2, prefix: SCN-GF, rated_kw: 22, site: SITE-SCN}
    sessions:                  # SessionPlan fields, plus the charger's number
      - {charger: 2, connector_id: 1, battery_kwh: 60, start_soc: 30, target_soc: 60,
         max_power_kw: 22, meter_interval_s: 60}
    injections:
      - {at_s: 20, charger: 1, kind: error_code, params: {code: GroundFailure, connector: 1}}

Chargers are numbered from 1; their ids are `{prefix}-{n:03d}`, each with two connectors. They
speak OCPP 1.6 but for those `ocpp201` lists (`chargers: {..., ocpp201: [2, 4]}`), which speak
2.0.1 (an error code then reaches the backend as a Faulted status and a NotifyEvent naming the
faulty component, device_events.py).
Time 0 is when the whole fleet is up (booted, statuses sent); sessions start then, back to
back per connector. `at_s` and every `*_s` in params are simulated seconds (real seconds are
these divided by `speed`); a fault without `duration_s` lasts until the run ends.

Injection kinds and their params (defaults in brackets):

    error_code          code (an OCPP 1.6 ChargePointErrorCode, not NoError), connector [1; 0 is
                        the whole charger], vendor_error_code, info, duration_s
    connection_blip     duration_s [30]: the MQTT link drops and comes back
    connection_outage   duration_s (required): the same, long enough to count as offline
    stuck_meter         connector [1], duration_s: the register stops while power flows
    meter_reset         connector [1]: the register jumps back to 0
    power_above_rating  connector [1], factor [1.5] x the rating, duration_s: the power sample
    reboot_loop         count [3], every_s [60]: unprompted reboots, each with a BootNotification
    stop_answering      duration_s: the charger leaves the backend's commands unanswered
"""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

from ocpp.v16.enums import ChargePointErrorCode
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from chargenet_shim.ocpp_version import OcppVersion
from chargenet_shim.sim.session import SessionPlan

# fleet.run_sessions gives every simulated charger two connectors.
CONNECTORS = 2
DEFAULT_TAG = "SCENARIO-TAG"


class ScenarioError(ValueError):
    """The file cannot be read, or does not describe a valid scenario; the message says where."""


class InjectionKind(StrEnum):
    """The `kind` of an injection (each injection model below spells its own as a Literal)."""

    ERROR_CODE = "error_code"
    CONNECTION_BLIP = "connection_blip"
    CONNECTION_OUTAGE = "connection_outage"
    STUCK_METER = "stuck_meter"
    METER_RESET = "meter_reset"
    POWER_ABOVE_RATING = "power_above_rating"
    REBOOT_LOOP = "reboot_loop"
    STOP_ANSWERING = "stop_answering"


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


Duration = Annotated[float, Field(gt=0, description="simulated seconds")]
Connector = Annotated[int, Field(ge=1, le=CONNECTORS)]


class ErrorCodeParams(_Strict):
    code: ChargePointErrorCode
    connector: int = Field(default=1, ge=0, le=CONNECTORS)
    vendor_error_code: str | None = Field(default=None, max_length=50)
    info: str | None = Field(default=None, max_length=50)
    duration_s: Duration | None = None

    @field_validator("code")
    @classmethod
    def _a_fault(cls, code: ChargePointErrorCode) -> ChargePointErrorCode:
        if code is ChargePointErrorCode.no_error:
            raise ValueError("NoError is no fault; give duration_s to clear the fault")
        return code


class BlipParams(_Strict):
    duration_s: Duration = 30.0


class OutageParams(_Strict):
    duration_s: Duration


class MeterParams(_Strict):
    connector: Connector = 1
    duration_s: Duration | None = None


class MeterResetParams(_Strict):
    connector: Connector = 1


class PowerParams(_Strict):
    connector: Connector = 1
    factor: float = Field(default=1.5, gt=1, description="reported power / the charger's rating")
    duration_s: Duration | None = None


class RebootLoopParams(_Strict):
    count: int = Field(default=3, ge=1, le=20)
    every_s: Duration = 60.0


class SilenceParams(_Strict):
    duration_s: Duration | None = None


class _Injection(_Strict):
    at_s: float = Field(ge=0, description="simulated seconds after the fleet is up")
    charger: int = Field(ge=1, description="the charger's number, from 1")


class ErrorCode(_Injection):
    kind: Literal["error_code"]
    params: ErrorCodeParams


class ConnectionBlip(_Injection):
    kind: Literal["connection_blip"]
    params: BlipParams = BlipParams()


class ConnectionOutage(_Injection):
    kind: Literal["connection_outage"]
    params: OutageParams


class StuckMeter(_Injection):
    kind: Literal["stuck_meter"]
    params: MeterParams = MeterParams()


class MeterReset(_Injection):
    kind: Literal["meter_reset"]
    params: MeterResetParams = MeterResetParams()


class PowerAboveRating(_Injection):
    kind: Literal["power_above_rating"]
    params: PowerParams = PowerParams()


class RebootLoop(_Injection):
    kind: Literal["reboot_loop"]
    params: RebootLoopParams = RebootLoopParams()


class StopAnswering(_Injection):
    kind: Literal["stop_answering"]
    params: SilenceParams = SilenceParams()


Injection = Annotated[
    ErrorCode
    | ConnectionBlip
    | ConnectionOutage
    | StuckMeter
    | MeterReset
    | PowerAboveRating
    | RebootLoop
    | StopAnswering,
    Field(discriminator="kind"),
]


def injection_label(injection: Injection) -> str:
    """What the results are grouped by: the kind, and for error codes the code (severities differ)."""
    if isinstance(injection, ErrorCode):
        return f"{injection.kind}/{injection.params.code}"
    return str(injection.kind)


class FleetSpec(_Strict):
    count: int = Field(ge=1, le=500)
    prefix: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,55}$")  # charger ids: no dots
    rated_kw: float = Field(gt=0, description="every charger's rated power")
    site: str = Field(default="SITE-SCENARIO", min_length=1)
    ocpp201: list[int] = Field(default=[], description="the numbers of the chargers that speak OCPP 2.0.1")

    def charger_id(self, number: int) -> str:
        return f"{self.prefix}-{number:03d}"

    @property
    def versions(self) -> list[OcppVersion]:
        """Each charger's OCPP version, in charger order."""
        return [
            OcppVersion.V201 if number in self.ocpp201 else OcppVersion.V16
            for number in range(1, self.count + 1)
        ]

    @property
    def charger_ids(self) -> list[str]:
        return [self.charger_id(n) for n in range(1, self.count + 1)]


class SessionSpec(SessionPlan):
    """A SessionPlan on one of the scenario's chargers; every tag used is registered as accepted."""

    charger: int = Field(ge=1)
    id_tag: str = Field(default=DEFAULT_TAG, min_length=1, max_length=20)
    connector_id: Connector = 1

    def plan(self) -> SessionPlan:
        return SessionPlan(**self.model_dump(exclude={"charger"}))


class Scenario(_Strict):
    name: str = Field(min_length=1)
    description: str = ""
    speed: float = Field(default=10.0, gt=0, description="simulated seconds per real second")
    settle_s: float = Field(default=60.0, ge=0, description="real seconds to wait for alerts afterwards")
    chargers: FleetSpec
    sessions: list[SessionSpec] = []
    injections: list[Injection] = []

    @model_validator(mode="after")
    def _within_the_fleet(self) -> Scenario:
        problems = [
            f"sessions.{i}: charger {s.charger} is not in the fleet of {self.chargers.count}"
            for i, s in enumerate(self.sessions)
            if s.charger > self.chargers.count
        ]
        problems += [
            f"sessions.{i}: max_power_kw {s.max_power_kw} is above the chargers' rated_kw {self.chargers.rated_kw}"
            for i, s in enumerate(self.sessions)
            if s.max_power_kw > self.chargers.rated_kw
        ]
        problems += [
            f"chargers.ocpp201: charger {n} is not in the fleet of {self.chargers.count}"
            for n in self.chargers.ocpp201
            if not 1 <= n <= self.chargers.count
        ]
        problems += [
            f"injections.{i}: charger {j.charger} is not in the fleet of {self.chargers.count}"
            for i, j in enumerate(self.injections)
            if j.charger > self.chargers.count
        ]
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def plans_per_charger(self) -> list[list[SessionPlan]]:
        return [
            [spec.plan() for spec in self.sessions if spec.charger == number]
            for number in range(1, self.chargers.count + 1)
        ]

    def tags(self) -> dict[str, int]:
        """Each id tag and how many sessions use it: the most it may have running at once."""
        counts: dict[str, int] = {}
        for spec in self.sessions:
            counts[spec.id_tag] = counts.get(spec.id_tag, 0) + 1
        return counts


def load_scenario(path: Path) -> Scenario:
    """Read and validate a scenario file; ScenarioError names the file and each problem's place."""
    try:
        document = _parse(path)
    except (OSError, ValueError) as exc:
        raise ScenarioError(f"{path}: {exc}") from exc
    try:
        return Scenario.model_validate(document)
    except ValidationError as exc:
        raise ScenarioError(f"{path}: {describe(exc)}") from exc


def describe(invalid: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(map(str, error['loc'])) or 'scenario'}: {error['msg'].removeprefix('Value error, ')}"
        for error in invalid.errors()
    )


def _parse(path: Path) -> Any:
    text = path.read_text()
    if path.suffix == ".json":
        return json.loads(text)
    # PyYAML comes with the operator tools (chargenet[ops]); a site install can use JSON files.
    try:
        import yaml
    except ImportError as exc:
        raise ValueError("YAML scenarios need PyYAML; install it or use a .json file") from exc
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValueError(f"not valid YAML: {exc}") from exc
