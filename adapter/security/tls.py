"""HTTPS for the adapter: serving certificates, the server's TLS settings, and the client's
certificate handed to the app.

Three jobs:

- **Serving certificate.** Either the files the user gives (``--tls-cert-file``,
  ``--tls-private-key-file``), or, when none are given, a self-signed pair generated into a
  certificate directory at start, as kube-apiserver's ``--cert-dir`` does: a throwaway CA
  (``ca.crt``, which is what an APIService ``caBundle`` needs) and a serving certificate it
  signs (``apiserver.crt``/``apiserver.key``) for the Service's DNS names, ``localhost``
  and ``127.0.0.1``. A generated pair is reused while it is valid for more than 30 days and
  covers the wanted names. Keys are ECDSA P-256. The standard library cannot create keys or
  certificates, hence the ``cryptography`` package.
- **Server TLS settings** (:func:`server_ssl_context`): TLS 1.2 or newer, forward-secret
  AEAD cipher suites only, no compression or renegotiation, HTTP/1.1 by ALPN. Client
  certificates are *requested* (``CERT_OPTIONAL``) and verified against the client CAs the
  authenticator trusts (the front-proxy CA from the ``extension-apiserver-authentication``
  ConfigMap, and its client CA), so that the aggregator's proxy certificate is recognised;
  a client without a certificate still connects and may use a bearer token.
- **The client's certificate in the ASGI scope.** uvicorn does not put the peer
  certificate in the scope. :class:`PeerCertificateProtocol` is uvicorn's h11 protocol
  with one addition: when a TLS connection is made (after the handshake, so the client's
  certificate is verified), it records the certificate and adds it to the scope of every
  request on that connection as the ASGI TLS extension, ``scope["extensions"]["tls"]``
  with ``client_cert_chain`` (PEM strings, client certificate first), ``client_cert_name``,
  ``tls_version`` and ``cipher_suite``. :func:`client_certificate_chain` reads it back.
"""

from __future__ import annotations

import datetime
import functools
import ipaddress
import os
import ssl
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from uvicorn.protocols.http.h11_impl import H11Protocol

from kubepulse.errors import KubepulseError

__all__ = [
    "CA_FILE_NAME",
    "CERT_FILE_NAME",
    "DEFAULT_CIPHER_SUITES",
    "KEY_FILE_NAME",
    "PeerCertificateProtocol",
    "ServingCertificate",
    "TLSSetupError",
    "add_trusted_client_cas",
    "client_certificate_chain",
    "ensure_serving_certificate",
    "generate_self_signed_certificate",
    "parse_pem_certificates",
    "server_ssl_context",
    "serving_dns_names",
    "tls_extension",
]

CERT_FILE_NAME = "apiserver.crt"
KEY_FILE_NAME = "apiserver.key"
CA_FILE_NAME = "ca.crt"

# TLS 1.2 suites: ECDHE key exchange (forward secrecy) and AEAD ciphers only, the same set
# Go's crypto/tls, and so kube-apiserver, prefers. TLS 1.3 suites are all AEAD already
# and are left at OpenSSL's defaults.
DEFAULT_CIPHER_SUITES: tuple[str, ...] = (
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-CHACHA20-POLY1305",
    "ECDHE-RSA-CHACHA20-POLY1305",
)

_TLS_VERSIONS = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}
# IANA numbers for the ASGI TLS extension's ``tls_version``.
_TLS_VERSION_NUMBERS = {"TLSv1.2": 0x0303, "TLSv1.3": 0x0304}
# A generated certificate lives a year, like kube-apiserver's self-signed one, and is
# replaced at start once fewer than 30 days are left.
_GENERATED_VALIDITY = datetime.timedelta(days=365)
_RENEW_BEFORE = datetime.timedelta(days=30)
# ssl.Certificate.public_bytes(format) on Python >= 3.13 takes _ssl's ENCODING_PEM (1).
_ENCODING_PEM: int = getattr(ssl, "ENCODING_PEM", 1)
# Valid from a little in the past: a clock that is slightly behind must not reject it.
_BACKDATE = datetime.timedelta(hours=1)


class TLSSetupError(KubepulseError):
    """The serving certificate or the TLS settings cannot be used; the message says why."""


@dataclass(frozen=True)
class ServingCertificate:
    """The certificate and key the adapter serves with.

    Attributes:
        cert_file: PEM certificate chain, serving certificate first.
        key_file: PEM private key.
        ca_file: for a generated pair, the CA that signed it (the APIService ``caBundle``);
            ``None`` for files the user gave.
        generated: whether the adapter generated the pair (now or on an earlier start).
        not_after: when the serving certificate expires.
        dns_names: the DNS names it is valid for.
        ip_addresses: the IP addresses it is valid for.
    """

    cert_file: Path
    key_file: Path
    ca_file: Path | None
    generated: bool
    not_after: datetime.datetime
    dns_names: tuple[str, ...]
    ip_addresses: tuple[str, ...]


def serving_dns_names(
    service: str, namespace: str, cluster_domain: str = "cluster.local"
) -> tuple[str, ...]:
    """The names kube-apiserver's aggregator and in-cluster clients use to reach a Service.

    ``serving_dns_names("kubepulse-adapter", "kubepulse")`` gives ``kubepulse-adapter``,
    ``kubepulse-adapter.kubepulse``, ``kubepulse-adapter.kubepulse.svc`` (the name the
    aggregator verifies), ``kubepulse-adapter.kubepulse.svc.cluster.local`` and
    ``localhost``.
    """
    names = [service, f"{service}.{namespace}", f"{service}.{namespace}.svc"]
    if cluster_domain:
        names.append(f"{service}.{namespace}.svc.{cluster_domain.strip('.')}")
    names.append("localhost")
    return tuple(dict.fromkeys(names))


def generate_self_signed_certificate(
    cert_dir: Path,
    *,
    dns_names: Sequence[str],
    ip_addresses: Sequence[str] = ("127.0.0.1",),
    now: datetime.datetime | None = None,
    validity: datetime.timedelta = _GENERATED_VALIDITY,
) -> ServingCertificate:
    """Generate a CA and a serving certificate it signs into ``cert_dir``.

    Writes ``ca.crt``, ``apiserver.crt`` (serving certificate, then the CA) and
    ``apiserver.key`` (PKCS#8, mode 0600). The CA's key is never written: nothing else can
    be signed with it. Files are replaced atomically, so a concurrent reader sees the old
    pair or the new one, never half of each.

    Raises:
        TLSSetupError: no names were given, an IP address is malformed, or the directory
            cannot be written.
    """
    if not dns_names and not ip_addresses:
        raise TLSSetupError("a serving certificate needs at least one DNS name or IP address")
    ips = _parse_ips(ip_addresses)
    issued_at = (now or datetime.datetime.now(datetime.timezone.utc)) - _BACKDATE
    expires_at = issued_at + _BACKDATE + validity
    common_name = dns_names[0] if dns_names else str(ips[0])

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_subject = x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, f"{common_name}-ca@{int(issued_at.timestamp())}")]
    )
    ca_certificate = (
        x509.CertificateBuilder()
        .subject_name(ca_subject)
        .issuer_name(ca_subject)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(issued_at)
        .not_valid_after(expires_at)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )

    serving_key = ec.generate_private_key(ec.SECP256R1())
    alt_names: list[x509.GeneralName] = [x509.DNSName(name) for name in dns_names]
    alt_names += [x509.IPAddress(ip) for ip in ips]
    serving_certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca_subject)
        .public_key(serving_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(issued_at)
        .not_valid_after(expires_at)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    ca_pem = ca_certificate.public_bytes(serialization.Encoding.PEM)
    chain_pem = serving_certificate.public_bytes(serialization.Encoding.PEM) + ca_pem
    key_pem = serving_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    try:
        cert_dir.mkdir(parents=True, exist_ok=True)
        # The key first: a reader that sees the new certificate must find its key.
        _write_atomically(cert_dir / KEY_FILE_NAME, key_pem, mode=0o600)
        _write_atomically(cert_dir / CERT_FILE_NAME, chain_pem, mode=0o644)
        _write_atomically(cert_dir / CA_FILE_NAME, ca_pem, mode=0o644)
    except OSError as exc:
        raise TLSSetupError(
            f"cannot write the generated serving certificate into {cert_dir}: {exc}; make "
            "the certificate directory (--cert-dir) writable, for example an emptyDir "
            "volume, or give --tls-cert-file and --tls-private-key-file"
        ) from exc
    return ServingCertificate(
        cert_file=cert_dir / CERT_FILE_NAME,
        key_file=cert_dir / KEY_FILE_NAME,
        ca_file=cert_dir / CA_FILE_NAME,
        generated=True,
        not_after=expires_at,
        dns_names=tuple(dns_names),
        ip_addresses=tuple(str(ip) for ip in ips),
    )


def ensure_serving_certificate(
    *,
    cert_file: Path | None,
    key_file: Path | None,
    cert_dir: Path,
    dns_names: Sequence[str],
    ip_addresses: Sequence[str] = ("127.0.0.1",),
    now: datetime.datetime | None = None,
) -> ServingCertificate:
    """The serving certificate to use: the given files, else a generated pair in ``cert_dir``.

    Given files are checked (readable, the key matches the certificate) but used as they
    are, whatever names they carry. Without files, a pair generated earlier into
    ``cert_dir`` is reused when it is still valid for 30 days and covers every wanted name
    and address; otherwise a new one is generated.

    Raises:
        TLSSetupError: only one of the two files was given, a file cannot be read, the key
            does not match the certificate, or ``cert_dir`` cannot be written.
    """
    moment = now or datetime.datetime.now(datetime.timezone.utc)
    if (cert_file is None) != (key_file is None):
        raise TLSSetupError(
            "give both --tls-cert-file and --tls-private-key-file, or neither (to generate a "
            "self-signed certificate into --cert-dir)"
        )
    if cert_file is not None and key_file is not None:
        return _load_given_pair(cert_file, key_file)
    existing = _reusable_generated_pair(cert_dir, dns_names, ip_addresses, moment)
    if existing is not None:
        return existing
    return generate_self_signed_certificate(
        cert_dir, dns_names=dns_names, ip_addresses=ip_addresses, now=moment
    )


def server_ssl_context(
    certificate: ServingCertificate,
    *,
    client_ca_pem: bytes = b"",
    minimum_version: str = "1.2",
    cipher_suites: Sequence[str] = DEFAULT_CIPHER_SUITES,
) -> ssl.SSLContext:
    """The server's TLS settings: the serving pair, modern protocols, optional client certs.

    ``client_ca_pem`` holds the CAs whose client certificates the handshake accepts (the
    front-proxy CA and the cluster's client CA); more can be added later with
    :func:`add_trusted_client_cas`. A client that presents a certificate those CAs did not
    sign fails the handshake; a client that presents none connects.

    Raises:
        TLSSetupError: unknown minimum version, no usable cipher suite, or a bad CA bundle.
    """
    version = _TLS_VERSIONS.get(minimum_version)
    if version is None:
        raise TLSSetupError(
            f"unknown minimum TLS version {minimum_version!r}; use one of "
            f"{', '.join(sorted(_TLS_VERSIONS))}"
        )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = version
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE
    context.options |= ssl.OP_NO_RENEGOTIATION
    try:
        context.set_ciphers(":".join(cipher_suites))
    except ssl.SSLError as exc:
        raise TLSSetupError(
            f"none of the cipher suites {', '.join(cipher_suites)} is available in "
            f"{ssl.OPENSSL_VERSION}; give OpenSSL names such as "
            f"{DEFAULT_CIPHER_SUITES[0]}"
        ) from exc
    try:
        context.load_cert_chain(str(certificate.cert_file), str(certificate.key_file))
    except (OSError, ssl.SSLError) as exc:
        raise TLSSetupError(
            f"cannot load the serving certificate {certificate.cert_file} with key "
            f"{certificate.key_file}: {exc}"
        ) from exc
    # The adapter speaks HTTP/1.1 only; saying so spares clients a failed h2 attempt.
    context.set_alpn_protocols(["http/1.1"])
    context.verify_mode = ssl.CERT_OPTIONAL
    if client_ca_pem:
        add_trusted_client_cas(context, client_ca_pem)
    return context


def add_trusted_client_cas(context: ssl.SSLContext, ca_pem: bytes) -> None:
    """Let the handshake accept client certificates signed by the CAs in ``ca_pem``.

    OpenSSL can add trust anchors to a live context but never remove them. That is safe
    here because the handshake only proves the client holds the certificate's key; the
    authenticator then checks the chain again against the CAs the ConfigMap lists now, so a
    CA removed from the ConfigMap no longer authenticates anyone.

    Raises:
        TLSSetupError: ``ca_pem`` holds no certificate or is malformed.
    """
    try:
        context.load_verify_locations(cadata=ca_pem.decode("ascii"))
    except (ssl.SSLError, UnicodeDecodeError, ValueError) as exc:
        raise TLSSetupError(f"cannot load the client CA bundle: {exc}") from exc


# ------------------------------------------------------- the peer certificate in the scope


class PeerCertificateProtocol(H11Protocol):
    """uvicorn's h11 HTTP protocol that also puts the TLS connection's details in the scope.

    Use it as ``uvicorn.Config(http=PeerCertificateProtocol, ...)``. uvicorn creates one
    protocol object per connection and calls :meth:`connection_made` once the TLS
    handshake has finished, so the client's certificate is known and verified. The
    protocol then routes every request of the connection through a thin wrapper that adds
    ``scope["extensions"]["tls"]`` (see :func:`tls_extension`) before calling the app.
    Plain-HTTP connections get no TLS extension, as the ASGI specification says.
    """

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        ssl_object = transport.get_extra_info("ssl_object")
        if ssl_object is not None:
            self.app = _WithTLSExtension(self.app, tls_extension(ssl_object))


class _WithTLSExtension:
    """Adds one connection's TLS extension to the scope of each of its requests."""

    def __init__(self, app: Any, tls: Mapping[str, Any]) -> None:
        self._app = app
        self._tls = dict(tls)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope.get("type") in ("http", "websocket"):
            extensions = dict(scope.get("extensions") or {})
            # A fresh dict per request: an app that edits it cannot affect the next one.
            extensions["tls"] = dict(self._tls)
            scope["extensions"] = extensions
        await self._app(scope, receive, send)


def tls_extension(ssl_object: ssl.SSLObject) -> dict[str, Any]:
    """The ASGI TLS extension for one connection, from its finished handshake.

    Keys as in the ASGI specification: ``client_cert_chain`` (PEM strings, the client's
    certificate first, then what it sent to chain it; only the first on Python < 3.13,
    whose ``ssl`` module exposes no more), ``client_cert_name`` (RFC 4514 subject or
    ``None``), ``client_cert_error`` (always ``None``: a certificate that fails
    verification fails the handshake), ``server_cert`` (``None``: ``ssl`` does not expose
    it), ``tls_version`` and ``cipher_suite`` (IANA numbers).
    """
    chain: list[str] = []
    unverified_chain = getattr(ssl_object, "get_unverified_chain", None)
    if callable(unverified_chain):  # Python >= 3.13
        chain = [
            certificate.public_bytes(_ENCODING_PEM) for certificate in unverified_chain() or ()
        ]
    else:
        der = ssl_object.getpeercert(binary_form=True)
        if der:
            chain = [ssl.DER_cert_to_PEM_cert(der)]
    name = None
    if chain:
        name = _parse_pem_certificate(chain[0]).subject.rfc4514_string()
    cipher = ssl_object.cipher()
    return {
        "server_cert": None,
        "client_cert_chain": chain,
        "client_cert_name": name,
        "client_cert_error": None,
        "tls_version": _TLS_VERSION_NUMBERS.get(ssl_object.version() or ""),
        "cipher_suite": _cipher_suite_number(ssl_object.context, cipher[0]) if cipher else None,
    }


def client_certificate_chain(scope: Mapping[str, Any]) -> tuple[x509.Certificate, ...]:
    """The client's certificate chain from the scope's TLS extension; empty without one.

    The first certificate is the client's. Parsed certificates are cached by their PEM
    text, so the requests of one connection parse it once.
    """
    tls = (scope.get("extensions") or {}).get("tls")
    if not isinstance(tls, Mapping):
        return ()
    chain = tls.get("client_cert_chain") or ()
    certificates: list[x509.Certificate] = []
    for pem in chain:
        if not isinstance(pem, str):
            return ()
        try:
            certificates.append(_parse_pem_certificate(pem))
        except ValueError:
            return ()
    return tuple(certificates)


def parse_pem_certificates(pem: bytes | str, *, what: str) -> tuple[x509.Certificate, ...]:
    """Every certificate in a PEM bundle, in order.

    Raises:
        TLSSetupError: the bundle holds no certificate or one cannot be parsed; the message
            names ``what`` the bundle is.
    """
    data = pem.encode("ascii", "replace") if isinstance(pem, str) else pem
    try:
        certificates = tuple(x509.load_pem_x509_certificates(data))
    except ValueError as exc:
        raise TLSSetupError(f"{what}: not a PEM certificate bundle ({exc})") from exc
    if not certificates:
        raise TLSSetupError(f"{what}: holds no certificate")
    return certificates


@functools.lru_cache(maxsize=512)
def _parse_pem_certificate(pem: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem.encode("ascii"))


@functools.lru_cache(maxsize=64)
def _cipher_numbers(context: ssl.SSLContext) -> dict[str, int]:
    # get_ciphers() ids carry OpenSSL's 0x0300 prefix; the low 16 bits are IANA's number.
    return {cipher["name"]: cipher["id"] & 0xFFFF for cipher in context.get_ciphers()}


def _cipher_suite_number(context: ssl.SSLContext, name: str) -> int | None:
    return _cipher_numbers(context).get(name)


# ------------------------------------------------------------------------------ helpers


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _parse_ips(addresses: Iterable[str]) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    parsed = []
    for address in addresses:
        try:
            parsed.append(ipaddress.ip_address(address))
        except ValueError as exc:
            raise TLSSetupError(f"{address!r} is not an IP address for the certificate") from exc
    return parsed


def _write_atomically(path: Path, data: bytes, *, mode: int) -> None:
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(descriptor, mode)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _load_given_pair(cert_file: Path, key_file: Path) -> ServingCertificate:
    try:
        chain_pem = cert_file.read_bytes()
        key_pem = key_file.read_bytes()
    except OSError as exc:
        raise TLSSetupError(f"cannot read the serving certificate or key: {exc}") from exc
    chain = parse_pem_certificates(chain_pem, what=f"--tls-cert-file {cert_file}")
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError) as exc:
        raise TLSSetupError(
            f"--tls-private-key-file {key_file}: not an unencrypted PEM private key ({exc})"
        ) from exc
    if _public_der(key.public_key()) != _public_der(chain[0].public_key()):
        raise TLSSetupError(
            f"the private key {key_file} does not belong to the certificate {cert_file} "
            "(the first certificate in the file must be the serving certificate)"
        )
    dns_names, ip_addresses = _subject_alternative_names(chain[0])
    return ServingCertificate(
        cert_file=cert_file,
        key_file=key_file,
        ca_file=None,
        generated=False,
        not_after=chain[0].not_valid_after_utc,
        dns_names=dns_names,
        ip_addresses=ip_addresses,
    )


def _reusable_generated_pair(
    cert_dir: Path,
    dns_names: Sequence[str],
    ip_addresses: Sequence[str],
    now: datetime.datetime,
) -> ServingCertificate | None:
    cert_file, key_file, ca_file = (
        cert_dir / CERT_FILE_NAME,
        cert_dir / KEY_FILE_NAME,
        cert_dir / CA_FILE_NAME,
    )
    if not (cert_file.is_file() and key_file.is_file() and ca_file.is_file()):
        return None
    try:
        pair = _load_given_pair(cert_file, key_file)
        ca = parse_pem_certificates(ca_file.read_bytes(), what=str(ca_file))[0]
        leaf = parse_pem_certificates(cert_file.read_bytes(), what=str(cert_file))[0]
        leaf.verify_directly_issued_by(ca)
    except (TLSSetupError, OSError, ValueError, TypeError, InvalidSignature):
        return None  # unreadable or inconsistent: generate a fresh pair over it
    wanted_ips = {str(ipaddress.ip_address(ip)) for ip in ip_addresses}
    if not set(dns_names) <= set(pair.dns_names) or not wanted_ips <= set(pair.ip_addresses):
        return None
    if pair.not_after - now < _RENEW_BEFORE:
        return None
    return ServingCertificate(
        cert_file=cert_file,
        key_file=key_file,
        ca_file=ca_file,
        generated=True,
        not_after=pair.not_after,
        dns_names=pair.dns_names,
        ip_addresses=pair.ip_addresses,
    )


def _subject_alternative_names(
    certificate: x509.Certificate,
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    try:
        extension = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return (), ()
    names = extension.value
    dns_names = tuple(names.get_values_for_type(x509.DNSName))
    ips = tuple(str(ip) for ip in names.get_values_for_type(x509.IPAddress))
    return dns_names, ips


def _public_der(public_key: Any) -> bytes:
    der: bytes = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return der
