"""The driver's pages: small, mobile-first HTML, every value escaped."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from html import escape

from chargenet.domain.money import from_minor_units, round_money
from chargenet.domain.payments import (
    Availability,
    CheckoutMethod,
    Payment,
    PaymentState,
    Reason,
    Settlement,
    receipt_lines,
)
from chargenet.services.payments import DriverView, PayPage

_STYLE = """
body{font-family:system-ui,sans-serif;margin:0;padding:1rem;max-width:32rem;margin-inline:auto;color:#1a1a1a}
h1{font-size:1.4rem}.card{border:1px solid #ddd;border-radius:.6rem;padding:1rem;margin:1rem 0}
.state{font-weight:600}.bad{color:#a40000}.ok{color:#0a6a2a}
button{width:100%;font-size:1.1rem;padding:.9rem;border:0;border-radius:.5rem;background:#0b57d0;color:#fff;margin:.4rem 0}
button.stop{background:#a40000}table{width:100%;border-collapse:collapse}td{padding:.3rem 0}
td.num{text-align:right}tr.total td{border-top:1px solid #999;font-weight:600}ul{padding-left:1.2rem}
"""

_UNAVAILABLE = {
    Availability.OFFLINE: "This charger is offline right now. Please try another charger.",
    Availability.FAULTED: "This connector is out of order. Please try another connector.",
    Availability.BUSY: "This connector is in use. Please try another connector.",
    Availability.UNKNOWN: "This connector's state is not known yet. Please try again in a minute.",
}
_ENDED = {
    Reason.CHECKOUT_EXPIRED: "The payment was not completed. Nothing was charged.",
    Reason.CHECKOUT_FAILED: "The payment could not be opened. Nothing was charged.",
    Reason.CHARGER_REFUSED: "The charger did not accept the start.",
    Reason.START_TIMEOUT: "The charger did not start in time.",
    Reason.AUTHORIZATION_LATE: "Your payment was confirmed too late to start the charger.",
    Reason.SESSION_VOIDED: "The session was cancelled by the operator.",
    Reason.HOLD_EXPIRY: "The session was settled before your card's hold expired.",
}


def page(title: str, body: str, refresh_s: int | None = None) -> str:
    refresh = f'<meta http-equiv="refresh" content="{refresh_s}">' if refresh_s else ""
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"{refresh}<title>{escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body><h1>{escape(title)}</h1>{body}</body></html>"
    )


def money(minor: int, currency: str) -> str:
    return f"{from_minor_units(minor, currency)} {escape(currency)}"


def pay(view: PayPage) -> str:
    title = f"Charger {view.charger_id} · connector {view.connector_id}"
    prices = "".join(f"<li>{escape(line)}</li>" for line in view.price_lines)
    price_card = f'<div class="card"><h2>Price</h2><ul>{prices}</ul></div>' if prices else ""
    if not view.payable:
        reason = _UNAVAILABLE.get(view.availability) or "Charging here cannot be paid for right now."
        return page(title, f'<p class="state bad">{escape(reason)}</p>{price_card}')
    assert view.display is not None and view.hold_minor is not None
    hold = money(view.hold_minor, view.display.currency)
    buttons = "".join(_method_button(method, hold) for method in view.methods)
    action = f"/pay/{escape(view.charger_id)}/{view.connector_id}/checkout"
    body = (
        '<p class="state ok">Available</p>'
        f"{price_card}"
        f'<div class="card"><p>To charge, {hold} is reserved on your card. You pay only what the session '
        "costs (incl. VAT); the rest of the reservation is released when you finish. Charging stops "
        "before the cost reaches the reservation.</p>"
        f'<form method="post" action="{action}">{buttons}</form></div>'
    )
    return page(title, body)


def _method_button(method: CheckoutMethod, hold: str) -> str:
    label = (
        "Pay with card, Apple Pay or Google Pay"
        if method is CheckoutMethod.CARD
        else f"Prepay {hold} with Swish"
    )
    return f'<button name="method" value="{method.value}">{escape(label)}</button>'


def not_found(what: str) -> str:
    return page("Not found", f"<p>{escape(what)}</p>")


def session(view: DriverView, token: str) -> str:
    payment = view.payment
    title = f"Charging at {payment.charger_id} · connector {payment.connector_id}"
    if view.record is not None:
        return page(title, _receipt(view))
    if payment.state is PaymentState.CHECKOUT_OPEN:
        return page(title, '<p class="state">Waiting for your payment to be confirmed…</p>', refresh_s=3)
    if payment.state is PaymentState.AUTHORIZED:
        body = (
            f'<p class="state">Payment confirmed ({money(payment.hold_minor, payment.currency)} reserved).</p>'
            "<p>Starting the charger: plug in your car if you have not yet.</p>"
        )
        return page(title, body, refresh_s=3)
    if payment.state is PaymentState.CHARGING:
        return page(title, _live(view, token), refresh_s=10)
    return page(title, _ended(payment))


def _live(view: DriverView, token: str) -> str:
    payment, record = view.payment, view.session
    if record is None:
        return '<p class="state">Charging…</p>'
    end = record.stopped_at or view.now
    rows = [
        ("Energy", f"{Decimal(record.energy_wh) / 1000:.2f} kWh"),
        ("Duration", _duration(end - record.started_at)),
    ]
    if view.running_cost is not None:
        rows.append(
            (
                "Cost so far (incl. VAT)",
                f"{round_money(view.running_cost, payment.currency)} {payment.currency}",
            )
        )
    state = "Charging" if record.state == "active" else "Stopped: unplug your car to finish"
    if payment.stop_requested_at is not None:
        state = "Stopped: the cost reached your reservation"
    stop = (
        f'<form method="post" action="/session/{escape(token)}/stop"><button class="stop">Stop charging</button></form>'
        if record.state == "active"
        else ""
    )
    return f'<p class="state">{escape(state)}</p><div class="card">{_table(rows)}</div>{stop}'


def _receipt(view: DriverView) -> str:
    payment, record = view.payment, view.record
    assert record is not None
    cur = record.currency
    rows = [
        (f"{line.label} {line.volume}".strip(), f"{line.incl_vat} {cur}") for line in receipt_lines(record)
    ]
    vat = record.total_incl_vat - record.total_excl_vat
    totals = [
        ("Total excl. VAT", f"{record.total_excl_vat} {cur}"),
        ("VAT", f"{vat} {cur}"),
        ("Total incl. VAT", f"{record.total_incl_vat} {cur}"),
    ]
    paid = _paid(payment)
    return (
        f'<p class="state ok">Session finished · {Decimal(record.energy_wh) / 1000:.2f} kWh</p>'
        f'<div class="card"><h2>Receipt</h2>{_table(rows)}{_table(totals, last_is_total=True)}</div>'
        f'<div class="card">{paid}</div>'
    )


def _paid(payment: Payment) -> str:
    if payment.state in (PaymentState.CHARGING, PaymentState.AUTHORIZED):
        return "<p>Your payment is being settled.</p>"
    if payment.state is PaymentState.FAILED:
        return '<p class="bad">We could not settle your payment yet; our team has been alerted.</p>'
    if payment.reason is Reason.BELOW_MINIMUM:
        return "<p>This session was below the minimum charge: it is free. Your reservation was released.</p>"
    line = f"<p>Amount charged: <strong>{money(payment.kept_minor, payment.currency)}</strong></p>"
    if payment.settlement is Settlement.PREPAY and payment.refunded_minor:
        line += f"<p>Refunded from your prepayment: {money(payment.refunded_minor, payment.currency)}</p>"
    return line


def _ended(payment: Payment) -> str:
    if payment.state is PaymentState.FAILED:
        return '<p class="state bad">We could not settle your payment; our team has been alerted.</p>'
    reason = _ENDED.get(payment.reason) if payment.reason else None
    given_back = (
        "Your prepayment has been refunded."
        if payment.settlement is Settlement.PREPAY
        else "Your card reservation has been released."
    )
    nothing_secured = payment.payment_intent_id is None
    text = reason or "This payment is closed."
    return f'<p class="state">{escape(text)}</p>' + ("" if nothing_secured else f"<p>{given_back}</p>")


def _table(rows: list[tuple[str, str]], last_is_total: bool = False) -> str:
    cells = "".join(
        f"<tr{' class=total' if last_is_total and i == len(rows) - 1 else ''}><td>{escape(label)}</td>"
        f'<td class="num">{escape(value)}</td></tr>'
        for i, (label, value) in enumerate(rows)
    )
    return f"<table>{cells}</table>"


def _duration(span: timedelta) -> str:
    minutes = max(int(span.total_seconds()) // 60, 0)
    return f"{minutes // 60} h {minutes % 60:02d} min"
