"""Certificate rotation on the device side: new key, new certificate, reconnect, then retire the old.

The order is the safety property. The old certificate stays valid until the new one has
connected and been confirmed, so a charger can never end up with no working identity:
a refused or lost new certificate leaves it on the old one, and a rotation can be retried.
The operator side is reached through an issuer: over the charger's own OCPP link
(`ocpp_issuer.OcppIssuer`, what a charger in the field has: a `LinkIssuer`, coroutines), or with
operator credentials (`chargenet charger rotate`'s LocalIssuer: a `CertificateIssuer` whose
blocking calls run in a worker thread).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from cryptography import x509

from chargenet_shim.keystore import FileKeyStore
from chargenet_shim.link import ChargerLink

LOG = logging.getLogger(__name__)

# A month before expiry leaves room for a charger that is offline for weeks.
DEFAULT_RENEW_BEFORE = timedelta(days=30)
# IoT's CreateCertificateFromCsr certificates are valid until 2049: expiry alone would never rotate
# them, so a key in the field would be used for decades. A year bounds how long a stolen key is useful.
DEFAULT_ROTATE_AFTER = timedelta(days=365)
DEFAULT_CHECK_EVERY_S = 6 * 3600.0


class MaximumAge:
    """The oldest a certificate may get (from its notBefore) before it is rotated, whatever its
    expiry; None: no limit. One shim, one policy: set once at start for every charger the process
    runs (`chargenet-shim simulate|gateway --rotate-after-days`), read at each renewal check."""

    rotate_after: timedelta | None = DEFAULT_ROTATE_AFTER


@dataclass(frozen=True)
class SignedCertificate:
    certificate_pem: str
    ca_pem: str


class CertificateIssuer(Protocol):
    """The operator side of a rotation."""

    def sign(self, charger_id: str, csr_pem: str) -> SignedCertificate:
        """Sign the CSR and register the certificate for the charger (active, policy attached)."""
        ...

    def confirm(self, charger_id: str, new_certificate_pem: str, old_certificate_pem: str) -> None:
        """The new certificate has connected: deactivate the old one and record the new expiry."""
        ...

    def abandon(self, charger_id: str, certificate_pem: str) -> None:
        """The new certificate never connected (its key is discarded): deactivate it."""
        ...


class LinkIssuer(Protocol):
    """The same steps as CertificateIssuer, asked over the charger's own link (coroutines)."""

    async def sign(self, charger_id: str, csr_pem: str) -> SignedCertificate: ...

    async def confirm(self, charger_id: str, new_certificate_pem: str, old_certificate_pem: str) -> None: ...

    async def abandon(self, charger_id: str, certificate_pem: str) -> None: ...


Issuer = CertificateIssuer | LinkIssuer


async def _ask(step: Callable[..., Any], *args: str) -> Any:
    """A coroutine step on this loop (it uses the link); a blocking one (boto3) in a worker thread."""
    if inspect.iscoroutinefunction(step):
        return await step(*args)
    return await asyncio.to_thread(step, *args)


def not_after(cert_path: Path) -> datetime:
    return x509.load_pem_x509_certificate(cert_path.read_bytes()).not_valid_after_utc


def rotation_due(
    not_before: datetime,
    not_after: datetime,
    now: datetime,
    *,
    renew_before: timedelta,
    rotate_after: timedelta | None,
) -> bool:
    """Near its expiry, or older than the maximum age (None: no maximum)."""
    if not_after - now <= renew_before:
        return True
    return rotate_after is not None and now - not_before >= rotate_after


def renewal_due(
    cert_path: Path,
    now: datetime,
    renew_before: timedelta = DEFAULT_RENEW_BEFORE,
    rotate_after: timedelta | None = DEFAULT_ROTATE_AFTER,
) -> bool:
    certificate = x509.load_pem_x509_certificate(cert_path.read_bytes())
    return rotation_due(
        certificate.not_valid_before_utc,
        certificate.not_valid_after_utc,
        now,
        renew_before=renew_before,
        rotate_after=rotate_after,
    )


async def rotate(link: ChargerLink, keystore: FileKeyStore, issuer: Issuer) -> datetime:
    """Rotate the connected link's certificate; returns the new certificate's expiry.

    Raises (and keeps the old certificate in use) when signing or the new connection fails.
    """
    current = link.credentials
    csr = keystore.create_pending_csr(current.charger_id)
    signed: SignedCertificate | None = None
    try:
        signed = await _ask(issuer.sign, current.charger_id, csr)
        keystore.install_pending_certificate(signed.certificate_pem, signed.ca_pem)
        pending = current.model_copy(
            update={"cert_path": keystore.pending_cert_path, "key_path": keystore.pending_key_path}
        )
        await link.switch_credentials(pending)
    except Exception:
        keystore.discard_pending()
        if signed is not None:
            await _ask(issuer.abandon, current.charger_id, signed.certificate_pem)
        raise
    old_pem = keystore.promote_pending()
    # Same file names as before, now holding the new pair: what any later connection reads.
    link.credentials = current
    await _ask(issuer.confirm, current.charger_id, signed.certificate_pem, old_pem)
    LOG.info("%s: certificate rotated", current.charger_id)
    return not_after(current.cert_path)


async def renew_before_expiry(
    link: ChargerLink,
    keystore: FileKeyStore,
    issuer: Issuer,
    *,
    renew_before: timedelta = DEFAULT_RENEW_BEFORE,
    check_every_s: float = DEFAULT_CHECK_EVERY_S,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> None:
    """Run beside a charger's link (simulate, gateway): rotate when expiry comes within the threshold
    or the certificate is older than MaximumAge.rotate_after.

    A failed attempt is logged and retried at the next check; the old certificate keeps working.
    """
    while True:
        due = renewal_due(link.credentials.cert_path, now(), renew_before, MaximumAge.rotate_after)
        if due and link.online:
            try:
                await rotate(link, keystore, issuer)
            except Exception as exc:
                LOG.warning(
                    "%s: certificate rotation failed, retrying later: %s", link.credentials.charger_id, exc
                )
        await asyncio.sleep(check_every_s)
