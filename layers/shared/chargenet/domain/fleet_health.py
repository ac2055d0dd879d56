"""A charger's health at a glance: its link, its connectors' statuses and its open faults, worst first."""

from __future__ import annotations

from collections import Counter
from typing import Any

from chargenet.domain.faults import Fault, FaultState, Severity
from chargenet.domain.models import Charger, ConnectorStatus

SEVERITY_ORDER = (Severity.SAFETY_CRITICAL, Severity.MAJOR, Severity.MINOR, Severity.INFO)


def health_row(charger: Charger, connectors: list[ConnectorStatus], faults: list[Fault]) -> dict[str, Any]:
    """As `chargenet fleet health --json` prints it; `faults` are the charger's, resolved ones ignored."""
    open_faults = sorted(
        (f for f in faults if f.state is not FaultState.RESOLVED),
        key=lambda f: SEVERITY_ORDER.index(f.severity),
    )
    worst = open_faults[0] if open_faults else None
    return {
        "charger_id": charger.charger_id,
        "site_id": charger.site_id,
        "online": charger.online,
        "connectors": {str(c.connector_id): c.status for c in connectors},
        "open_faults": dict(Counter(f.severity.value for f in open_faults)),
        "worst": f"{worst.code} (connector {worst.connector_id})" if worst else None,
    }
