"""In-memory certificates for the security unit tests: CAs, intermediates and leaves.

Unlike ``tests/cluster/pki.py`` (files for a real control plane), everything here stays in
memory and every field a test wants to get wrong can be set: validity window, key usage,
CA flag, issuer.
"""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# Real time: handshakes check validity against the wall clock, not a parameter.
NOW = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
DAY = datetime.timedelta(days=1)


@dataclass(frozen=True)
class Issued:
    """A certificate and its private key."""

    certificate: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    @property
    def key_pem(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def write(
        self, directory: Path, stem: str, *, chain: Sequence[Issued] = ()
    ) -> tuple[Path, Path]:
        """Write ``<stem>.crt`` (this certificate, then ``chain``) and ``<stem>.key``."""
        directory.mkdir(parents=True, exist_ok=True)
        cert_path, key_path = directory / f"{stem}.crt", directory / f"{stem}.key"
        cert_path.write_bytes(self.pem + b"".join(c.pem for c in chain))
        key_path.write_bytes(self.key_pem)
        return cert_path, key_path


def _name(common_name: str, organizations: Sequence[str] = ()) -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in organizations]
    attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(attributes)


def make_ca(
    common_name: str,
    *,
    issuer: Issued | None = None,
    not_before: datetime.datetime = NOW - 30 * DAY,
    not_after: datetime.datetime = NOW + 365 * DAY,
) -> Issued:
    """A CA; self-signed unless ``issuer`` is given (then an intermediate)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = _name(common_name)
    signer_key = issuer.key if issuer else key
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.certificate.subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    )
    return Issued(builder.sign(signer_key, hashes.SHA256()), key)


def make_leaf(
    issuer: Issued,
    common_name: str,
    *,
    organizations: Sequence[str] = (),
    client: bool = True,
    server: bool = False,
    eku: bool = True,
    dns_names: Sequence[str] = (),
    ip_addresses: Sequence[str] = (),
    not_before: datetime.datetime = NOW - DAY,
    not_after: datetime.datetime = NOW + 30 * DAY,
) -> Issued:
    """A leaf certificate signed by ``issuer``."""
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name, organizations))
        .issuer_name(issuer.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
    )
    if eku:
        usages = []
        if client:
            usages.append(ExtendedKeyUsageOID.CLIENT_AUTH)
        if server:
            usages.append(ExtendedKeyUsageOID.SERVER_AUTH)
        builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    names: list[x509.GeneralName] = [x509.DNSName(d) for d in dns_names]
    names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ip_addresses]
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return Issued(builder.sign(issuer.key, hashes.SHA256()), key)


def client_context(trust: Path, client: tuple[Path, Path] | None = None) -> ssl.SSLContext:
    """A TLS client context trusting ``trust`` and presenting ``client`` if given."""
    context = ssl.create_default_context(cafile=str(trust))
    if client is not None:
        context.load_cert_chain(str(client[0]), str(client[1]))
    return context
