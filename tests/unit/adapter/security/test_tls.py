"""Serving certificates, the server's TLS settings, and the client certificate in the scope.

Handshakes run in memory (``ssl.MemoryBIO``): real OpenSSL on both sides, no sockets.
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import ssl
import stat
import warnings
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from adapter.security.tls import (
    CA_FILE_NAME,
    CERT_FILE_NAME,
    KEY_FILE_NAME,
    ServingCertificate,
    TLSSetupError,
    add_trusted_client_cas,
    client_certificate_chain,
    ensure_serving_certificate,
    generate_self_signed_certificate,
    server_ssl_context,
    serving_dns_names,
    tls_extension,
)
from tests.unit.adapter.security.certs import NOW, make_ca, make_leaf

NAMES = serving_dns_names("kubepulse-adapter", "monitoring")


def handshake(
    server_context: ssl.SSLContext, client_context: ssl.SSLContext, server_hostname: str
) -> ssl.SSLObject:
    """Run a TLS handshake in memory; return the server side, or raise its SSLError."""
    server_in, server_out = ssl.MemoryBIO(), ssl.MemoryBIO()
    client_in, client_out = ssl.MemoryBIO(), ssl.MemoryBIO()
    server = server_context.wrap_bio(server_in, server_out, server_side=True)
    client = client_context.wrap_bio(client_in, client_out, server_hostname=server_hostname)
    done = {"client": False, "server": False}
    for _ in range(50):
        for name, side in (("client", client), ("server", server)):
            if done[name]:
                continue
            try:
                side.do_handshake()
                done[name] = True
            except ssl.SSLWantReadError:
                pass
        client_in.write(server_out.read())
        server_in.write(client_out.read())
        if all(done.values()):
            # TLS 1.3: the server judges the client certificate after the client is done;
            # a read makes any refusal visible on the server side.
            with contextlib.suppress(ssl.SSLWantReadError):
                server.read(1)
            return server
    raise AssertionError("handshake did not finish")


def client_context(trust: Path, pair: tuple[Path, Path] | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(trust))
    if pair is not None:
        context.load_cert_chain(*map(str, pair))
    return context


# ---------------------------------------------------------------------- generation


def test_service_dns_names_cover_what_the_aggregator_and_pods_dial() -> None:
    assert NAMES == (
        "kubepulse-adapter",
        "kubepulse-adapter.monitoring",
        "kubepulse-adapter.monitoring.svc",
        "kubepulse-adapter.monitoring.svc.cluster.local",
        "localhost",
    )
    assert serving_dns_names("a", "b", "corp.example.")[-2] == "a.b.svc.corp.example"


def test_a_generated_certificate_has_the_names_validity_and_key_it_should(tmp_path: Path) -> None:
    serving = generate_self_signed_certificate(
        tmp_path, dns_names=NAMES, ip_addresses=("127.0.0.1", "::1"), now=NOW
    )
    assert serving.generated
    assert (serving.cert_file.name, serving.key_file.name) == (CERT_FILE_NAME, KEY_FILE_NAME)
    assert serving.ca_file == tmp_path / CA_FILE_NAME

    chain = x509.load_pem_x509_certificates(serving.cert_file.read_bytes())
    leaf, ca = chain
    assert ca.public_bytes(serialization.Encoding.PEM) == serving.ca_file.read_bytes()
    names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == list(NAMES)
    assert names.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("::1"),
    ]
    # A year, valid from an hour before "now" so a clock slightly behind accepts it.
    assert leaf.not_valid_before_utc == NOW - datetime.timedelta(hours=1)
    assert leaf.not_valid_after_utc == NOW + datetime.timedelta(days=365)
    assert serving.not_after == leaf.not_valid_after_utc

    key = serialization.load_pem_private_key(serving.key_file.read_bytes(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    assert key.curve.name == "secp256r1"
    assert isinstance(leaf.public_key(), ec.EllipticCurvePublicKey)

    assert leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    assert leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value == (
        x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH])
    )
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    leaf.verify_directly_issued_by(ca)
    assert stat.S_IMODE(serving.key_file.stat().st_mode) == 0o600


def test_a_client_trusting_ca_crt_accepts_the_generated_certificate(tmp_path: Path) -> None:
    serving = generate_self_signed_certificate(tmp_path, dns_names=NAMES)
    assert serving.ca_file is not None
    server = server_ssl_context(serving)
    for hostname in ("kubepulse-adapter.monitoring.svc", "localhost", "127.0.0.1"):
        handshake(server, client_context(serving.ca_file), hostname)
    with pytest.raises(ssl.SSLCertVerificationError, match="match"):
        handshake(server, client_context(serving.ca_file), "other.monitoring.svc")


def test_generation_needs_a_name_and_valid_addresses(tmp_path: Path) -> None:
    with pytest.raises(TLSSetupError, match="at least one DNS name or IP"):
        generate_self_signed_certificate(tmp_path, dns_names=(), ip_addresses=())
    with pytest.raises(TLSSetupError, match="not an IP address"):
        generate_self_signed_certificate(tmp_path, dns_names=NAMES, ip_addresses=("300.1.1.1",))


def test_an_unwritable_cert_dir_says_what_to_do(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(TLSSetupError, match=r"--cert-dir.*emptyDir"):
        generate_self_signed_certificate(blocker / "certs", dns_names=NAMES)


def _ensure(cert_dir: Path, now: datetime.datetime = NOW, **kwargs: object) -> ServingCertificate:
    arguments: dict[str, object] = {
        "cert_file": None,
        "key_file": None,
        "cert_dir": cert_dir,
        "dns_names": NAMES,
        "now": now,
    }
    arguments.update(kwargs)
    return ensure_serving_certificate(**arguments)  # type: ignore[arg-type]


def test_a_generated_pair_is_reused_while_it_fits(tmp_path: Path) -> None:
    first = _ensure(tmp_path)
    second = _ensure(tmp_path, now=NOW + datetime.timedelta(days=300))
    assert second.cert_file.read_bytes() == first.cert_file.read_bytes()
    assert second.generated
    assert second.ca_file == first.ca_file


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"now": NOW + datetime.timedelta(days=340)}, "fewer than 30 days left"),
        ({"dns_names": (*NAMES, "metrics.example.com")}, "a new DNS name"),
        ({"ip_addresses": ("127.0.0.1", "10.0.0.7")}, "a new IP address"),
    ],
)
def test_a_generated_pair_is_replaced_when_it_no_longer_fits(
    tmp_path: Path, change: dict[str, object], why: str
) -> None:
    first = _ensure(tmp_path)
    old = first.cert_file.read_bytes()
    second = _ensure(tmp_path, **change)
    assert second.cert_file.read_bytes() != old, why


def test_a_corrupt_generated_pair_is_replaced(tmp_path: Path) -> None:
    _ensure(tmp_path)
    (tmp_path / KEY_FILE_NAME).write_text("garbage")
    replaced = _ensure(tmp_path)
    serialization.load_pem_private_key(replaced.key_file.read_bytes(), password=None)


def test_given_files_are_used_as_they_are(tmp_path: Path) -> None:
    ca = make_ca("company-ca")
    leaf = make_leaf(ca, "adapter", client=False, server=True, dns_names=("adapter.example",))
    cert_file, key_file = leaf.write(tmp_path, "given", chain=(ca,))
    serving = _ensure(tmp_path / "unused", cert_file=cert_file, key_file=key_file)
    assert not serving.generated
    assert serving.ca_file is None
    assert serving.dns_names == ("adapter.example",)
    assert not (tmp_path / "unused").exists()


def test_given_files_must_come_in_pairs_and_match(tmp_path: Path) -> None:
    ca = make_ca("company-ca")
    one = make_leaf(ca, "one", server=True)
    other = make_leaf(ca, "other", server=True)
    cert_file, _ = one.write(tmp_path, "one")
    _, other_key = other.write(tmp_path, "other")
    with pytest.raises(TLSSetupError, match="both --tls-cert-file and --tls-private-key-file"):
        _ensure(tmp_path, cert_file=cert_file)
    with pytest.raises(TLSSetupError, match="does not belong to the certificate"):
        _ensure(tmp_path, cert_file=cert_file, key_file=other_key)
    with pytest.raises(TLSSetupError, match="cannot read"):
        _ensure(tmp_path, cert_file=tmp_path / "missing.crt", key_file=other_key)
    (tmp_path / "bad.key").write_text("not a key")
    with pytest.raises(TLSSetupError, match="not an unencrypted PEM private key"):
        _ensure(tmp_path, cert_file=cert_file, key_file=tmp_path / "bad.key")


# ---------------------------------------------------------------------- the TLS context


@pytest.fixture
def serving(tmp_path: Path) -> ServingCertificate:
    return generate_self_signed_certificate(tmp_path / "serving", dns_names=NAMES)


def test_the_context_requests_client_certificates_and_refuses_old_protocols(
    serving: ServingCertificate,
) -> None:
    context = server_ssl_context(serving)
    assert context.verify_mode == ssl.CERT_OPTIONAL
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    assert context.options & ssl.OP_NO_COMPRESSION
    tls12_names = {c["name"] for c in context.get_ciphers() if c["protocol"] == "TLSv1.2"}
    assert tls12_names, "some TLS 1.2 suites must remain"
    assert all(name.startswith("ECDHE-") for name in tls12_names)
    assert all("GCM" in name or "CHACHA20" in name for name in tls12_names)
    assert server_ssl_context(serving, minimum_version="1.3").minimum_version == (
        ssl.TLSVersion.TLSv1_3
    )


def test_a_tls_1_1_client_is_refused(serving: ServingCertificate) -> None:
    assert serving.ca_file is not None
    old = client_context(serving.ca_file)
    with warnings.catch_warnings():
        # An outdated client on purpose: Python warns that TLS 1.1 is deprecated.
        warnings.simplefilter("ignore", DeprecationWarning)
        old.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
        old.maximum_version = ssl.TLSVersion.TLSv1_1
    with pytest.raises(ssl.SSLError):
        handshake(server_ssl_context(serving), old, "localhost")


def test_bad_tls_settings_are_named(serving: ServingCertificate) -> None:
    with pytest.raises(TLSSetupError, match=r"'1\.1'; use one of 1\.2, 1\.3"):
        server_ssl_context(serving, minimum_version="1.1")
    with pytest.raises(TLSSetupError, match="none of the cipher suites"):
        server_ssl_context(serving, cipher_suites=("NO-SUCH-CIPHER",))
    context = server_ssl_context(serving)
    with pytest.raises(TLSSetupError, match="client CA bundle"):
        add_trusted_client_cas(context, b"not pem")


def test_the_tls_extension_carries_the_verified_client_certificate(
    tmp_path: Path, serving: ServingCertificate
) -> None:
    assert serving.ca_file is not None
    proxy_ca = make_ca("front-proxy-ca")
    proxy = make_leaf(proxy_ca, "front-proxy-client")
    context = server_ssl_context(serving, client_ca_pem=proxy_ca.pem)
    pair = proxy.write(tmp_path, "proxy")

    server_side = handshake(context, client_context(serving.ca_file, pair), "localhost")
    extension = tls_extension(server_side)
    assert extension["client_cert_chain"] == [proxy.pem.decode()]
    assert extension["client_cert_name"] == "CN=front-proxy-client"
    assert extension["client_cert_error"] is None
    assert extension["server_cert"] is None
    assert extension["tls_version"] == 0x0304
    assert isinstance(extension["cipher_suite"], int)
    assert 0x1301 <= extension["cipher_suite"] <= 0x1305  # a TLS 1.3 suite

    scope = {"type": "http", "extensions": {"tls": extension}}
    assert client_certificate_chain(scope) == (proxy.certificate,)


def test_a_client_without_a_certificate_connects_with_an_empty_chain(
    serving: ServingCertificate,
) -> None:
    assert serving.ca_file is not None
    proxy_ca = make_ca("front-proxy-ca")
    context = server_ssl_context(serving, client_ca_pem=proxy_ca.pem)
    extension = tls_extension(handshake(context, client_context(serving.ca_file), "localhost"))
    assert extension["client_cert_chain"] == []
    assert extension["client_cert_name"] is None


def test_a_certificate_from_an_untrusted_ca_fails_the_handshake(
    tmp_path: Path, serving: ServingCertificate
) -> None:
    assert serving.ca_file is not None
    trusted, stranger = make_ca("front-proxy-ca"), make_ca("someone-else")
    context = server_ssl_context(serving, client_ca_pem=trusted.pem)
    pair = make_leaf(stranger, "front-proxy-client").write(tmp_path, "stranger")
    with pytest.raises(ssl.SSLError, match="certificate verify failed"):
        handshake(context, client_context(serving.ca_file, pair), "localhost")

    # Trusting the CA later (a ConfigMap update) lets the same client in.
    add_trusted_client_cas(context, stranger.pem)
    server_side = handshake(context, client_context(serving.ca_file, pair), "localhost")
    assert tls_extension(server_side)["client_cert_chain"]


def test_the_chain_is_read_defensively_from_the_scope() -> None:
    assert client_certificate_chain({"type": "http"}) == ()
    assert client_certificate_chain({"extensions": {"tls": "nonsense"}}) == ()
    assert client_certificate_chain({"extensions": {"tls": {"client_cert_chain": [1]}}}) == ()
    bad_pem = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
    assert client_certificate_chain({"extensions": {"tls": {"client_cert_chain": [bad_pem]}}}) == ()
