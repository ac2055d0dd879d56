"""What a driver is told while charging: the price before the start, the cost so far (a 2.0.1
charger shows both; the cost cap of a paid session stops at the second).

Apart from the transaction handlers, which import it only when there is a tariff to show or price:
the tariff engine and billing are a large share of the ingest function's cold start, and most
frames never need them.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from chargenet.domain.billing import session_profile
from chargenet.domain.models import SessionRecord
from chargenet.domain.sessions import SessionFacts
from chargenet.domain.tariffs import load_tariff, price_session
from chargenet.domain.tariffs.display import describe, price_display

# idTokenInfo.personalMessage.content: at most 512 characters (MessageContentType, OCPP 2.0.1).
MAX_MESSAGE_CHARS = 512
LINE_SEPARATOR = "; "


def running_total(session: SessionRecord, facts: SessionFacts) -> tuple[Decimal, str] | None:
    """The session's cost so far incl. VAT under its tariff snapshot, and its currency, by the
    engine and rounding its CDR will use (once complete, this is the CDR's total incl. VAT): what
    a 2.0.1 charger shows and what the cost cap stops at. None without a tariff or a start."""
    if session.tariff_json is None or facts.started_at is None:
        return None
    priced = price_session(load_tariff(session.tariff_json), session_profile(facts, session.time_zone))
    total = priced.total_cost
    return (total.incl_vat if total.incl_vat is not None else total.excl_vat), priced.currency


def price_message(tariff_json: str, at: datetime, time_zone: str | None) -> str:
    """The prices in force at `at`, in the pay page's words (domain.tariffs.display), on one line
    for the charger's display. Lines that would not fit go, the last first: the unit prices come
    first, the limits and notes after them."""
    shown = ""
    for line in describe(price_display(load_tariff(tariff_json), at, time_zone)):
        longer = f"{shown}{LINE_SEPARATOR}{line}" if shown else line
        if len(longer) > MAX_MESSAGE_CHARS:
            break
        shown = longer
    return shown
