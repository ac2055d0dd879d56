"""The chaos run's invariants: the simulator's ground truth against what the backend recorded.

Pure: the harness (bench/chaos.py) gathers the facts from the local stack, this module judges
them, so each check can be shown to fail on crafted facts (tests/unit/test_chaos_invariants.py).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class DeliveredSession:
    """What the simulator delivered, and the backend's session it is.

    A 1.6 charger was told the session's number (its transactionId); a 2.0.1 charger named its
    transaction itself and is never told the backend's number, which the harness looks up (None:
    the backend never heard of that transaction).
    """

    charger_id: str
    connector_id: int
    session_id: str | None
    energy_wh: int
    ocpp_version: str = "ocpp1.6"
    charger_transaction_id: str | None = None  # 2.0.1: the charger's own transactionId

    @property
    def label(self) -> str:
        if self.session_id is not None:
            return f"session {self.session_id}"
        return (
            f"{self.ocpp_version} transaction {self.charger_transaction_id} on "
            f"{self.charger_id}/{self.connector_id}"
        )


@dataclass(frozen=True)
class FailedSession:
    """A planned session the simulator could not run: the driver gave up (an Authorize or the
    charger's boot went unanswered in time). Not an invariant: nothing of it may be billed, which
    the CDR check holds against the delivered sessions."""

    charger_id: str
    connector_id: int
    error: str


@dataclass(frozen=True)
class BilledSession:
    """A CDR as stored (credit CDRs left out)."""

    cdr_id: str
    session_id: str
    charger_id: str
    energy_wh: int
    total_incl_vat_minor: int


@dataclass(frozen=True)
class PaidSession:
    """A driver's payment through the pay link, with Stripe's own record of its PaymentIntent
    (read from the emulator, not through the fault proxy or the product)."""

    session_id: str  # the transaction the simulator ran on the payment's tag
    payment_id: str
    intent_id: str | None  # None: the product recorded no PaymentIntent for it
    hold_minor: int  # the PaymentIntent's amount
    minimum_minor: int  # Stripe's minimum charge in the payment's currency: below it, nothing is taken
    received_minor: int  # the PaymentIntent's amount_received
    refunded_minor: int
    captured_charges: Sequence[int]  # amount_captured of each captured charge of the PaymentIntent


@dataclass(frozen=True)
class UsageLine:
    """A subscriber's usage line (invoice item) at Stripe, with the CDR it was made for."""

    item_id: str
    cdr_id: str
    amount_minor: int


@dataclass(frozen=True)
class Facts:
    delivered: Sequence[DeliveredSession]
    failed: Sequence[FailedSession]
    cdrs: Sequence[BilledSession]  # every CDR of the run's chargers
    review_session_ids: frozenset[str]  # sessions in needs_review
    malformed_sent: Sequence[str]  # message ids of malformed frames sent
    malformed_answered: frozenset[str]  # those answered with a CALLERROR
    poison_sent: Sequence[str]  # message ids of frames the backend cannot process
    dead_lettered: frozenset[str]  # message ids found in the dead-letter queue
    alerts_expected: Sequence[str]  # one key per injected safety fault
    alerts_received: Sequence[str]  # the key of every matching alert delivered
    paid: Sequence[PaidSession]  # the delivered sessions drivers paid through the pay link
    subscriber_sessions: frozenset[str]  # delivered sessions charged on an active subscriber's tag
    usage_lines: Sequence[UsageLine]  # every invoice item of the run's subscribers at Stripe
    # charger id -> the OCPP version it spoke (the chargers that came up), and the one its registry
    # record names (None or missing: 1.6, as a record from before versions were kept reads).
    versions_spoken: Mapping[str, str] = field(default_factory=dict)
    versions_recorded: Mapping[str, str | None] = field(default_factory=dict)


@dataclass(frozen=True)
class Verdict:
    name: str
    checked: int
    violations: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.violations


def check(facts: Facts) -> list[Verdict]:
    return [
        _one_cdr_or_review(facts),
        _billed_energy(facts),
        _malformed_answered(facts),
        _poison_dead_lettered(facts),
        _alerts_once(facts),
        _captured_as_billed(facts),
        _captured_once_within_hold(facts),
        _usage_billed_once(facts),
        _versions_recorded(facts),
    ]


def _one_cdr_or_review(facts: Facts) -> Verdict:
    per_session = Counter(cdr.session_id for cdr in facts.cdrs)
    violations = []
    for session in facts.delivered:
        count = per_session[session.session_id] if session.session_id is not None else 0
        if count > 1:
            violations.append(f"{session.label}: {count} CDRs")
        elif count == 0 and session.session_id not in facts.review_session_ids:
            violations.append(f"{session.label}: no CDR and not in review")
    delivered = {s.session_id for s in facts.delivered}
    violations += [
        f"CDR {cdr.cdr_id} bills session {cdr.session_id}, which the simulator never ran"
        for cdr in facts.cdrs
        if cdr.session_id not in delivered
    ]
    return Verdict("every session has exactly one CDR or a review record", len(facts.delivered), violations)


def _billed_energy(facts: Facts) -> Verdict:
    truth = {s.session_id: s.energy_wh for s in facts.delivered if s.session_id is not None}
    billed = [cdr for cdr in facts.cdrs if cdr.session_id in truth]
    violations = [
        f"session {cdr.session_id}: billed {cdr.energy_wh} Wh, delivered {truth[cdr.session_id]} Wh"
        for cdr in billed
        if cdr.energy_wh != truth[cdr.session_id]
    ]
    return Verdict("billed energy equals delivered energy", len(billed), violations)


def _malformed_answered(facts: Facts) -> Verdict:
    return Verdict(
        "every malformed frame answered with a CALLERROR",
        len(facts.malformed_sent),
        [f"frame {m}: no CALLERROR" for m in facts.malformed_sent if m not in facts.malformed_answered],
    )


def _poison_dead_lettered(facts: Facts) -> Verdict:
    return Verdict(
        "every poison message is in the dead-letter queue",
        len(facts.poison_sent),
        [f"frame {m}: not dead-lettered" for m in facts.poison_sent if m not in facts.dead_lettered],
    )


def _alerts_once(facts: Facts) -> Verdict:
    received = Counter(facts.alerts_received)
    violations = [f"{key}: {received[key]} alerts" for key in facts.alerts_expected if received[key] != 1]
    expected = set(facts.alerts_expected)
    violations += [f"{key}: alert for no injected fault" for key in received if key not in expected]
    return Verdict("no alert lost or duplicated", len(facts.alerts_expected), violations)


def _captured_as_billed(facts: Facts) -> Verdict:
    """What the driver paid at Stripe is the CDR total incl. VAT: never more than the hold (the
    session is stopped before it), nothing below Stripe's minimum charge (the session is free),
    nothing at all while the session is unbilled (in review)."""
    totals = {cdr.session_id: cdr.total_incl_vat_minor for cdr in facts.cdrs}
    violations = []
    for paid in facts.paid:
        kept = paid.received_minor - paid.refunded_minor
        total = totals.get(paid.session_id)
        if paid.intent_id is None:
            violations.append(f"session {paid.session_id}: payment {paid.payment_id} has no PaymentIntent")
            continue
        due = 0 if total is None else min(total, paid.hold_minor)
        due = 0 if due < paid.minimum_minor else due
        if kept != due:
            billed = "no CDR" if total is None else f"CDR total incl. VAT {total}"
            violations.append(
                f"session {paid.session_id}: {kept} kept at Stripe ({paid.intent_id}), {billed}"
            )
    return Verdict("captured money equals the CDR total incl. VAT", len(facts.paid), violations)


def _captured_once_within_hold(facts: Facts) -> Verdict:
    violations = []
    for paid in facts.paid:
        captured = sum(paid.captured_charges)
        if len(paid.captured_charges) > 1:
            violations.append(f"{paid.intent_id}: captured {len(paid.captured_charges)} times")
        if captured > paid.hold_minor or paid.received_minor > paid.hold_minor:
            violations.append(f"{paid.intent_id}: captured {captured} above its hold of {paid.hold_minor}")
    return Verdict("no PaymentIntent captured twice or above its hold", len(facts.paid), violations)


def _usage_billed_once(facts: Facts) -> Verdict:
    """Each CDR of a subscriber's session is one usage line on the monthly invoice, for its total."""
    lines: dict[str, list[UsageLine]] = {}
    for line in facts.usage_lines:
        lines.setdefault(line.cdr_id, []).append(line)
    billed = [cdr for cdr in facts.cdrs if cdr.session_id in facts.subscriber_sessions]
    violations = []
    for cdr in billed:
        found = lines.get(cdr.cdr_id, [])
        if len(found) != 1:
            violations.append(f"CDR {cdr.cdr_id} (session {cdr.session_id}): {len(found)} usage lines")
        elif found[0].amount_minor != cdr.total_incl_vat_minor:
            violations.append(
                f"CDR {cdr.cdr_id}: usage line {found[0].amount_minor}, CDR total incl. VAT "
                f"{cdr.total_incl_vat_minor}"
            )
    return Verdict("subscriber usage billed once per CDR", len(billed), violations)


def _versions_recorded(facts: Facts) -> Verdict:
    """BootNotification records the version a charger spoke, whichever copy of it arrived last."""
    recorded = {c: facts.versions_recorded.get(c) or "ocpp1.6" for c in facts.versions_spoken}
    violations = [
        f"{charger_id}: spoke {spoken}, recorded as {recorded[charger_id]}"
        for charger_id, spoken in sorted(facts.versions_spoken.items())
        if recorded[charger_id] != spoken
    ]
    return Verdict(
        "every charger recorded with the OCPP version it spoke", len(facts.versions_spoken), violations
    )


def table(verdicts: Sequence[Verdict], failed: Sequence[FailedSession] = ()) -> str:
    width = max(len(v.name) for v in verdicts)
    lines = [f"{'INVARIANT':<{width}}  CHECKED  VIOLATIONS"]
    lines += [f"{v.name:<{width}}  {v.checked:>7}  {len(v.violations):>10}" for v in verdicts]
    for verdict in verdicts:
        lines += [f"  ! {verdict.name}: {violation}" for violation in verdict.violations[:20]]
    lines += [f"  (not started: {f.charger_id}/{f.connector_id}: {f.error[:120]})" for f in failed]
    return "\n".join(lines)
