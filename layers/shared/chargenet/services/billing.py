"""Bill a completed session exactly once: fold its events, price them, write one CDR."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from chargenet.domain.billing import billing_record, session_profile
from chargenet.domain.sessions import SessionState, fold
from chargenet.domain.tariffs import load_tariff, price_session
from chargenet.ports.billing import BillableSessions, CdrStore


class BillingOutcome(StrEnum):
    BILLED = "billed"
    ALREADY_BILLED = "already_billed"
    NOT_READY = "not_ready"  # the stream showed a state the session has since left
    NO_TARIFF = "no_tariff"


@dataclass(frozen=True)
class Biller:
    sessions: BillableSessions
    cdrs: CdrStore
    clock: Callable[[], datetime]

    def bill(self, session_id: str) -> BillingOutcome:
        session = self.sessions.get(session_id)
        if session is None or session.state != SessionState.COMPLETED.value:
            return BillingOutcome.NOT_READY
        rated = Decimal(session.rated_power_w) if session.rated_power_w else None
        facts = fold(self.sessions.events(session_id), rated_power_w=rated)
        if facts.state is not SessionState.COMPLETED:
            return BillingOutcome.NOT_READY
        if session.tariff_json is None:
            return BillingOutcome.NO_TARIFF
        tariff = load_tariff(session.tariff_json)
        priced = price_session(tariff, session_profile(facts, session.time_zone))
        created = self.cdrs.create(billing_record(session, facts, tariff, priced, self.clock()))
        self.sessions.mark_billed(session_id)
        return BillingOutcome.BILLED if created else BillingOutcome.ALREADY_BILLED
