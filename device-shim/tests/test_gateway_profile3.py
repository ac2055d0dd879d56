"""Security profile 3: chargers prove who they are with a client certificate, over real TLS WebSockets.

The client is the `ocpp` package's ChargePoint on a `websockets` connection; the CA is the
local stack's (the one that signs the chargers' MQTT certificates), so a charger can use
its own certificate towards the gateway too.
"""

import asyncio
import contextlib
import datetime as dt
import json
import logging
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from ocpp.routing import on
from ocpp.v16 import ChargePoint, call, call_result
from ocpp.v16.enums import Action, ResetStatus
from shim_stack import HOST
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidMessage, InvalidStatus

from chargenet_local.pki import ORGANIZATION, LocalCA, key_pem
from chargenet_shim.cli import main
from chargenet_shim.gateway import Gateway, GatewayConfig, serve

pytestmark = pytest.mark.timeout(30)

NOW = dt.datetime.now(dt.UTC)


class SiteCharger(ChargePoint):
    @on(Action.reset)
    def on_reset(self, type: str) -> call_result.Reset:
        return call_result.Reset(status=ResetStatus.accepted)


@pytest.fixture
def server_tls(broker, tmp_path) -> tuple[Path, Path]:
    return broker.ca.issue_with_key("gateway", server=True, folder=tmp_path / "gateway-tls")


@contextlib.asynccontextmanager
async def running(
    credentials_dir: Path, ca: LocalCA, server_tls: tuple[Path, Path]
) -> AsyncIterator[Gateway]:
    cert, key = server_tls
    config = GatewayConfig(
        port=0,
        credentials_dir=credentials_dir,
        security_profile=3,
        tls_cert=cert,
        tls_key=key,
        client_ca=ca.cert_path,
        operator_org=ORGANIZATION,
    )
    gateway = await serve(config)
    try:
        yield gateway
    finally:
        await gateway.close()


def client_cert(
    ca: LocalCA,
    folder: Path,
    common_name: str,
    *,
    organization: str = ORGANIZATION,
    not_after: dt.datetime = NOW + dt.timedelta(days=30),
    usage: x509.ObjectIdentifier = ExtendedKeyUsageOID.CLIENT_AUTH,
    extra_names: tuple[x509.NameAttribute, ...] = (),
) -> tuple[Path, Path]:
    """A certificate signed by `ca` with exactly the subject, validity and usage a test needs."""
    ca_cert = x509.load_pem_x509_certificate(ca.cert_path.read_bytes())
    ca_key = serialization.load_pem_private_key(ca.key_path.read_bytes(), password=None)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            *extra_names,
        ]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(min(NOW, not_after) - dt.timedelta(days=1))
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    folder.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = folder / "client.pem", folder / "client.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key_pem(key))
    return cert_path, key_path


def client_tls(ca: LocalCA, cert: tuple[Path, Path] | None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=ca.cert_path)
    if cert is not None:
        context.load_cert_chain(*cert)
    return context


def _ws(gateway: Gateway, charger_id: str, tls: ssl.SSLContext) -> connect:
    return connect(
        f"wss://{HOST}:{gateway.port}/ocpp/{charger_id}", subprotocols=["ocpp1.6"], ssl=tls, open_timeout=5
    )


async def _refusal(connecting: connect) -> int | str:
    """The HTTP status of a refused upgrade, or "tls" when the TLS handshake itself failed."""
    try:
        async with connecting:
            pass
    except InvalidStatus as refused:
        return refused.response.status_code
    # TLS 1.3 clients finish their handshake before the server checks their certificate,
    # so its refusal arrives as an alert (SSLError), a reset, or an EOF where HTTP was due.
    except (ssl.SSLError, ConnectionError, InvalidMessage):
        return "tls"
    raise AssertionError("the connection was accepted")


def test_a_charger_with_its_own_certificate_boots_through_the_gateway(
    provision, backend, broker, credentials_dir, server_tls
):
    creds = provision()

    async def scenario():
        tls = client_tls(broker.ca, (creds.cert_path, creds.key_path))
        async with (
            running(credentials_dir, broker.ca, server_tls) as gateway,
            _ws(gateway, creds.charger_id, tls) as websocket,
        ):
            charger = SiteCharger(creds.charger_id, websocket, response_timeout=5)
            receiver = asyncio.create_task(charger.start())
            try:
                boot = await charger.call(
                    call.BootNotification(charge_point_model="W3", charge_point_vendor="ACME")
                )
                reset = json.dumps([2, "p3-1", "Reset", {"type": "Soft"}])
                await asyncio.to_thread(backend.send, creds.charger_id, reset)
                answer = await asyncio.to_thread(backend.wait_for, creds.charger_id, lambda f: '"p3-1"' in f)
            finally:
                receiver.cancel()
            return boot, json.loads(answer)

    boot, answer = asyncio.run(scenario())

    assert boot.status == "Accepted"
    assert answer == [3, "p3-1", {"status": "Accepted"}]


def test_a_certificate_for_another_charger_or_operator_or_with_two_names_is_403(
    provision, broker, credentials_dir, server_tls, tmp_path, caplog
):
    creds, neighbour = provision(), provision()
    foreign_org = client_cert(broker.ca, tmp_path / "evil", creds.charger_id, organization="other-operator")
    # Which CN would count? Neither: an ambiguous subject is refused.
    two_names = client_cert(
        broker.ca,
        tmp_path / "two",
        neighbour.charger_id,
        extra_names=(x509.NameAttribute(NameOID.COMMON_NAME, creds.charger_id),),
    )

    async def scenario() -> list[int | str]:
        async with running(credentials_dir, broker.ca, server_tls) as gateway:
            return [
                await _refusal(
                    _ws(
                        gateway,
                        creds.charger_id,
                        client_tls(broker.ca, (neighbour.cert_path, neighbour.key_path)),
                    )
                ),
                await _refusal(_ws(gateway, creds.charger_id, client_tls(broker.ca, foreign_org))),
                await _refusal(_ws(gateway, creds.charger_id, client_tls(broker.ca, two_names))),
            ]

    with caplog.at_level(logging.WARNING, logger="chargenet_shim.auth"):
        assert asyncio.run(scenario()) == [403, 403, 403]

    refusals = [r.getMessage() for r in caplog.records]
    assert f"CN='{neighbour.charger_id}', O='{ORGANIZATION}'" in refusals[0]
    assert "O='other-operator'" in refusals[1]
    assert "CN=None" in refusals[2]


def test_an_unknown_charger_with_a_matching_certificate_is_404(broker, credentials_dir, server_tls, tmp_path):
    credentials_dir.mkdir(parents=True)
    stranger = client_cert(broker.ca, tmp_path / "stranger", "CP-stranger")

    async def scenario() -> int | str:
        async with running(credentials_dir, broker.ca, server_tls) as gateway:
            return await _refusal(_ws(gateway, "CP-stranger", client_tls(broker.ca, stranger)))

    assert asyncio.run(scenario()) == 404


def test_certificates_the_tls_handshake_must_refuse(
    provision, broker, credentials_dir, server_tls, tmp_path, caplog
):
    creds = provision()
    unknown_ca = LocalCA(tmp_path / "unknown-ca").ensure()
    # Each case, and why OpenSSL refuses it on the gateway's side.
    cases = {
        "no certificate": (None, "peer did not return a certificate"),
        # Same CA name as the real one (LocalCA names them all alike): only the signature differs.
        "unknown CA": (
            client_cert(unknown_ca, tmp_path / "unknown", creds.charger_id),
            "certificate verify failed",
        ),
        "expired": (
            client_cert(
                broker.ca, tmp_path / "expired", creds.charger_id, not_after=NOW - dt.timedelta(hours=1)
            ),
            "certificate has expired",
        ),
        "server certificate": (
            client_cert(
                broker.ca, tmp_path / "server", creds.charger_id, usage=ExtendedKeyUsageOID.SERVER_AUTH
            ),
            "unsuitable certificate purpose",
        ),
    }

    async def scenario() -> dict[str, int | str]:
        async with running(credentials_dir, broker.ca, server_tls) as gateway:
            return {
                case: await _refusal(_ws(gateway, creds.charger_id, client_tls(broker.ca, cert)))
                for case, (cert, _) in cases.items()
            }

    # asyncio tells why a server-side handshake failed only in debug mode.
    with caplog.at_level(logging.DEBUG, logger="asyncio"):
        refusals = asyncio.run(scenario(), debug=True)

    assert refusals == dict.fromkeys(cases, "tls")
    reasons = [
        str(r.exc_info[1]) for r in caplog.records if "SSL handshake failed" in r.getMessage() and r.exc_info
    ]
    assert len(reasons) == len(cases)
    for reason, (_, expected) in zip(reasons, cases.values(), strict=True):
        assert expected in reason
    assert not [r for r in caplog.records if r.name == "chargenet_shim.auth"], "no request got past TLS"


def test_profile_3_needs_the_client_ca_and_the_operator(credentials_dir, server_tls, broker):
    cert, key = server_tls
    with pytest.raises(ValueError, match="profile 3 needs client_ca and operator_org"):
        GatewayConfig(port=0, credentials_dir=credentials_dir, security_profile=3, tls_cert=cert, tls_key=key)
    with pytest.raises(ValueError, match="profile 3 needs tls_cert"):
        GatewayConfig(
            port=0,
            credentials_dir=credentials_dir,
            security_profile=3,
            client_ca=broker.ca.cert_path,
            operator_org=ORGANIZATION,
        )
    with pytest.raises(ValueError, match="are for security profile 3"):
        GatewayConfig(
            port=0,
            credentials_dir=credentials_dir,
            security_profile=2,
            tls_cert=cert,
            tls_key=key,
            client_ca=broker.ca.cert_path,
        )


def test_the_cli_refuses_profile_3_without_a_ca(server_tls, tmp_path, capsys):
    cert, key = server_tls
    args = ["gateway", "--credentials-dir", str(tmp_path), "--port", "0", "--security-profile", "3"]

    assert main([*args, "--tls-cert", str(cert), "--tls-key", str(key), "--operator-org", "x"]) == 2
    assert "profile 3 needs client_ca and operator_org" in capsys.readouterr().err
