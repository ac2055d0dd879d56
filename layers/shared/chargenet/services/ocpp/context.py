"""What an OCPP handler is given: the CALL's context and, in it, the ports it may use."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from chargenet.ocpp.router import CallContext
from chargenet.ports.certificates import CertificateAuthority
from chargenet.ports.faults import FaultMonitor
from chargenet.ports.messaging import PendingCalls
from chargenet.ports.registry import ChargerRegistry
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


Ctx = CallContext[CallDeps]
