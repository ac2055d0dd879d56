"""The DynamoDB adapters against moto server: conditional writes keep state right under reordering."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from chargenet.adapters.dynamodb import RECENT_BOOTS_KEPT, DynamoPendingCalls
from chargenet.domain.models import ConnectorStatus, PresenceEvent
from tests.integration.conftest import registry

T0 = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)


def presence(charger_id: str, kind: str, version: int) -> PresenceEvent:
    return PresenceEvent(
        client_id=charger_id,
        event_type=kind,
        timestamp=int(T0.timestamp() * 1000) + version,
        version_number=version,
        disconnect_reason="CONNECTION_LOST" if kind == "disconnected" else None,
    )


def test_lifecycle_events_apply_in_version_order_whatever_the_delivery_order(stack):
    charger_id = "CP-presence"
    assert registry().register(charger_id, "S", T0)
    assert registry().apply_presence(presence(charger_id, "connected", 5))
    assert registry().apply_presence(presence(charger_id, "disconnected", 7))
    assert not registry().apply_presence(presence(charger_id, "connected", 6))  # late
    assert not registry().apply_presence(presence(charger_id, "disconnected", 7))  # repeat
    charger = registry().get(charger_id)
    assert (charger.online, charger.presence_version, charger.disconnect_reason) == (
        False,
        7,
        "CONNECTION_LOST",
    )


def test_lifecycle_event_for_an_unregistered_client_changes_nothing(stack):
    assert not registry().apply_presence(presence("CP-never-registered", "connected", 1))
    assert registry().get("CP-never-registered") is None


def test_register_refuses_a_taken_id(stack):
    assert registry().register("CP-taken", "S1", T0)
    assert not registry().register("CP-taken", "S2", T0)
    assert registry().get("CP-taken").site_id == "S1"


def test_connector_status_keeps_the_newest_by_charger_time(stack):
    registry().register("CP-status", "S", T0)

    def status(name: str, at: datetime) -> ConnectorStatus:
        return ConnectorStatus(
            charger_id="CP-status",
            connector_id=1,
            status=name,
            error_code="NoError",
            status_at=at,
            received_at=T0 + timedelta(hours=1),
        )

    assert registry().record_connector_status(status("Charging", T0 + timedelta(minutes=5)))
    assert not registry().record_connector_status(status("Preparing", T0))
    [stored] = registry().connectors("CP-status")
    assert stored.status == "Charging"


def test_last_seen_never_moves_backwards(stack):
    registry().register("CP-seen", "S", T0)
    registry().record_seen("CP-seen", T0 + timedelta(minutes=2))
    registry().record_seen("CP-seen", T0 + timedelta(minutes=1))
    assert registry().get("CP-seen").last_seen_at == T0 + timedelta(minutes=2)


def test_pending_call_is_resolved_once(stack):
    calls = DynamoPendingCalls()
    calls.add("CP-x", "m-1", "Reset", {"type": "Soft"}, T0)
    assert calls.action_of("CP-x", "m-1") == "Reset"
    assert calls.resolve("CP-x", "m-1", {"result": {"status": "Accepted"}}, T0)
    assert not calls.resolve("CP-x", "m-1", {"result": {"status": "Rejected"}}, T0)
    assert not calls.resolve("CP-x", "unknown", {}, T0)


def test_boots_are_kept_for_reboot_loop_detection_the_latest_ten(stack):
    from chargenet.domain.models import BootNotification

    registry().register("CP-boots", "S", T0, certificate_not_after=T0 + timedelta(days=365))
    boot = BootNotification(charge_point_vendor="V", charge_point_model="M")
    times = [T0 + timedelta(minutes=m) for m in range(RECENT_BOOTS_KEPT + 3)]
    for at in times:
        charger = registry().record_boot("CP-boots", boot, at)
    assert charger.recent_boots == times[-RECENT_BOOTS_KEPT:]
    stored = registry().get("CP-boots")
    assert stored.recent_boots == times[-RECENT_BOOTS_KEPT:]
    assert stored.certificate_not_after == T0 + timedelta(days=365)
    # A boot that reports a serial, then one that leaves it out: the known serial stays.
    registry().record_boot("CP-boots", boot.model_copy(update={"charge_point_serial_number": "SN-7"}), at)
    assert registry().record_boot("CP-boots", boot, at).serial_number == "SN-7"
    assert registry().get("CP-boots").serial_number == "SN-7"


def test_listing_the_fleet_skips_a_corrupt_record_instead_of_failing(stack):
    import boto3

    registry().register("CP-fine", "S", T0)
    boto3.client("dynamodb").put_item(
        TableName=stack.tables["ChargersTable"],
        Item={"charger_id": {"S": "CP-corrupt"}, "sk": {"S": "charger"}, "registered_at": {"S": "garbage"}},
    )
    ids = [c.charger_id for c in registry().list()]
    assert "CP-fine" in ids and "CP-corrupt" not in ids
