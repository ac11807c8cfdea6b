"""Certificates for a throwaway control plane that listens on loopback only.

Test-only code. It uses the ``cryptography`` package, because generating a
dozen keys and certificates with typed Python objects is both faster and
easier to get right than driving the ``openssl`` CLI and parsing its output.

Three separate CAs mirror what kubeadm sets up, so that the tests exercise the
same trust boundaries a real cluster has:

- the *serving* CA signs every TLS server certificate (kube-apiserver,
  controller-manager, scheduler, kwok's kubelet-like endpoint, metrics-server);
  it is what a client (or an APIService ``caBundle``) trusts;
- the *client* CA signs client certificates; kube-apiserver trusts it through
  ``--client-ca-file`` and maps CN to user name and O to groups;
- the *front-proxy* CA signs the aggregator's client certificate; extension API
  servers trust it through the ``extension-apiserver-authentication`` ConfigMap.

Keys are ECDSA P-256: every component accepts them and they take microseconds
to generate, where RSA-2048 takes tens of milliseconds each.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = [
    "CertificateAuthority",
    "ClusterPKI",
    "KeyPair",
    "generate_cluster_pki",
    "new_certificate_authority",
]

# Long enough for someone who keeps `python -m tests.cluster up` running for a
# week, short enough that a leaked key is worthless soon.
VALIDITY = datetime.timedelta(days=7)
# Certificates are valid from a little in the past so that a clock that moves
# backwards between generation and first use does not fail the handshake.
BACKDATE = datetime.timedelta(hours=1)


@dataclass(frozen=True)
class KeyPair:
    """A PEM certificate file and the PEM (PKCS#8) private key file beside it."""

    cert_path: Path
    key_path: Path


@dataclass(frozen=True)
class CertificateAuthority:
    """A self-signed CA whose key stays in memory to issue more certificates."""

    name: str
    cert_path: Path
    key_path: Path
    certificate: x509.Certificate
    private_key: ec.EllipticCurvePrivateKey

    def pem(self) -> bytes:
        """The CA certificate in PEM form, as an APIService ``caBundle`` wants it."""
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    def issue(
        self,
        directory: Path,
        file_stem: str,
        common_name: str,
        *,
        organizations: Sequence[str] = (),
        dns_names: Sequence[str] = (),
        ip_addresses: Sequence[str] = (),
        server: bool = False,
        client: bool = False,
    ) -> KeyPair:
        """Issue a leaf certificate and write ``<file_stem>.crt`` / ``.key`` into ``directory``.

        ``common_name`` becomes the Kubernetes user name and ``organizations``
        the groups when the certificate authenticates a client.
        """
        if not (server or client):
            raise ValueError(f"certificate {file_stem!r}: ask for server=True, client=True or both")
        if server and not (dns_names or ip_addresses):
            raise ValueError(f"server certificate {file_stem!r} needs at least one DNS name or IP")
        key = ec.generate_private_key(ec.SECP256R1())
        name_attributes = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in organizations]
        name_attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
        usages = []
        if server:
            usages.append(ExtendedKeyUsageOID.SERVER_AUTH)
        if client:
            usages.append(ExtendedKeyUsageOID.CLIENT_AUTH)
        now = datetime.datetime.now(datetime.timezone.utc)
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name(name_attributes))
            .issuer_name(self.certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - BACKDATE)
            .not_valid_after(now + VALIDITY)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.private_key.public_key()),
                critical=False,
            )
        )
        alt_names: list[x509.GeneralName] = [x509.DNSName(d) for d in dns_names]
        alt_names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ip_addresses]
        if alt_names:
            builder = builder.add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        certificate = builder.sign(self.private_key, hashes.SHA256())
        return _write_pair(directory, file_stem, certificate, key)


def new_certificate_authority(
    directory: Path, file_stem: str, common_name: str
) -> CertificateAuthority:
    """Create a self-signed CA and write ``<file_stem>.crt`` / ``.key`` into ``directory``."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
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
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    pair = _write_pair(directory, file_stem, certificate, key)
    return CertificateAuthority(
        name=common_name,
        cert_path=pair.cert_path,
        key_path=pair.key_path,
        certificate=certificate,
        private_key=key,
    )


def _write_pair(
    directory: Path,
    file_stem: str,
    certificate: x509.Certificate,
    key: ec.EllipticCurvePrivateKey,
) -> KeyPair:
    directory.mkdir(parents=True, exist_ok=True)
    cert_path = directory / f"{file_stem}.crt"
    key_path = directory / f"{file_stem}.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    _write_private(key_path, _private_pem(key))
    return KeyPair(cert_path=cert_path, key_path=key_path)


def _private_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write_private(path: Path, data: bytes) -> None:
    # Created 0600 from the start: never world-readable, not even briefly.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


@dataclass(frozen=True)
class ClusterPKI:
    """Every certificate and key one control plane needs, as files on disk."""

    directory: Path
    serving_ca: CertificateAuthority
    client_ca: CertificateAuthority
    front_proxy_ca: CertificateAuthority
    apiserver_serving: KeyPair
    """kube-apiserver's serving certificate (loopback, kubernetes.default.svc, service IP)."""
    loopback_serving: KeyPair
    """Serving certificate for controller-manager and scheduler health ports (127.0.0.1)."""
    kwok_serving: KeyPair
    """kwok's kubelet-like endpoint, which metrics-server scrapes at the node's InternalIP."""
    metrics_server_serving: KeyPair
    """metrics-server; the aggregator dials it as ``metrics-server.kube-system.svc``."""
    admin: KeyPair
    """``kubepulse-admin`` in ``system:masters``: what tests and people use."""
    controller_manager: KeyPair
    scheduler: KeyPair
    kwok_client: KeyPair
    metrics_server_client: KeyPair
    front_proxy_client: KeyPair
    """The aggregator's identity towards extension API servers (CN front-proxy-client)."""
    service_account_public_key: Path
    service_account_private_key: Path


def generate_cluster_pki(directory: Path, *, service_ip: str = "10.0.0.1") -> ClusterPKI:
    """Generate the CAs, leaf certificates and service-account keys under ``directory``.

    ``service_ip`` is the first address of the service CIDR: the ClusterIP of
    the ``kubernetes`` Service, which in-cluster clients dial.
    """
    directory.mkdir(parents=True, exist_ok=True)
    serving_ca = new_certificate_authority(directory, "serving-ca", "kubepulse-e2e-serving-ca")
    client_ca = new_certificate_authority(directory, "client-ca", "kubepulse-e2e-client-ca")
    front_proxy_ca = new_certificate_authority(
        directory, "front-proxy-ca", "kubepulse-e2e-front-proxy-ca"
    )
    loopback_names = ("localhost",)
    loopback_ips = ("127.0.0.1",)

    apiserver_serving = serving_ca.issue(
        directory,
        "apiserver",
        "kube-apiserver",
        dns_names=(
            *loopback_names,
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
            "kubernetes.default.svc.cluster.local",
        ),
        ip_addresses=(*loopback_ips, service_ip),
        server=True,
    )
    loopback_serving = serving_ca.issue(
        directory,
        "loopback-serving",
        "kubepulse-e2e-loopback",
        dns_names=loopback_names,
        ip_addresses=loopback_ips,
        server=True,
    )
    kwok_serving = serving_ca.issue(
        directory,
        "kwok-serving",
        "kwok",
        dns_names=loopback_names,
        ip_addresses=loopback_ips,
        server=True,
    )
    metrics_server_serving = serving_ca.issue(
        directory,
        "metrics-server-serving",
        "metrics-server",
        dns_names=(
            *loopback_names,
            "metrics-server",
            "metrics-server.kube-system",
            "metrics-server.kube-system.svc",
        ),
        ip_addresses=loopback_ips,
        server=True,
    )

    admin = client_ca.issue(
        directory, "admin", "kubepulse-admin", organizations=("system:masters",), client=True
    )
    # These user names are the ones the bootstrap RBAC policy already binds.
    controller_manager = client_ca.issue(
        directory, "controller-manager", "system:kube-controller-manager", client=True
    )
    scheduler = client_ca.issue(directory, "scheduler", "system:kube-scheduler", client=True)
    # kwok and metrics-server get their own users and the RBAC written in controlplane.py.
    kwok_client = client_ca.issue(directory, "kwok-client", "kubepulse-e2e:kwok", client=True)
    metrics_server_client = client_ca.issue(
        directory, "metrics-server-client", "kubepulse-e2e:metrics-server", client=True
    )
    front_proxy_client = front_proxy_ca.issue(
        directory, "front-proxy-client", "front-proxy-client", client=True
    )

    sa_key = ec.generate_private_key(ec.SECP256R1())
    sa_private = directory / "service-account.key"
    sa_public = directory / "service-account.pub"
    _write_private(sa_private, _private_pem(sa_key))
    sa_public.write_bytes(
        sa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )

    return ClusterPKI(
        directory=directory,
        serving_ca=serving_ca,
        client_ca=client_ca,
        front_proxy_ca=front_proxy_ca,
        apiserver_serving=apiserver_serving,
        loopback_serving=loopback_serving,
        kwok_serving=kwok_serving,
        metrics_server_serving=metrics_server_serving,
        admin=admin,
        controller_manager=controller_manager,
        scheduler=scheduler,
        kwok_client=kwok_client,
        metrics_server_client=metrics_server_client,
        front_proxy_client=front_proxy_client,
        service_account_public_key=sa_public,
        service_account_private_key=sa_private,
    )
