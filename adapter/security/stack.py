"""Contract 4 assembled from the configuration: serving TLS, authentication, authorization.

:meth:`AdapterSecurity.create` does, in order:

1. find or generate the serving certificate and build the server's TLS context;
2. load credentials for kube-apiserver (in-cluster, or the configured kubeconfig);
3. read the ``extension-apiserver-authentication`` ConfigMap and trust its client CAs in
   the TLS context, then keep re-reading it;
4. set up the TokenReview and SubjectAccessReview clients with their caches.

Then :meth:`AdapterSecurity.protect` wraps the API app in
:class:`~adapter.security.middleware.KubernetesAuthMiddleware`, and
:meth:`AdapterSecurity.aclose` stops the background work. Given serving certificate files
are re-read when they change on disk (a cert-manager renewal), without a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ipaddress
import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from adapter.config import AdapterConfig
from adapter.security.authn import DelegatingAuthenticator, TokenReviewAuthenticator
from adapter.security.authz import SubjectAccessReviewAuthorizer
from adapter.security.kubeapi import KubernetesAPI, load_cluster_connection
from adapter.security.middleware import ASGIApp, KubernetesAuthMiddleware
from adapter.security.tls import (
    DEFAULT_CIPHER_SUITES,
    ServingCertificate,
    add_trusted_client_cas,
    ensure_serving_certificate,
    server_ssl_context,
    serving_dns_names,
)

__all__ = ["AdapterSecurity"]

logger = logging.getLogger("kubepulse.adapter.security")


@dataclass
class AdapterSecurity:
    """The adapter's TLS context, authenticator and authorizer, ready to protect an app.

    Attributes:
        serving_certificate: the pair the server presents.
        ssl_context: the server's TLS settings (pass it to :func:`adapter.server.serve`).
        authenticator: ``None`` when authentication is turned off.
        authorizer: ``None`` when authorization is turned off.
        api: the kube-apiserver client, ``None`` when neither needs one.
    """

    serving_certificate: ServingCertificate
    ssl_context: ssl.SSLContext
    authenticator: DelegatingAuthenticator | None
    authorizer: SubjectAccessReviewAuthorizer | None
    api: KubernetesAPI | None
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @classmethod
    async def create(
        cls,
        config: AdapterConfig,
        *,
        api: KubernetesAPI | None = None,
        now: Callable[[], datetime.datetime] | None = None,
        certificate_check_interval: float = 60.0,
    ) -> AdapterSecurity:
        """Build everything from ``config``; call from the event loop that will serve.

        ``api`` replaces the kube-apiserver client built from the configuration (tests).
        Given certificate files are checked for changes every
        ``certificate_check_interval`` seconds.

        Raises:
            TLSSetupError: the serving certificate or TLS settings cannot be used.
            KubernetesAPIError: no credentials for kube-apiserver could be loaded.
            AuthenticationConfigError: the authentication ConfigMap cannot be read.
        """
        clock = now or (lambda: datetime.datetime.now(datetime.timezone.utc))
        tls = config.tls
        extra_dns = tuple(name for name in tls.extra_sans if not _is_ip(name))
        extra_ips = tuple(name for name in tls.extra_sans if _is_ip(name))
        serving = ensure_serving_certificate(
            cert_file=tls.cert_file,
            key_file=tls.private_key_file,
            cert_dir=tls.cert_dir,
            dns_names=(
                *serving_dns_names(tls.service_name, tls.service_namespace, tls.cluster_domain),
                *extra_dns,
            ),
            ip_addresses=("127.0.0.1", *extra_ips),
            now=clock(),
        )
        context = server_ssl_context(
            serving,
            minimum_version=tls.min_version,
            cipher_suites=tls.cipher_suites or DEFAULT_CIPHER_SUITES,
        )
        _log_certificate(serving, clock())

        authn, authz = config.authentication, config.authorization
        owned_api = False
        if api is None and (authn.enabled or authz.enabled):
            api = KubernetesAPI(
                load_cluster_connection(config.kubeconfig),
                timeout=config.kube_api_timeout_ms / 1000,
            )
            owned_api = True
        try:
            authenticator = None
            if authn.enabled and api is not None:
                tokens = None
                if authn.token_review:
                    tokens = TokenReviewAuthenticator(
                        api,
                        audiences=authn.token_audiences,
                        success_ttl=authn.cache_ttl_ms / 1000,
                        failure_ttl=authn.failure_cache_ttl_ms / 1000,
                        max_entries=authn.cache_size,
                    )
                authenticator = DelegatingAuthenticator(
                    api,
                    token_authenticator=tokens,
                    client_certificates=authn.client_certificates,
                    refresh_interval=authn.configmap_refresh_interval_ms / 1000,
                    tolerate_lookup_failure=authn.tolerate_lookup_failure,
                    on_trusted_cas=lambda pem: add_trusted_client_cas(context, pem),
                    now=clock,
                )
                await authenticator.start()
            else:
                logger.warning(
                    "authentication is off: every caller is system:anonymous; never run "
                    "like this where the port is reachable by anything but you"
                )
            authorizer = None
            if authz.enabled and api is not None:
                authorizer = SubjectAccessReviewAuthorizer(
                    api,
                    allow_ttl=authz.allow_cache_ttl_ms / 1000,
                    deny_ttl=authz.deny_cache_ttl_ms / 1000,
                    max_entries=authz.cache_size,
                    always_allow_groups=authz.always_allow_groups,
                )
            elif authn.enabled:
                logger.warning("authorization is off: every authenticated caller may read all")
        except BaseException:
            if owned_api and api is not None:
                await api.aclose()
            raise
        security = cls(serving, context, authenticator, authorizer, api)
        if not serving.generated:
            # The files as loaded now; a change made before the task first runs still counts.
            loaded = _modification_times((serving.cert_file, serving.key_file))
            security._tasks.append(
                asyncio.create_task(
                    security._watch_certificate_files(certificate_check_interval, loaded)
                )
            )
        return security

    def protect(self, app: ASGIApp) -> KubernetesAuthMiddleware:
        """``app`` behind authentication and authorization (health paths stay open)."""
        return KubernetesAuthMiddleware(app, self.authenticator, self.authorizer)

    async def aclose(self) -> None:
        """Stop re-reading the ConfigMap and certificate files; close the API client."""
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        if self.authenticator is not None:
            await self.authenticator.stop()
        if self.api is not None:
            await self.api.aclose()

    async def _watch_certificate_files(self, interval: float, seen: tuple[int, ...]) -> None:
        files = (self.serving_certificate.cert_file, self.serving_certificate.key_file)
        while True:
            await asyncio.sleep(interval)
            current = _modification_times(files)
            if current == seen:
                continue
            try:
                self.ssl_context.load_cert_chain(str(files[0]), str(files[1]))
            except (OSError, ssl.SSLError) as exc:
                # Mid-rotation the two files may not match yet; the next check retries.
                logger.warning("serving certificate not reloaded yet: %s", exc)
                continue
            seen = current
            logger.info("serving certificate reloaded", extra={"fields": {"file": str(files[0])}})


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _modification_times(files: tuple[Path, ...]) -> tuple[int, ...]:
    times = []
    for path in files:
        try:
            times.append(path.stat().st_mtime_ns)
        except OSError:
            times.append(0)
    return tuple(times)


def _log_certificate(serving: ServingCertificate, now: datetime.datetime) -> None:
    fields = {
        "cert_file": str(serving.cert_file),
        "generated": serving.generated,
        "ca_file": str(serving.ca_file) if serving.ca_file else None,
        "not_after": serving.not_after.isoformat(),
        "dns_names": list(serving.dns_names),
        "ip_addresses": list(serving.ip_addresses),
    }
    logger.info("serving certificate", extra={"fields": fields})
    if serving.not_after <= now:
        logger.error(
            "the serving certificate has expired: clients will refuse it; renew it",
            extra={"fields": fields},
        )
    elif serving.not_after - now < datetime.timedelta(days=14):
        logger.warning("the serving certificate expires within 14 days", extra={"fields": fields})
