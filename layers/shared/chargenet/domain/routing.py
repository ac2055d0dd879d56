"""The router every charger CALL goes through, and the ports its handlers use."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from chargenet.domain.certificates import CertificateAuthority
from chargenet.domain.ports import (
    ChargerRegistry,
    FaultMonitor,
    PendingCalls,
    SessionStore,
    TagDirectory,
    TariffBook,
)
from chargenet.ocpp.router import CallContext, Router


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
router: Router[CallDeps] = Router()
