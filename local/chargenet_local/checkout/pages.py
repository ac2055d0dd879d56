"""The hosted payment page at `/c/pay/<id>`: the card form as the payer fills it in, checked as
Stripe's page checks it, and the page's HTML (pay, save a card, complete, expired).
"""

from __future__ import annotations

import dataclasses
import html
import time
from typing import Any

from chargenet_local.checkout.model import CheckoutSession
from chargenet_local.httpserve import Response

# Stripe declines 4000000000000002 when charged; localstripe only when it is attached to a
# customer. Charging it as 4000000000000341 (which localstripe declines when charged) runs
# localstripe's real failure path: a failed PaymentIntent and its payment_failed event.
CHARGED_AS = {"4000000000000002": "4000000000000341"}


class PageError(Exception):
    """Shown on the hosted page; the session stays open."""


@dataclasses.dataclass(frozen=True)
class Card:
    number: str
    exp_month: int
    exp_year: int
    cvc: str

    def as_params(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "exp_month": self.exp_month,
            "exp_year": self.exp_year,
            "cvc": self.cvc,
        }

    def for_charging(self) -> Card:
        """The card localstripe must be given to answer a charge as Stripe would (see CHARGED_AS)."""
        return dataclasses.replace(self, number=CHARGED_AS.get(self.number, self.number))


def parse_card(form: dict[str, Any], today: time.struct_time) -> Card:
    number = "".join(str(form.get("card_number", "")).split())
    if not (number.isdigit() and len(number) == 16 and _luhn_ok(number)):
        raise PageError("Your card number is invalid.")
    month, _, year = str(form.get("expiry", "")).replace(" ", "").partition("/")
    if not (month.isdigit() and year.isdigit() and 1 <= int(month) <= 12):
        raise PageError("Your card's expiration date is incomplete.")
    exp_year = int(year) + 2000 if len(year) == 2 else int(year)
    if (exp_year, int(month)) < (today.tm_year, today.tm_mon):
        raise PageError("Your card's expiration date is in the past.")
    cvc = str(form.get("cvc", "")).strip()
    if not (cvc.isdigit() and len(cvc) == 3):
        raise PageError("Your card's security code is incomplete.")
    return Card(number, int(month), exp_year, cvc)


def _luhn_ok(number: str) -> bool:
    digits = [int(d) for d in reversed(number)]
    total = sum(digits[0::2]) + sum(sum(divmod(2 * d, 10)) for d in digits[1::2])
    return total % 10 == 0


def html_response(status: int, page: str) -> Response:
    return Response(status, page.encode(), [("Content-Type", "text/html; charset=utf-8")])


def _money(amount: int, currency: str) -> str:
    return f"{amount / 100:.2f} {currency.upper()}"


_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>chargenet checkout (local)</title>
<style>body{{font-family:sans-serif;max-width:26em;margin:2em auto}}label{{display:block;margin:.6em 0}}
input{{width:100%;padding:.4em}}.error{{color:#b00020}}</style></head>
<body><h1>{title}</h1>{body}<p><small>Local Stripe emulation. Test cards: 4242 4242 4242 4242 succeeds;
4000 0000 0000 0002 is declined; 4000 0000 0000 0341 is declined when charged.</small></p></body></html>"""


def message_page(message: str) -> str:
    return _PAGE.format(title="Checkout", body=f"<p>{html.escape(message)}</p>")


def closed_page(session: CheckoutSession) -> str:
    done = session.obj["status"] == "complete"
    return message_page("This payment is complete." if done else "This checkout session has expired.")


def payment_page(session: CheckoutSession, error: str) -> str:
    obj = session.obj
    setup = obj["mode"] == "setup"
    title = "Save a card" if setup else f"Pay {_money(obj['amount_total'], obj['currency'])}"
    items = "".join(
        f"<li>{html.escape(i.name)} x {i.quantity}: {_money(i.amount, i.currency)}</li>"
        for i in session.line_items
    )
    email = html.escape(str(obj["customer_email"] or ""))
    parts = [
        f'<p class="error">{html.escape(error)}</p>' if error else "",
        f"<ul>{items}</ul>" if items else "",
        f'<form method="post"><label>Email <input name="email" type="email" value="{email}"></label>'
        '<label>Card number <input name="card_number" inputmode="numeric" autocomplete="cc-number"></label>'
        '<label>Expiry (MM/YY) <input name="expiry" autocomplete="cc-exp"></label>'
        '<label>CVC <input name="cvc" inputmode="numeric" autocomplete="cc-csc"></label>'
        f'<button type="submit">{"Save card" if setup else "Pay"}</button></form>',
    ]
    if "swish" in obj["payment_method_types"] and not setup:
        parts.append(
            '<form method="post"><input type="hidden" name="method" value="swish">'
            f'<input type="hidden" name="email" value="{email}"><button type="submit">Pay with Swish</button></form>'
        )
    return _PAGE.format(title=html.escape(title), body="".join(parts))
