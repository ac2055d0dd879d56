"""`chargenet reconcile`'s rules: when a paid CDR and Stripe disagree, and when they do not."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from chargenet.domain.billing import BillingRecord
from chargenet.domain.payments import Payment, PaymentState, Reason, Settlement
from chargenet.domain.payments.reconciliation import StripeMoney, problems

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def cdr(total: str, currency: str = "EUR") -> BillingRecord:
    return BillingRecord(
        cdr_id="42",
        session_id="42",
        charger_id="CP-1",
        connector_id=1,
        start_date_time=T0,
        end_date_time=T0 + timedelta(hours=1),
        currency=currency,
        total_excl_vat=Decimal(total),
        total_incl_vat=Decimal(total),
        energy_wh=10000,
        ocpi={},
    )


def payment(pid: str = "p1", **fields) -> Payment:
    base = {
        "payment_id": pid,
        "token_digest": "d",
        "charger_id": "CP-1",
        "connector_id": 1,
        "currency": "EUR",
        "settlement": Settlement.HOLD,
        "hold_minor": 5000,
        "id_tag": "PAY0123456789ABCDEF",
        "state": PaymentState.CAPTURED,
        "created_at": T0,
        "updated_at": T0,
        "session_id": "42",
    }
    return Payment(**{**base, **fields})


def stripe(received: int, refunded: int = 0, intent: str = "pi_1") -> StripeMoney:
    return StripeMoney(intent, "succeeded" if received else "canceled", received, refunded)


def test_a_capture_of_the_cdr_total_and_recorded_operator_refunds_match():
    assert problems(cdr("5.63"), [(payment(captured_minor=563, due_minor=563), stripe(563))]) == []
    refunded = payment(state=PaymentState.REFUNDED, captured_minor=563, due_minor=563, refunded_minor=100)
    assert problems(cdr("5.63"), [(refunded, stripe(563, 100))]) == []


def test_below_the_minimum_charge_nothing_taken_is_right():
    cancelled = payment(state=PaymentState.CANCELLED, reason=Reason.BELOW_MINIMUM, due_minor=30)
    assert problems(cdr("0.30"), [(cancelled, stripe(0))]) == []


def test_a_swish_prepay_with_the_difference_refunded_matches():
    prepay = payment(
        currency="SEK",
        settlement=Settlement.PREPAY,
        hold_minor=50000,
        state=PaymentState.REFUNDED,
        captured_minor=50000,
        due_minor=12000,
        refunded_minor=38000,
        reason=Reason.SESSION_COST,
    )
    assert problems(cdr("120.00", "SEK"), [(prepay, stripe(50000, 38000))]) == []


def test_uncaptured_captured_twice_over_refunded_and_amount_differs_are_listed():
    charging = payment(state=PaymentState.CHARGING)
    assert problems(cdr("5.63"), [(charging, stripe(0))]) == [
        "uncaptured: 5.63 EUR due, nothing taken (p1 charging)"
    ]
    twice = [
        (payment("p1", captured_minor=563, due_minor=563), stripe(563, intent="pi_1")),
        (payment("p2", captured_minor=563, due_minor=563), stripe(563, intent="pi_2")),
    ]
    assert problems(cdr("5.63"), twice) == [
        "captured twice: pi_1, pi_2",
        "amount differs: 11.26 EUR taken, CDR total 5.63 EUR",
    ]
    over = payment(state=PaymentState.REFUNDED, captured_minor=563, due_minor=563, refunded_minor=600)
    assert problems(cdr("5.63"), [(over, stripe(563, 600))])[0] == (
        "refunded more than captured on pi_1: 6.00 EUR of 5.63 EUR"
    )
    capped = payment(captured_minor=5000, due_minor=5200, uncollected_minor=200)
    assert problems(cdr("52.00"), [(capped, stripe(5000))]) == [
        "amount differs: 50.00 EUR taken, CDR total 52.00 EUR"
    ]
