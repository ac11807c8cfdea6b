"""AdapterSecurity: everything built from the configuration, and certificate renewal."""

from __future__ import annotations

import asyncio
import contextlib
import os
import ssl
from pathlib import Path

import pytest

from adapter.config import load_config
from adapter.security.authn import AuthenticationConfigError
from adapter.security.middleware import KubernetesAuthMiddleware
from adapter.security.stack import AdapterSecurity
from tests.unit.adapter.security.certs import Issued, make_ca, make_leaf
from tests.unit.adapter.security.fakes import FakeKube
from tests.unit.adapter.security.test_authn import PROXY, configmap_data
from tests.unit.adapter.security.test_tls import handshake


def client(trust: Issued | Path, pair: tuple[Path, Path] | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if isinstance(trust, Path):
        context.load_verify_locations(cafile=str(trust))
    else:
        context.load_verify_locations(cadata=trust.pem.decode())
    if pair is not None:
        context.load_cert_chain(*map(str, pair))
    return context


def test_create_generates_a_certificate_reads_the_configmap_and_trusts_its_cas(
    tmp_path: Path,
) -> None:
    kube = FakeKube(configmap_data=configmap_data())
    config = load_config([f"--cert-dir={tmp_path / 'certs'}", "--service-namespace=monitoring"], {})
    proxy_pair = PROXY.write(tmp_path, "proxy")

    async def scenario() -> tuple[AdapterSecurity, KubernetesAuthMiddleware]:
        security = await AdapterSecurity.create(config, api=kube.api())
        try:
            return security, security.protect(lambda *_: None)  # type: ignore[arg-type, return-value]
        finally:
            await security.aclose()

    security, protected = asyncio.run(scenario())
    assert security.serving_certificate.generated
    assert "kubepulse-adapter.monitoring.svc" in security.serving_certificate.dns_names
    assert security.authenticator is not None
    assert security.authenticator.config is not None
    assert security.authorizer is not None
    assert isinstance(protected, KubernetesAuthMiddleware)
    # The ConfigMap's front-proxy CA is trusted by the handshake.
    ca_file = tmp_path / "certs" / "ca.crt"
    server_side = handshake(
        security.ssl_context, client(ca_file, proxy_pair), "kubepulse-adapter.monitoring.svc"
    )
    assert server_side.getpeercert(binary_form=True)


def test_create_fails_with_the_configmaps_error(tmp_path: Path) -> None:
    kube = FakeKube(configmap_status=403)
    config = load_config([f"--cert-dir={tmp_path}"], {})
    with pytest.raises(AuthenticationConfigError, match="extension-apiserver-authentication"):
        asyncio.run(AdapterSecurity.create(config, api=kube.api()))


def test_without_authentication_no_kubernetes_credentials_are_needed(tmp_path: Path) -> None:
    config = load_config(
        [f"--cert-dir={tmp_path}", "--no-authentication", "--no-authorization"], {}
    )

    async def scenario() -> AdapterSecurity:
        security = await AdapterSecurity.create(config)
        await security.aclose()
        return security

    security = asyncio.run(scenario())
    assert (security.api, security.authenticator, security.authorizer) == (None, None, None)


def test_given_certificate_files_are_reloaded_when_they_change(tmp_path: Path) -> None:
    ca = make_ca("company-ca")
    first = make_leaf(ca, "first", client=False, server=True, dns_names=("adapter.test",))
    second = make_leaf(ca, "second", client=False, server=True, dns_names=("adapter.test",))
    cert_file, key_file = first.write(tmp_path, "tls")
    kube = FakeKube(configmap_data=configmap_data())
    config = load_config([f"--tls-cert-file={cert_file}", f"--tls-private-key-file={key_file}"], {})

    async def scenario() -> tuple[str, str]:
        security = await AdapterSecurity.create(
            config, api=kube.api(), certificate_check_interval=0.02
        )
        try:
            before = _served_common_name(security.ssl_context, ca)
            second.write(tmp_path, "tls")
            stat = cert_file.stat()
            os.utime(cert_file, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
            for _ in range(100):
                await asyncio.sleep(0.02)
                after = _served_common_name(security.ssl_context, ca)
                if after != before:
                    break
            return before, after
        finally:
            await security.aclose()

    assert asyncio.run(scenario()) == ("first", "second")


def _served_common_name(context: ssl.SSLContext, ca: Issued) -> str:
    server_in, server_out = ssl.MemoryBIO(), ssl.MemoryBIO()
    client_in, client_out = ssl.MemoryBIO(), ssl.MemoryBIO()
    server = context.wrap_bio(server_in, server_out, server_side=True)
    peer = client(ca).wrap_bio(client_in, client_out, server_hostname="adapter.test")
    for _ in range(20):
        for side in (peer, server):
            with contextlib.suppress(ssl.SSLWantReadError):
                side.do_handshake()
        client_in.write(server_out.read())
        server_in.write(client_out.read())
    certificate = peer.getpeercert()
    subject = dict(item[0] for item in certificate["subject"])
    return str(subject["commonName"])
