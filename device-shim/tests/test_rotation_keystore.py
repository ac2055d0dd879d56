"""The key store's pending slot and the renewal threshold: the pure parts of certificate rotation."""

import stat
from datetime import UTC, datetime, timedelta

import pytest

from chargenet_local.pki import LocalCA
from chargenet_shim.keystore import FileKeyStore
from chargenet_shim.rotation import renewal_due


@pytest.fixture
def installed(tmp_path):
    ca = LocalCA(tmp_path / "ca").ensure()
    store = FileKeyStore(tmp_path / "CP-001")
    issued = ca.sign_csr(store.create_csr("CP-001"), expected_cn="CP-001")
    store.install_certificate(issued.pem, ca.cert_path.read_text())
    return ca, store


def test_a_pending_key_is_made_beside_the_current_one(installed):
    _, store = installed
    current_key = store.key_path.read_bytes()

    store.create_pending_csr("CP-001")

    assert stat.S_IMODE(store.pending_key_path.stat().st_mode) == 0o600
    assert store.pending_key_path.read_bytes() != current_key
    assert store.key_path.read_bytes() == current_key  # kept until the new certificate is confirmed


def test_promote_swaps_in_the_pending_pair_and_returns_the_old_certificate(installed):
    ca, store = installed
    old_cert = store.cert_path.read_text()
    issued = ca.sign_csr(store.create_pending_csr("CP-001"), expected_cn="CP-001")
    store.install_pending_certificate(issued.pem, ca.cert_path.read_text())
    pending_key = store.pending_key_path.read_bytes()

    assert store.promote_pending() == old_cert

    assert store.cert_path.read_text() == issued.pem
    assert store.key_path.read_bytes() == pending_key
    assert not store.pending_key_path.exists() and not store.pending_cert_path.exists()


def test_a_pending_certificate_for_another_key_is_refused(installed, tmp_path):
    ca, store = installed
    store.create_pending_csr("CP-001")
    # Signed for the current key, not the pending one.
    issued = ca.sign_csr(store.create_csr("CP-001"), expected_cn="CP-001")

    with pytest.raises(ValueError, match="not for this key store"):
        store.install_pending_certificate(issued.pem, ca.cert_path.read_text())
    with pytest.raises(ValueError, match="no pending certificate"):
        store.promote_pending()


def test_a_new_rotation_discards_the_leftovers_of_an_aborted_one(installed):
    _, store = installed
    store.create_pending_csr("CP-001")
    leftover = store.pending_key_path.read_bytes()

    store.create_pending_csr("CP-001")

    assert store.pending_key_path.read_bytes() != leftover


def test_renewal_is_due_within_the_threshold(installed, tmp_path):
    ca, store = installed
    short = ca.sign_csr(
        store.create_csr("CP-001"), expected_cn="CP-001", not_after=datetime.now(UTC) + timedelta(days=10)
    )
    path = tmp_path / "short.pem"
    path.write_text(short.pem)
    now = datetime.now(UTC)

    assert renewal_due(path, now)  # default 30 days
    assert not renewal_due(path, now, renew_before=timedelta(days=5))
    assert not renewal_due(store.cert_path, now)  # a year left


def test_the_ca_can_issue_an_already_expired_certificate_for_tests(installed):
    ca, store = installed
    past = datetime.now(UTC) - timedelta(days=1)
    issued = ca.sign_csr(store.create_csr("CP-001"), expected_cn="CP-001", not_after=past)
    assert abs(issued.not_after - past) < timedelta(seconds=1)
