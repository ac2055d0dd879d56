"""Properties of the tariff engine over generated tariffs and sessions.

Which tariffs each property holds for is part of what is tested, so it is spelled out:

- Splitting a period in two (energy in proportion) never changes anything, for every tariff: restrictions
  are evaluated on the session, not on the meter's periods, and step_size is applied once per session.
- Monotonicity needs more than "no max_* restrictions", because OCPI pricing is path-dependent:
  * kWh restrictions price later time by energy delivered earlier: with {min_kwh: 10, TIME: 0} before a
    paid TIME element, delivering energy faster makes the charging time free sooner; and a cheaper
    price above a kWh threshold ("volume discount") makes energy charged at night move daytime energy
    past the threshold. Only a surcharge tier (priced at least as high as every other ENERGY price,
    ENERGY only) keeps cost monotone, so that is the only kWh restriction generated here.
  * step_size bills the rounding extra at the last element's price, so adding a little volume under a
    cheaper element can lower the extra (and charging followed by parking drops the charging rounding):
    the monotone properties use step_size 1 with whole Wh and whole seconds, where nothing is rounded,
    plus a separate property for one element with any step_size.
  * Lengthening a period in the middle shifts later periods to other times of day, so "more time" is
    tested as extending the session at its end.
"""

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chargenet.domain.tariffs import PricedSession, SessionPeriod, SessionProfile, Tariff, price_session

PROPERTY_SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
ZONES = [timezone(timedelta(hours=h)) for h in (-5, 0, 1, 2)] + [timezone(timedelta(hours=5, minutes=30))]
DAYS = ["MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY"]
DIMENSIONS = ["ENERGY", "TIME", "PARKING_TIME", "FLAT"]


def decimals(high: int, places: int) -> st.SearchStrategy[Decimal]:
    return st.decimals(min_value=0, max_value=high, places=places, allow_nan=False, allow_infinity=False)


prices = decimals(5, 2)
vats = st.one_of(st.none(), st.sampled_from(["0", "6", "20", "25", "5.2"]))
MAX_VAT = Decimal("1.25")
CENT = Decimal("0.01")
any_step = st.one_of(st.just(1), st.integers(1, 3600))
wall_times = st.builds(lambda h, m: f"{h:02d}:{m:02d}", st.integers(0, 23), st.sampled_from([0, 15, 30, 45]))
starts = st.builds(
    lambda days, minutes, zone: datetime(2025, 1, 1, tzinfo=zone) + timedelta(days=days, minutes=minutes),
    st.integers(0, 364),
    st.integers(0, 24 * 60 - 1),
    st.sampled_from(ZONES),
)


def component(kind: str, steps: st.SearchStrategy[int], price: st.SearchStrategy[Decimal] = prices):
    return st.fixed_dictionaries({"type": st.just(kind), "price": price, "vat": vats, "step_size": steps})


def components(steps: st.SearchStrategy[int]):
    kinds = st.lists(st.sampled_from(DIMENSIONS), min_size=1, max_size=4, unique=True)
    return kinds.flatmap(lambda chosen: st.tuples(*(component(k, steps) for k in chosen)).map(list))


@st.composite
def bounded(draw, low_name: str, high_name: str, values: st.SearchStrategy):
    low, high = draw(st.one_of(st.none(), values)), draw(st.one_of(st.none(), values))
    if low is not None and high is not None and low >= high:
        high = None
    return {name: v for name, v in ((low_name, low), (high_name, high)) if v is not None}


@st.composite
def time_window(draw):
    start, end = draw(st.one_of(st.none(), wall_times)), draw(st.one_of(st.none(), wall_times))
    return {
        name: v for name, v in (("start_time", start), ("end_time", end)) if v is not None and start != end
    }


@st.composite
def date_range(draw):
    first = date(2025, 1, 1) + timedelta(days=draw(st.integers(0, 364)))
    return {
        "start_date": first.isoformat(),
        "end_date": (first + timedelta(days=draw(st.integers(1, 30)))).isoformat(),
    }


RESTRICTIONS = {
    "window": time_window(),
    "dates": date_range(),
    "days": st.lists(st.sampled_from(DAYS), min_size=1, unique=True).map(lambda d: {"day_of_week": d}),
    "min_duration": st.integers(0, 6 * 3600).map(lambda s: {"min_duration": s}),
    "min_power": decimals(150, 1).map(lambda p: {"min_power": p}),
    "min_current": decimals(500, 0).map(lambda a: {"min_current": a}),
    "duration": bounded("min_duration", "max_duration", st.integers(0, 6 * 3600)),
    "power": bounded("min_power", "max_power", decimals(150, 1)),
    "current": bounded("min_current", "max_current", decimals(500, 0)),
    "kwh": bounded("min_kwh", "max_kwh", decimals(80, 1)),
}
WITHOUT_MAX_OR_KWH = ["window", "dates", "days", "min_duration", "min_power", "min_current"]
EVERY_KIND = ["window", "dates", "days", "duration", "power", "current", "kwh"]


@st.composite
def restrictions(draw, kinds: list[str]):
    chosen = draw(st.sets(st.sampled_from(kinds), max_size=3))
    merged = {}
    for kind in sorted(chosen):
        merged.update(draw(RESTRICTIONS[kind]))
    return merged or None


@st.composite
def price_limits(draw, incl_vat_given: bool):
    low = draw(st.one_of(st.none(), decimals(20, 2)))
    high = draw(st.one_of(st.none(), decimals(60, 2)))
    if low is not None and high is not None and low > high:
        low, high = high, low
    with_vat = incl_vat_given or draw(st.booleans())
    return {
        name: {"excl_vat": bound, "incl_vat": (bound * MAX_VAT).quantize(CENT) if with_vat else None}
        for name, bound in (("min_price", low), ("max_price", high))
        if bound is not None
    }


@st.composite
def tariffs(draw, kinds: list[str], steps: st.SearchStrategy[int], priced_everywhere: bool, surcharge: bool):
    """`priced_everywhere`: a last element prices every dimension, so every second and Wh is billed.

    Monotone tariffs give price limits incl. VAT too: a limit given excl. VAT only applies incl. VAT at
    the session's VAT ratio, which more of a lower-VAT line lowers.
    """
    elements = draw(
        st.lists(
            st.fixed_dictionaries(
                {"price_components": components(steps), "restrictions": restrictions(kinds)}
            ),
            max_size=3,
        )
    )
    if priced_everywhere:
        fallback = [draw(component(kind, steps)) for kind in ("ENERGY", "TIME", "PARKING_TIME")]
        elements.append({"price_components": fallback})
    if surcharge:
        highest = max(c["price"] for e in elements for c in e["price_components"] if c["type"] == "ENERGY")
        tier = {
            # at least the highest price incl. the highest VAT generated, so it is never cheaper incl. VAT
            "price_components": [
                draw(component("ENERGY", steps, prices.map(lambda p: highest * MAX_VAT + p)))
            ],
            "restrictions": {"min_kwh": draw(decimals(60, 1))},
        }
        elements.insert(draw(st.integers(0, len(elements) - 1)), tier)
    if not elements:
        elements.append({"price_components": draw(components(steps))})
    document = {
        "country_code": "NL",
        "party_id": "CNT",
        "id": "generated",
        "currency": "EUR",
        "elements": elements,
        "last_updated": "2025-01-01T00:00:00Z",
        **draw(price_limits(incl_vat_given=priced_everywhere)),
    }
    return Tariff.model_validate(document)


def charging_period(
    minutes: int, wh_per_minute: int, power: Decimal | None, current: Decimal | None
) -> SessionPeriod:
    # energy at a whole Wh per minute: any whole-minute split of the period is exact
    return SessionPeriod(
        minutes=Decimal(minutes),
        energy_kwh=Decimal(minutes * wh_per_minute) / 1000,
        power_kw=power,
        current_a=current,
    )


charging_periods = st.builds(
    charging_period,
    st.integers(1, 240),
    st.integers(0, 2500),
    st.one_of(st.none(), decimals(150, 1)),
    st.one_of(st.none(), decimals(500, 0)),
)
parking_periods = st.builds(lambda m: SessionPeriod(minutes=Decimal(m), parking=True), st.integers(1, 240))
periods = st.one_of(charging_periods, parking_periods)
sessions = st.builds(
    lambda start, first, rest: SessionProfile(start=start, periods=[first, *rest]),
    starts,
    charging_periods,
    st.lists(periods, max_size=5),
)

monotone_tariffs = st.booleans().flatmap(
    lambda surcharge: tariffs(WITHOUT_MAX_OR_KWH, st.just(1), priced_everywhere=True, surcharge=surcharge)
)
every_tariff = st.booleans().flatmap(
    lambda everywhere: tariffs(EVERY_KIND, any_step, everywhere, surcharge=False)
)


def totals(priced: PricedSession) -> tuple[Decimal, Decimal]:
    return priced.total_cost.excl_vat, priced.total_cost.incl_vat or Decimal(0)


def with_periods(profile: SessionProfile, new_periods: list[SessionPeriod]) -> SessionProfile:
    return profile.model_copy(update={"periods": new_periods})


def at_most(before: PricedSession, after: PricedSession) -> bool:
    return all(b <= a for b, a in zip(totals(before), totals(after), strict=True))


@PROPERTY_SETTINGS
@given(monotone_tariffs, sessions, st.data())
def test_more_energy_never_costs_less(tariff, profile, data):
    charging = [i for i, p in enumerate(profile.periods) if not p.parking]
    index = data.draw(st.sampled_from(charging))
    extra_kwh = Decimal(data.draw(st.integers(1, 20_000))) / 1000
    more = list(profile.periods)
    more[index] = more[index].model_copy(update={"energy_kwh": more[index].energy_kwh + extra_kwh})
    assert at_most(price_session(tariff, profile), price_session(tariff, with_periods(profile, more)))


@PROPERTY_SETTINGS
@given(monotone_tariffs, sessions, periods)
def test_a_longer_session_never_costs_less(tariff, profile, extension):
    longer = with_periods(profile, [*profile.periods, extension])
    assert at_most(price_session(tariff, profile), price_session(tariff, longer))


@PROPERTY_SETTINGS
@given(
    st.builds(
        lambda energy, flat: Tariff.model_validate(
            {
                "country_code": "NL",
                "party_id": "CNT",
                "id": "one-element",
                "currency": "EUR",
                "elements": [{"price_components": [energy, *flat]}],
                "last_updated": "2025-01-01T00:00:00Z",
            }
        ),
        component("ENERGY", any_step),
        st.lists(component("FLAT", st.just(1)), max_size=1),
    ),
    sessions,
    st.integers(1, 20_000),
)
def test_with_any_energy_step_more_energy_never_costs_less(tariff, profile, extra_wh):
    more = list(profile.periods)
    more[0] = more[0].model_copy(update={"energy_kwh": more[0].energy_kwh + Decimal(extra_wh) / 1000})
    assert at_most(price_session(tariff, profile), price_session(tariff, with_periods(profile, more)))


@PROPERTY_SETTINGS
@given(every_tariff, sessions, st.data())
def test_splitting_a_period_changes_nothing(tariff, profile, data):
    splittable = [i for i, p in enumerate(profile.periods) if p.minutes >= 2]
    if not splittable:
        profile = with_periods(profile, [*profile.periods, charging_period(60, 100, None, None)])
        splittable = [len(profile.periods) - 1]
    index = data.draw(st.sampled_from(splittable))
    first_minutes = data.draw(st.integers(1, int(profile.periods[index].minutes) - 1))
    assert price_session(tariff, split(profile, index, first_minutes)) == price_session(tariff, profile)


def split(profile: SessionProfile, index: int, first_minutes: int) -> SessionProfile:
    """The profile with period `index` cut in two after `first_minutes`, energy in proportion."""
    period, minutes = profile.periods[index], Decimal(first_minutes)
    first_energy = period.energy_kwh * minutes / period.minutes
    halves = [
        period.model_copy(update={"minutes": minutes, "energy_kwh": first_energy}),
        period.model_copy(
            update={"minutes": period.minutes - minutes, "energy_kwh": period.energy_kwh - first_energy}
        ),
    ]
    return with_periods(profile, [*profile.periods[:index], *halves, *profile.periods[index + 1 :]])
