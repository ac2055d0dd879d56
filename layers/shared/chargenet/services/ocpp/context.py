"""What an OCPP handler is given: the CALL's context and, in it, the ports it may use."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from chargenet.ocpp.router import CallContext
from chargenet.ports.certificates import CertificateAuthority
from chargenet.ports.faults import FaultMonitor
from chargenet.ports.messaging import PendingCalls
from chargenet.ports.registry import ChargerRegistry, ChargerView
from chargenet.ports.sessions import SessionStore
from chargenet.ports.tags_tariffs import TagDirectory, TariffBook


@dataclass(frozen=True)
class CallDeps:
    registry: ChargerRegistry
    sessions: SessionStore
    tags: TagDirectory
    tariffs: TariffBook
    faults: FaultMonitor
    heartbeat_interval_s: int
    clock: Callable[[], datetime]
    certificates: CertificateAuthority
    pending: PendingCalls  # CALLs a handler promises to send after its reply (CertificateSigned)
    # The charger and its connectors as read once at the top of the frame: handlers ask this,
    # not the registry, for the charger, a connector's session and its last register.
    view: ChargerView


Ctx = CallContext[CallDeps]
