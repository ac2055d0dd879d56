import stat

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from chargenet_local.pki import LocalCA
from chargenet_shim.keystore import FileKeyStore


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_create_csr_makes_a_private_p256_key_and_names_the_charger(tmp_path):
    store = FileKeyStore(tmp_path / "CP-001")

    csr = x509.load_pem_x509_csr(store.create_csr("CP-001").encode())

    assert _mode(store.key_path) == 0o600
    assert _mode(tmp_path / "CP-001") == 0o700
    assert csr.is_signature_valid
    assert csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "CP-001"
    assert csr.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "chargenet"
    public_key = csr.public_key()
    assert isinstance(public_key, ec.EllipticCurvePublicKey)
    assert public_key.curve.name == "secp256r1"


def test_the_key_is_reused_and_never_returned(tmp_path):
    store = FileKeyStore(tmp_path / "CP-001")
    first = x509.load_pem_x509_csr(store.create_csr("CP-001").encode())
    key_pem = store.key_path.read_bytes()

    second = x509.load_pem_x509_csr(store.create_csr("CP-001").encode())

    assert store.key_path.read_bytes() == key_pem
    assert first.public_key() == second.public_key()
    assert "PRIVATE KEY" not in store.create_csr("CP-001")


def test_install_certificate_signed_for_this_key(tmp_path):
    ca = LocalCA(tmp_path / "ca").ensure()
    store = FileKeyStore(tmp_path / "CP-001")
    issued = ca.sign_csr(store.create_csr("CP-001"), expected_cn="CP-001")

    store.install_certificate(issued.pem, ca.cert_path.read_text())

    assert store.cert_path.read_text() == issued.pem
    assert store.ca_path.read_text() == ca.cert_path.read_text()


def test_install_rejects_a_certificate_for_another_key(tmp_path):
    ca = LocalCA(tmp_path / "ca").ensure()
    store = FileKeyStore(tmp_path / "CP-001")
    store.create_csr("CP-001")
    other = FileKeyStore(tmp_path / "elsewhere")
    foreign = ca.sign_csr(other.create_csr("CP-001"), expected_cn="CP-001")

    with pytest.raises(ValueError, match="not for this key store"):
        store.install_certificate(foreign.pem, ca.cert_path.read_text())

    assert not store.cert_path.exists()
    assert not store.ca_path.exists()


def test_install_before_any_key_exists_is_refused(tmp_path):
    ca = LocalCA(tmp_path / "ca").ensure()
    foreign = ca.sign_csr(FileKeyStore(tmp_path / "other").create_csr("CP-001"), expected_cn="CP-001")

    with pytest.raises(ValueError, match="no private key"):
        FileKeyStore(tmp_path / "CP-001").install_certificate(foreign.pem, ca.cert_path.read_text())
