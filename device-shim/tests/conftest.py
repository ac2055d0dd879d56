"""Session-wide local stack (mosquitto over mTLS + a backend client) and charger provisioning."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from shim_stack import (
    HOST,
    INGEST_RULE,
    CloudBackend,
    RunningBroker,
    cloud_backend,
    free_port,
    mosquitto,
    new_charger_id,
)

from chargenet_local.pki import LocalCA
from chargenet_shim.credentials import ChargerCredentials, hash_password
from chargenet_shim.keystore import FileKeyStore


@pytest.fixture(scope="session")
def ca(tmp_path_factory: pytest.TempPathFactory) -> LocalCA:
    return LocalCA(tmp_path_factory.mktemp("ca")).ensure()


@pytest.fixture(scope="session")
def broker(ca: LocalCA, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningBroker]:
    with mosquitto(ca, tmp_path_factory.mktemp("broker"), free_port()) as running:
        yield running


@pytest.fixture(scope="session")
def backend(broker: RunningBroker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[CloudBackend]:
    with cloud_backend(broker, tmp_path_factory.mktemp("backend")) as cloud:
        yield cloud


Provision = Callable[..., ChargerCredentials]


@pytest.fixture
def provision(broker: RunningBroker, tmp_path: Path) -> Provision:
    """Provision a charger as the product does: key on the device, CSR signed by the CA, charger.json."""

    def make(
        charger_id: str | None = None, *, password: str | None = None, ca: LocalCA | None = None
    ) -> ChargerCredentials:
        charger_id = charger_id or new_charger_id()
        signer = ca or broker.ca
        folder = tmp_path / "chargers" / charger_id
        keystore = FileKeyStore(folder)
        issued = signer.sign_csr(keystore.create_csr(charger_id), expected_cn=charger_id)
        keystore.install_certificate(issued.pem, broker.ca.cert_path.read_text())
        credentials = ChargerCredentials(
            charger_id=charger_id,
            mqtt_host=HOST,
            mqtt_port=broker.port,
            ingest_rule=INGEST_RULE,
            ca_path=keystore.ca_path,
            cert_path=keystore.cert_path,
            key_path=keystore.key_path,
            password_hash=hash_password(password) if password else None,
        )
        credentials.save(folder)
        return credentials

    return make


@pytest.fixture
def credentials_dir(tmp_path: Path) -> Path:
    return tmp_path / "chargers"
