"""OCPP 2.0.1 Authorize, TransactionEvent and MeterValues into the same sessions, tags and CDRs."""

import base64
import json
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from pydantic import ValidationError

from chargenet.domain.payments.availability import Availability, connector_availability
from chargenet.domain.sessions import EventKind
from chargenet.domain.tariffs import load_tariff
from chargenet.domain.tariffs.display import describe, price_display
from chargenet.ocpp.versions import OcppVersion
from chargenet.services.ingest import IngestEvent
from tests.ingest_network import Network
from tests.ocpp201_station import STATION, T0, Station, at, energy, transaction_event

# The metered transaction billed by hand against the station's tariff (0.50 per session,
# 0.36/kWh, 25 % VAT): 1000 Wh -> 12345 Wh is 11.345 kWh; energy 4.0842 excl. VAT -> 4.08,
# incl. 5.10525 -> 5.11; the flat fee 0.50 -> incl. 0.625 -> 0.63; total incl. VAT 5.74.
HAND_TOTAL_INCL_VAT = Decimal("5.74")
# The station's tariff and the member tariff (0.20/kWh) in the pay page's words.
STATION_PRICE = (
    "0.45 EUR/kWh incl. 25% VAT; idle fee 0.125 EUR/min (7.50 EUR/hour) while plugged in and not"
    " charging incl. 25% VAT; 0.63 EUR per session incl. 25% VAT"
)
MEMBER_PRICE = STATION_PRICE.replace("0.45 EUR/kWh", "0.25 EUR/kWh")


def price_message(content: str) -> dict[str, str]:
    return {"format": "UTF8", "language": "en", "content": content}


def without_price(token_info: dict) -> dict:
    return {key: value for key, value in token_info.items() if key != "personalMessage"}


def charge_and_leave(station: Station) -> list[dict]:
    return [
        station.event("Started", 0, 0, register_wh=1000, token="TAG-OK", trigger="Authorized"),
        station.event("Updated", 1, 10, register_wh=5000),
        station.event("Updated", 2, 20, register_wh=9333),
        station.event(
            "Ended",
            3,
            30,
            register_wh=12345,
            trigger="EVDeparted",
            state="Idle",
            stopped_reason="EVDisconnected",
        ),
    ]


@pytest.mark.parametrize(
    ("token", "expected"),
    [
        ("TAG-OK", {"status": "Accepted"}),
        ("TAG-BLOCKED", {"status": "Blocked"}),
        ("NOBODY", {"status": "Invalid"}),
        ("TAG-EXPIRING", {"status": "Accepted", "cacheExpiryDateTime": "2027-01-01T00:00:00.000Z"}),
    ],
)
def test_authorize_answers_from_the_tag_directory_whatever_the_token_type(token, expected):
    station = Station()
    for token_type in ("ISO14443", "eMAID", "Central", "KeyCode"):
        reply = station.call("Authorize", {"idToken": {"idToken": token, "type": token_type}})
        assert without_price(reply["idTokenInfo"]) == expected
        assert ("personalMessage" in reply["idTokenInfo"]) is (expected["status"] == "Accepted")


def test_plug_and_charge_is_answered_as_not_supported_even_for_a_known_token():
    hash_data = {
        "hashAlgorithm": "SHA256",
        "issuerNameHash": "a" * 64,
        "issuerKeyHash": "b" * 64,
        "serialNumber": "01",
        "responderURL": "http://ocsp.example",
    }
    station = Station()
    for extra in (
        {"iso15118CertificateHashData": [hash_data]},
        {"certificate": "-----BEGIN CERTIFICATE-----"},
    ):
        reply = station.call("Authorize", {"idToken": {"idToken": "TAG-OK", "type": "eMAID"}, **extra})
        assert reply == {"idTokenInfo": {"status": "Unknown"}, "certificateStatus": "NoCertificateAvailable"}


def test_an_empty_no_authorization_token_is_nobodys():
    reply = Station().call("Authorize", {"idToken": {"idToken": "", "type": "NoAuthorization"}})
    assert reply == {"idTokenInfo": {"status": "Invalid"}}


def test_a_metered_transaction_is_billed_to_the_cent_and_its_ended_total_is_the_cdrs():
    station = Station()
    started, first, second, ended = charge_and_leave(station)
    # No running cost before any energy; the price it is billed at, for the station to show.
    assert started == {"idTokenInfo": {"status": "Accepted", "personalMessage": price_message(STATION_PRICE)}}
    assert first["totalCost"] < second["totalCost"] < ended["totalCost"]
    session = station.session()
    assert (session.charger_transaction_id, session.connector_id, session.id_tag, session.tariff_id) == (
        "TX-1",
        1,
        "TAG-OK",
        "T201",
    )
    # The car left with the Ended: the connector is free, the session complete, at once.
    assert (session.state, session.energy_wh, session.freed_at) == (
        "completed",
        11345,
        T0 + timedelta(minutes=30),
    )
    assert Decimal(str(ended["totalCost"])) == HAND_TOTAL_INCL_VAT == station.cdr_total_incl_vat()


def test_the_tag_counts_the_session_while_it_runs_and_the_connector_keeps_the_end_register():
    station = Station()
    station.event("Started", 0, 0, register_wh=1000, token="TAG-OK", trigger="Authorized")
    assert station.tags.active["TAG-OK"] == {station.session().session_id}
    station.event(
        "Ended", 1, 30, register_wh=2000, trigger="StopAuthorized", state="EVConnected", token="TAG-OK"
    )
    assert station.tags.active["TAG-OK"] == set()
    assert station.registry.last_register(STATION, 1) == 2000


def test_a_stop_with_the_car_still_plugged_in_waits_for_the_connector_and_bills_the_parking():
    station = Station()
    station.event("Started", 0, 0, register_wh=0, token="TAG-OK", trigger="Authorized")
    station.event("Updated", 1, 30, register_wh=10000)
    station.event("Updated", 2, 40, state="SuspendedEV", trigger="ChargingStateChanged")
    station.event("Ended", 3, 50, register_wh=10000, trigger="StopAuthorized", state="SuspendedEV")
    assert station.session().state == "stopped"
    station.status("Available", 60)
    session = station.session()
    assert (session.state, session.freed_at) == ("completed", T0 + timedelta(minutes=60))
    facts = station.facts()
    assert (facts.charging_seconds, facts.parking_seconds) == (1800, 1800)
    # 10 kWh: 3.60 + 4.50 VAT-incl.; the flat fee 0.63; 30 min parking at 6.00/h: 3.00 -> 3.75.
    assert station.cdr_total_incl_vat() == Decimal("4.50") + Decimal("0.63") + Decimal("3.75")


def test_events_before_their_started_wait_in_the_log_and_the_ended_is_kept_for_review():
    station = Station()
    station.event("Updated", 1, 10, register_wh=5000)
    ended = station.event(
        "Ended", 3, 30, register_wh=12345, trigger="EVDeparted", state="Idle", stopped_reason="EVDisconnected"
    )
    assert ended == {}  # answered, or the station would resend it forever
    assert [(charger, payload["seqNo"]) for charger, _, payload in station.sessions.orphans] == [(STATION, 3)]
    station.event("Updated", 2, 20, register_wh=9333)
    station.event("Started", 0, 0, register_wh=1000, token="TAG-OK", trigger="Authorized")
    session = station.session()
    assert (session.state, session.energy_wh, session.id_tag) == ("completed", 11345, "TAG-OK")
    assert not station.tags.active.get("TAG-OK")  # opened already stopped: the tag is not held
    assert station.cdr_total_incl_vat() == HAND_TOTAL_INCL_VAT


def test_a_missing_seq_no_holds_the_session_for_review_until_the_station_sends_it():
    station = Station()
    started, first, second, ended = (
        ("Started", 0, 0, {"register_wh": 1000, "token": "TAG-OK", "trigger": "Authorized"}),
        ("Updated", 1, 10, {"register_wh": 5000}),
        ("Updated", 2, 20, {"state": "SuspendedEVSE", "trigger": "ChargingStateChanged"}),
        ("Ended", 3, 30, {"register_wh": 12345, "trigger": "EVDeparted", "state": "Idle"}),
    )
    for event_type, seq_no, minutes, fields in (started, first, ended):
        station.event(event_type, seq_no, minutes, **fields)
    session = station.session()
    assert session.state == "needs_review"
    assert session.review_reasons == ["1 TransactionEvent(s) between seqNo 0 and 3 not received (seqNo 2)"]
    event_type, seq_no, minutes, fields = second
    station.event(event_type, seq_no, minutes, offline=True, **fields)  # from the station's offline queue
    assert (station.session().state, station.session().review_reasons) == ("completed", [])


def test_an_event_that_states_nothing_else_still_counts_for_the_sequence():
    station = Station()
    station.event("Started", 0, 0, register_wh=1000, token="TAG-OK", trigger="Authorized")
    station.event("Updated", 1, 5, state=None, trigger="Trigger")
    station.event("Ended", 2, 10, register_wh=2000, trigger="EVDeparted", state="Idle")
    assert station.session().state == "completed"
    kinds = {event.seq_no: event.kind for event in station.sessions.events(station.session().session_id)}
    assert kinds[1] is EventKind.SEQUENCE


def test_duplicated_events_bill_once_and_the_same():
    station = Station()
    charge_and_leave(station)
    charge_and_leave(station)
    assert len(station.sessions.records) == 1
    assert station.cdr_total_incl_vat() == HAND_TOTAL_INCL_VAT


def test_a_start_on_plug_in_becomes_the_drivers_when_authorized_at_their_member_price():
    station = Station()
    started = station.event("Started", 0, 0, register_wh=1000, trigger="CablePluggedIn", state="EVConnected")
    assert started == {}
    assert (station.session().id_tag, station.session().tariff_id) == ("", "T201")
    authorized = station.event("Updated", 1, 2, token="TAG-MEMBER", trigger="Authorized")
    assert authorized["idTokenInfo"] == {"status": "Accepted"}
    session = station.session()
    assert (session.id_tag, session.tariff_id) == ("TAG-MEMBER", "MEMBER")
    assert station.tags.active["TAG-MEMBER"] == {session.session_id}
    station.event("Ended", 2, 30, register_wh=11000, trigger="EVDeparted", state="Idle")
    # 10 kWh at the member's 0.20/kWh: 2.00 -> 2.50 incl. VAT; the flat fee 0.63.
    assert station.cdr_total_incl_vat() == Decimal("3.13")
    assert station.tags.active["TAG-MEMBER"] == set()


def test_the_authorization_counts_whichever_order_it_comes_in():
    station = Station()
    station.event("Updated", 1, 2, token="TAG-MEMBER", trigger="Authorized")
    station.event("Started", 0, 0, register_wh=1000, trigger="CablePluggedIn", state="EVConnected")
    assert (station.session().id_tag, station.session().tariff_id) == ("TAG-MEMBER", "MEMBER")


def test_a_changed_id_token_moves_the_session_and_the_tag_claim_to_the_new_driver():
    station = Station()
    station.event("Started", 0, 0, register_wh=1000, token="TAG-OK", trigger="Authorized")
    station.event("Updated", 1, 5, token="TAG-MEMBER", trigger="Authorized")
    assert station.session().id_tag == "TAG-MEMBER"
    assert (station.tags.active["TAG-OK"], station.tags.active["TAG-MEMBER"]) == (
        set(),
        {station.session().session_id},
    )


def test_whoever_authorizes_the_stop_does_not_take_the_session_over():
    station = Station()
    station.event("Started", 0, 0, register_wh=1000, token="TAG-OK", trigger="Authorized")
    ended = station.event("Ended", 1, 30, register_wh=2000, token="TAG-BLOCKED", trigger="StopAuthorized")
    assert ended["idTokenInfo"] == {"status": "Blocked"}
    assert station.session().id_tag == "TAG-OK"


def test_an_ended_without_a_register_ends_on_the_last_one_known():
    station = Station()
    station.event("Started", 0, 0, register_wh=1000, token="TAG-OK", trigger="Authorized")
    station.event("Updated", 1, 10, register_wh=4000)
    station.event("Ended", 2, 20, trigger="EVDeparted", state="Idle")
    session = station.session()
    assert (session.state, session.energy_wh) == ("completed", 3000)


def test_a_started_without_a_register_starts_from_the_connectors_last_one():
    station = Station()
    station.call("MeterValues", {"evseId": 1, "meterValue": [energy(7000, "Sample.Clock", minutes=-5)]})
    station.event("Started", 0, 0, token="TAG-OK", trigger="Authorized")
    station.event("Ended", 1, 1, register_wh=7500, trigger="EVDeparted", state="Idle")
    assert (station.session().state, station.session().energy_wh) == ("completed", 500)


def test_a_started_with_no_register_at_all_goes_to_review_not_to_a_bill_of_nothing():
    station = Station()
    station.event("Started", 0, 0, token="TAG-OK", trigger="Authorized")
    station.event("Ended", 1, 1, register_wh=7500, trigger="EVDeparted", state="Idle")
    assert station.session().state == "needs_review"
    assert "no energy register at the start" in station.session().review_reasons[0]


def test_meter_values_outside_a_transaction_keep_the_connectors_register_not_the_main_meters():
    station = Station()
    station.call("MeterValues", {"evseId": 2, "meterValue": [energy(123456, "Sample.Clock")]})
    station.call("MeterValues", {"evseId": 0, "meterValue": [energy(999999, "Sample.Clock")]})
    assert (station.registry.last_register(STATION, 2), station.registry.last_register(STATION, 0)) == (
        123456,
        None,
    )


def test_a_session_without_a_tariff_takes_the_hot_path_and_tells_no_cost():
    station = Station(tariff=None)
    station.event("Started", 0, 0, register_wh=1000, token="TAG-OK", trigger="Authorized")
    station.event("Updated", 1, 10, state=None, register_wh=3000)
    folded_before = station.sessions.records[station.session().session_id].event_count
    reply = station.event("Updated", 2, 20, state=None, register_wh=5000)
    assert reply == {}
    session = station.session()
    assert (session.energy_wh, session.event_count) == (4000, folded_before + 1)


def test_sampled_values_in_other_units_phases_and_the_cars_own_are_read_as_the_meter_reads_them():
    station = Station()
    sampled = [
        {"value": 12.5, "unitOfMeasure": {"unit": "Wh", "multiplier": 3}, "context": "Transaction.Begin"},
        {"value": 3.7, "measurand": "Power.Active.Import", "phase": "L1-N", "unitOfMeasure": {"unit": "kW"}},
        {"value": 3.6, "measurand": "Power.Active.Import", "phase": "L2-N", "unitOfMeasure": {"unit": "kW"}},
        {"value": 99999, "location": "EV", "unitOfMeasure": {"unit": "Wh"}},  # the car's, not billable
        {"value": 41, "measurand": "SoC", "location": "EV", "unitOfMeasure": {"unit": "Percent"}},
    ]
    payload = {
        "eventType": "Started",
        "timestamp": at(0),
        "triggerReason": "Authorized",
        "seqNo": 0,
        "transactionInfo": {"transactionId": "TX-1", "chargingState": "Charging"},
        "evse": {"id": 1},
        "idToken": {"idToken": "TAG-OK", "type": "ISO14443"},
        "meterValue": [{"timestamp": at(0), "sampledValue": sampled}],
    }
    station.call("TransactionEvent", payload)
    events = station.sessions.events(station.session().session_id)
    start = next(event for event in events if event.kind is EventKind.START)
    reading = next(event.reading for event in events if event.kind is EventKind.METER)
    assert start.meter_start_wh == 12500
    assert (reading.energy_wh, reading.power_w, reading.soc_percent) == (12500, 7300, 41)


def test_a_reading_beyond_any_meter_is_refused_and_changes_nothing():
    station = Station()
    payload = {
        "evseId": 1,
        "meterValue": [
            {"timestamp": at(0), "sampledValue": [{"value": 1, "unitOfMeasure": {"multiplier": 20}}]}
        ],
    }
    with pytest.raises(ValidationError):
        station.call("MeterValues", payload)
    assert station.registry.last_register(STATION, 1) is None


def test_a_copy_of_a_started_after_the_stop_keeps_the_start_it_first_had():
    station = Station()
    station.call("MeterValues", {"evseId": 1, "meterValue": [energy(7000, "Sample.Clock", minutes=-5)]})
    station.event("Started", 0, 0, token="TAG-OK", trigger="Authorized")
    station.event("Ended", 1, 1, register_wh=7500, trigger="EVDeparted", state="Idle")
    # The connector's register is 7500 Wh now: a start taken from it again would bill nothing.
    station.event("Started", 0, 0, token="TAG-OK", trigger="Authorized")
    starts = [e for e in station.sessions.events(station.session().session_id) if e.kind is EventKind.START]
    assert [start.meter_start_wh for start in starts] == [7000]
    assert station.session().energy_wh == 500


def test_frames_on_the_201_rule_reach_these_handlers_through_the_ingest_service():
    network = Network()
    started = transaction_event("Started", 0, 0, register_wh=1000, token="TAG-OK", trigger="Authorized")
    ended = transaction_event("Ended", 1, 30, register_wh=2000, trigger="EVDeparted", state="Idle")
    for number, payload in enumerate((started, ended)):
        frame = json.dumps([2, f"m{number}", "TransactionEvent", payload]).encode()
        network.ingest.handle(
            IngestEvent(
                charger_id="CP-1",
                client_id="CP-1",
                principal=None,
                payload=base64.b64encode(frame).decode(),
                received_at=int(T0.timestamp() * 1000),
                ocpp_version=OcppVersion.V201,
            )
        )
    replies = [json.loads(frame) for _, frame in network.channel.sent]
    assert replies[0] == [3, "m0", {"idTokenInfo": {"status": "Accepted"}}]
    assert (
        replies[1][:2] == [3, "m1"] and "totalCost" not in replies[1][2]
    )  # the network's tariff is no OCPI one
    (session,) = network.sessions.records.values()
    assert (session.charger_transaction_id, session.state, session.energy_wh) == ("TX-1", "completed", 1000)


def test_a_gap_names_the_first_missing_numbers_however_far_apart_the_stations_numbers_are():
    station = Station()
    station.event("Started", 0, 0, register_wh=1000, token="TAG-OK", trigger="Authorized")
    station.event("Updated", 2, 10, register_wh=2000)
    station.event("Ended", 10**9, 20, register_wh=3000, trigger="EVDeparted", state="Idle")
    (reason,) = station.session().review_reasons
    assert reason == (
        f"{10**9 - 2} TransactionEvent(s) between seqNo 0 and {10**9} not received (seqNo 1, 3, 4, 5, 6, ...)"
    )


def test_plain_readings_of_a_priced_session_tell_the_running_cost_every_five_minutes_of_its_clock():
    station = Station()
    station.event("Started", 0, 0, register_wh=1000, token="TAG-OK", trigger="Authorized")
    replies = [
        station.event("Updated", minute, minute, state=None, register_wh=1000 + 150 * minute)
        for minute in range(1, 12)
    ]
    assert [minute for minute, reply in enumerate(replies, start=1) if "totalCost" in reply] == [5, 10]
    assert station.session().energy_wh == 150 * 11  # the readings in between moved the session on
    # The cost at minute 10: 1.5 kWh x 0.36 = 0.54 -> 0.68 incl. VAT, the flat fee 0.63.
    assert Decimal(str(replies[9]["totalCost"])) == Decimal("1.31")


# ------------------------------------------------------------------ the price before the start
def test_authorize_tells_the_driver_the_price_their_session_will_be_billed_at():
    station = Station()
    authorize = {"idToken": {"idToken": "TAG-OK", "type": "ISO14443"}}
    assert station.call("Authorize", authorize)["idTokenInfo"]["personalMessage"] == price_message(
        STATION_PRICE
    )
    member = {"idToken": {"idToken": "TAG-MEMBER", "type": "ISO14443"}}
    assert station.call("Authorize", member)["idTokenInfo"]["personalMessage"] == price_message(MEMBER_PRICE)


def test_the_started_tells_the_price_of_the_sessions_own_tariff_and_the_cdr_bills_it():
    station = Station()
    started = station.event("Started", 0, 0, register_wh=0, token="TAG-MEMBER", trigger="Authorized")
    assert started["idTokenInfo"]["personalMessage"] == price_message(MEMBER_PRICE)
    station.event("Ended", 1, 30, register_wh=10_000, trigger="EVDeparted", state="Idle")
    # 10 kWh at the member's 0.25 incl. VAT and the flat fee: what the message said.
    assert station.cdr_total_incl_vat() == Decimal("2.50") + Decimal("0.63")


def test_no_price_is_told_without_a_tariff_or_for_a_refused_token():
    assert (
        "personalMessage"
        not in Station(tariff=None).call("Authorize", {"idToken": {"idToken": "TAG-OK", "type": "ISO14443"}})[
            "idTokenInfo"
        ]
    )
    station = Station()
    started = station.event("Started", 0, 0, register_wh=0, token="TAG-BLOCKED", trigger="Authorized")
    assert started == {"idTokenInfo": {"status": "Blocked"}}


def test_a_tariff_that_cannot_be_shown_leaves_the_authorization_as_it_is():
    reply = Station(tariff=("BROKEN", "{}")).call(
        "Authorize", {"idToken": {"idToken": "TAG-OK", "type": "ISO14443"}}
    )
    assert reply == {"idTokenInfo": {"status": "Accepted"}}


def test_the_message_keeps_to_the_schemas_512_characters_dropping_whole_lines():
    from chargenet.domain.running_cost import MAX_MESSAGE_CHARS
    from chargenet.domain.running_cost import price_message as shown
    from tests.ocpp201_station import TARIFF_JSON

    noted = json.loads(TARIFF_JSON)
    # Every kind of restriction adds a note: together they run past what a display takes.
    noted["elements"][1]["restrictions"] = {
        "start_time": "08:00",
        "end_time": "18:00",
        "min_kwh": 1,
        "min_duration": 60,
        "max_power": 11,
    }
    noted["max_price"] = {"excl_vat": 99.00, "incl_vat": 123.75}
    noted["min_price"] = {"excl_vat": 1.00, "incl_vat": 1.25}
    noted["elements"][0]["price_components"].append(
        {"type": "TIME", "price": 1.20, "vat": 25, "step_size": 60}
    )
    noted["elements"].append({"price_components": [{"type": "ENERGY", "price": 0.50, "step_size": 1}]})
    full = "; ".join(describe(price_display(load_tariff(json.dumps(noted)), T0, "UTC")))
    message = shown(json.dumps(noted), T0, "UTC")
    assert len(full) > MAX_MESSAGE_CHARS >= len(message)
    # The prices and limits first: the notes are what goes.
    assert full.startswith(message + "; ") and "maximum 123.75 EUR per session incl. VAT" in message


# ------------------------------------------------------------------ the connector's status
def connector_status(station: Station) -> tuple[str, datetime]:
    (status,) = [s for s in station.registry.connectors(STATION) if s.connector_id == 1]
    return status.status, status.status_at


def test_a_transaction_makes_its_occupied_connector_busy_and_its_end_makes_it_free_again():
    station = Station()
    station.status("Occupied", 0)  # plugged in: the driver may pay
    assert availability(station) is Availability.AVAILABLE
    station.event("Started", 0, 1, register_wh=0, trigger="RemoteStart", state="EVConnected")
    assert (connector_status(station), availability(station)) == (
        ("EVConnected", at_minute(1)),
        Availability.BUSY,
    )
    station.event("Updated", 1, 2, trigger="ChargingStateChanged", state="Charging")
    assert connector_status(station) == ("Charging", at_minute(2))
    station.event("Updated", 2, 10, register_wh=5000)  # the same state: nothing written
    assert connector_status(station) == ("Charging", at_minute(2))
    station.event("Ended", 3, 20, register_wh=6000, trigger="StopAuthorized", state="SuspendedEV")
    assert (connector_status(station), availability(station)) == (
        ("Finishing", at_minute(20)),
        Availability.BUSY,
    )
    station.status("Available", 25)
    assert availability(station) is Availability.AVAILABLE


def test_a_transaction_waiting_for_its_car_keeps_the_connector_until_it_ends():
    station = Station()
    station.event("Started", 0, 0, trigger="Authorized", state="Idle", token="TAG-OK")
    assert connector_status(station)[0] == "Idle" and availability(station) is Availability.BUSY
    station.event("Ended", 1, 2, trigger="EVConnectTimeout", state="Idle", stopped_reason="Timeout")
    assert connector_status(station) == ("Available", at_minute(2))


def test_a_started_without_a_charging_state_still_takes_the_connector():
    station = Station()
    station.status("Occupied", 0)
    station.event("Started", 0, 0, register_wh=0, trigger="CablePluggedIn", state=None)
    assert availability(station) is Availability.BUSY


def test_an_older_event_does_not_overwrite_a_newer_status():
    station = Station()
    station.event("Started", 0, 0, register_wh=0, trigger="Authorized", token="TAG-OK")
    station.status("Available", 30)  # the car left
    station.event("Updated", 1, 20, trigger="ChargingStateChanged", state="SuspendedEV", offline=True)
    assert connector_status(station) == ("Available", at_minute(30))


def test_a_charging_state_never_ends_a_faulted_or_unavailable_connectors_outage():
    for outage in ("Faulted", "Unavailable"):
        station = Station()
        station.event("Started", 0, 0, register_wh=0, trigger="Authorized", token="TAG-OK")
        station.status(outage, 5)
        station.event("Updated", 1, 6, trigger="ChargingStateChanged", state="SuspendedEVSE")
        station.event("Ended", 2, 7, trigger="EVDeparted", state="Idle")
        assert connector_status(station) == (outage, at_minute(5))


def availability(station: Station) -> Availability:
    charger = station.registry.get(STATION).model_copy(update={"online": True})
    return connector_availability(charger, station.registry.connectors(STATION), 1)


def at_minute(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


# ------------------------------------------------------------------ an Ended before its Started
def test_an_ended_before_its_started_is_resolved_when_the_started_completes_the_session():
    station = Station()
    ended = transaction_event(
        "Ended", 1, 30, register_wh=2000, trigger="EVDeparted", state="Idle", stopped_reason="EVDisconnected"
    )
    station.call("TransactionEvent", ended)
    station.call("TransactionEvent", ended)  # a copy: still one to review
    assert [(charger, payload["seqNo"]) for charger, _, payload in station.sessions.orphans] == [(STATION, 1)]
    assert station.sessions.session_id_of_transaction(STATION, "TX-1") is not None  # numbered, no session
    station.event("Started", 0, 0, register_wh=1000, token="TAG-OK", trigger="Authorized")
    assert station.session().state == "completed" and station.sessions.orphans == []


def test_the_lookup_of_a_transactions_session_numbers_nothing():
    station = Station()
    assert station.sessions.session_id_of_transaction(STATION, "TX-1") is None
    assert station.sessions.start_keys == {}
    station.event("Started", 0, 0, register_wh=1000, token="TAG-OK", trigger="Authorized")
    assert station.sessions.session_id_of_transaction(STATION, "TX-1") == station.session().session_id
    assert station.sessions.session_id_of_transaction("OTHER", "TX-1") is None


def test_an_ended_processed_while_its_started_opens_the_session_is_folded_in_not_orphaned():
    """Two invocations at once: the Started has numbered the transaction, the Ended runs whole
    (no session yet) before the Started opens it. One of the two reads sees the other's write."""
    station = Station()
    ended = transaction_event(
        "Ended", 1, 30, register_wh=2000, trigger="EVDeparted", state="Idle", stopped_reason="EVDisconnected"
    )
    opening = station.sessions.open

    def open_after_the_ended_ran(*args, **kwargs):
        station.sessions.open = opening  # once
        station.call("TransactionEvent", ended)
        return opening(*args, **kwargs)

    station.sessions.open = open_after_the_ended_ran
    station.event("Started", 0, 0, register_wh=1000, token="TAG-OK", trigger="Authorized")
    session = station.session()
    assert (session.state, session.energy_wh) == ("completed", 1000)
    assert station.sessions.orphans == []


def test_an_updated_of_a_running_session_stores_its_reading_once_and_reads_the_session_once():
    station = Station(tariff=None)
    station.event("Started", 0, 0, register_wh=1000, token="TAG-OK", trigger="Authorized")
    calls: list[str] = []
    append, get = station.sessions.append, station.sessions.get

    def counted_append(*args, **kwargs):
        calls.append("append")
        return append(*args, **kwargs)

    def counted_get(*args, **kwargs):
        calls.append("get")
        return get(*args, **kwargs)

    station.sessions.append, station.sessions.get = counted_append, counted_get
    station.event("Updated", 1, 1, register_wh=1200, state=None)  # a plain periodic reading
    assert sorted(calls) == ["append", "get"]
