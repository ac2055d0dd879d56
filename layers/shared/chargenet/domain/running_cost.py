"""What a running session has cost so far: the figure a 2.0.1 charger shows its driver.

Apart from the transaction handlers, which import it only when a session has a tariff to price:
the tariff engine and billing are a large share of the ingest function's cold start, and most
frames never need them.
"""

from __future__ import annotations

from decimal import Decimal

from chargenet.domain.billing import session_profile
from chargenet.domain.models import SessionRecord
from chargenet.domain.sessions import SessionFacts
from chargenet.domain.tariffs import load_tariff, price_session


def running_total(session: SessionRecord, facts: SessionFacts) -> Decimal | None:
    """The session's cost so far incl. VAT under its tariff snapshot, by the engine and rounding
    its CDR will use (once complete, this is the CDR's total incl. VAT). None without a tariff."""
    if session.tariff_json is None or facts.started_at is None:
        return None
    priced = price_session(load_tariff(session.tariff_json), session_profile(facts, session.time_zone))
    total = priced.total_cost
    return total.incl_vat if total.incl_vat is not None else total.excl_vat
