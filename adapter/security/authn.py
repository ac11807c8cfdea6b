"""Who is asking: delegated authentication, as every aggregated API server does it.

The rules are those of k8s.io/apiserver's delegating authenticator, tried in this order:

1. **Front proxy** (request header). The client presented a certificate that chains to
   ``requestheader-client-ca-file`` from the ``extension-apiserver-authentication``
   ConfigMap in kube-system, for client authentication, and whose common name is in
   ``requestheader-allowed-names`` (an empty list allows any name). Then the user is the
   first non-empty ``requestheader-username-headers`` header (``X-Remote-User``), the UID
   the first ``requestheader-uid-headers`` header, the groups every
   ``requestheader-group-headers`` value (``X-Remote-Group``, repeatable) and the extra
   fields every ``requestheader-extra-headers-prefix`` header (``X-Remote-Extra-<key>``,
   the key lower-cased and %-decoded). A proxy certificate without a user header is not
   an identity; the next rule is tried.
2. **Client certificate**. A certificate that chains to the ConfigMap's ``client-ca-file``
   is the user named by its common name, in the groups named by its organizations.
3. **Bearer token**, checked with a TokenReview (authentication.k8s.io/v1). Answers are
   cached by the token's SHA-256 (never the token itself): 10 s when valid, 2 s when not,
   bounded in size.

Otherwise the request is anonymous, which the middleware answers with 401. Identity
headers of the front-proxy kind are honoured only after rule 1 succeeded; the middleware
strips them from every request so that the app never sees a value a client made up.
Authenticated users get the group ``system:authenticated`` added, as in Kubernetes.

The ConfigMap is read at start (:meth:`DelegatingAuthenticator.start`) and re-read
periodically; a failed re-read keeps the last good copy. Its CAs are handed to the TLS
layer (see :mod:`adapter.security.tls`) so that the handshake accepts those client
certificates; the chain is checked again here, against the CAs the ConfigMap lists now.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import functools
import hashlib
import json
import logging
import time
import urllib.parse
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from adapter.security.cache import TTLCache
from adapter.security.kubeapi import KubernetesAPI, KubernetesAPIError
from adapter.security.tls import TLSSetupError, parse_pem_certificates
from kubepulse.errors import KubepulseError

__all__ = [
    "ANONYMOUS_USER",
    "AUTHENTICATED_GROUP",
    "AUTHENTICATION_CONFIGMAP",
    "DEFAULT_IDENTITY_HEADERS",
    "AuthenticationConfig",
    "AuthenticationConfigError",
    "AuthenticationResult",
    "DelegatingAuthenticator",
    "RequestHeaderConfig",
    "TokenReviewAuthenticator",
    "TokenReviewResult",
    "UserInfo",
    "parse_authentication_configmap",
    "verify_client_chain",
]

logger = logging.getLogger("kubepulse.adapter.security.authn")

ANONYMOUS_USER = "system:anonymous"
AUTHENTICATED_GROUP = "system:authenticated"
_UNAUTHENTICATED_GROUP = "system:unauthenticated"
AUTHENTICATION_CONFIGMAP = ("kube-system", "extension-apiserver-authentication")
_CONFIGMAP_PATH = (
    f"/api/v1/namespaces/{AUTHENTICATION_CONFIGMAP[0]}/configmaps/{AUTHENTICATION_CONFIGMAP[1]}"
)
_TOKEN_REVIEW_PATH = "/apis/authentication.k8s.io/v1/tokenreviews"  # noqa: S105 - a URL path

# Stripped from every request whatever the ConfigMap says, so that a ConfigMap that could
# not be read yet does not let the conventional names through to the app.
DEFAULT_IDENTITY_HEADERS: tuple[str, ...] = ("x-remote-user", "x-remote-uid", "x-remote-group")
_DEFAULT_EXTRA_PREFIXES: tuple[str, ...] = ("x-remote-extra-",)
# Longest chain followed from the client's certificate to a trusted CA.
_MAX_CHAIN_LENGTH = 8


class AuthenticationConfigError(KubepulseError):
    """The ``extension-apiserver-authentication`` ConfigMap cannot be read or used."""


@dataclass(frozen=True)
class UserInfo:
    """An authenticated identity, as Kubernetes' ``user.Info``.

    Attributes:
        name: the user name (``system:serviceaccount:ns:sa`` for a ServiceAccount).
        uid: a unique id, when the authenticator knows one.
        groups: group names, ``system:authenticated`` included.
        extra: additional attributes (scopes, credential ids), each a list of strings.
    """

    name: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def with_authenticated_group(self) -> UserInfo:
        """This user with ``system:authenticated`` added, unless anonymous or already there."""
        if self.name == ANONYMOUS_USER or {AUTHENTICATED_GROUP, _UNAUTHENTICATED_GROUP} & set(
            self.groups
        ):
            return self
        return UserInfo(self.name, self.uid, (*self.groups, AUTHENTICATED_GROUP), self.extra)


@dataclass(frozen=True)
class RequestHeaderConfig:
    """How to recognise the front proxy and read the identity it forwards.

    Attributes:
        client_cas: CAs that sign the proxy's client certificate.
        allowed_names: common names the proxy certificate may have; empty allows any.
        username_headers: headers naming the user; the first non-empty one wins.
        uid_headers: headers carrying the user's UID; the first non-empty one wins.
        group_headers: headers naming groups; every value of every one counts.
        extra_header_prefixes: prefixes of headers carrying extra attributes.
    """

    client_cas: tuple[x509.Certificate, ...]
    allowed_names: tuple[str, ...] = ()
    username_headers: tuple[str, ...] = ("X-Remote-User",)
    uid_headers: tuple[str, ...] = ()
    group_headers: tuple[str, ...] = ("X-Remote-Group",)
    extra_header_prefixes: tuple[str, ...] = ("X-Remote-Extra-",)


@dataclass(frozen=True)
class AuthenticationConfig:
    """What the ``extension-apiserver-authentication`` ConfigMap says.

    Attributes:
        request_header: front-proxy settings, or ``None`` when kube-apiserver runs without
            ``--requestheader-client-ca-file`` (then no aggregator can reach the adapter).
        client_cas: CAs of the cluster's client certificates (``client-ca-file``).
    """

    request_header: RequestHeaderConfig | None
    client_cas: tuple[x509.Certificate, ...] = ()

    def trusted_ca_pem(self) -> bytes:
        """Every CA whose client certificates the TLS handshake should accept, as PEM."""
        cas = list(self.client_cas)
        if self.request_header is not None:
            cas += self.request_header.client_cas
        return b"".join(ca.public_bytes(serialization.Encoding.PEM) for ca in cas)


def parse_authentication_configmap(data: Mapping[str, str]) -> AuthenticationConfig:
    """Read the ConfigMap's ``data`` the way kube-apiserver writes it.

    List values are JSON arrays of strings (``'["X-Remote-User"]'``); CA bundles are PEM.
    A missing key means empty.

    Raises:
        AuthenticationConfigError: a value is malformed; the message names its key.
    """

    def string_list(key: str) -> tuple[str, ...]:
        raw = data.get(key, "")
        if not raw.strip():
            return ()
        try:
            values = json.loads(raw)
        except ValueError as exc:
            raise AuthenticationConfigError(
                f"ConfigMap key {key!r} is not a JSON list of strings: {raw[:80]!r}"
            ) from exc
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise AuthenticationConfigError(
                f"ConfigMap key {key!r} is not a JSON list of strings: {raw[:80]!r}"
            )
        stripped = tuple(v.strip() for v in values)
        if any(not v for v in stripped):
            raise AuthenticationConfigError(f"ConfigMap key {key!r} lists an empty header name")
        return stripped

    def bundle(key: str) -> tuple[x509.Certificate, ...]:
        raw = data.get(key, "")
        if not raw.strip():
            return ()
        try:
            return parse_pem_certificates(raw, what=f"ConfigMap key {key!r}")
        except TLSSetupError as exc:
            raise AuthenticationConfigError(str(exc)) from exc

    request_header_cas = bundle("requestheader-client-ca-file")
    request_header = None
    if request_header_cas:
        request_header = RequestHeaderConfig(
            client_cas=request_header_cas,
            allowed_names=string_list("requestheader-allowed-names"),
            username_headers=string_list("requestheader-username-headers"),
            uid_headers=string_list("requestheader-uid-headers"),
            group_headers=string_list("requestheader-group-headers"),
            extra_header_prefixes=string_list("requestheader-extra-headers-prefix"),
        )
    return AuthenticationConfig(request_header=request_header, client_cas=bundle("client-ca-file"))


def verify_client_chain(
    chain: Sequence[x509.Certificate],
    trusted: Iterable[x509.Certificate],
    now: datetime.datetime,
) -> str | None:
    """Check that ``chain`` (client certificate first) leads to a ``trusted`` CA; ``None`` if so.

    Follows the chain from the client's certificate through the intermediates it sent
    until a certificate is signed by a trusted CA. Every certificate on the way must be
    within its validity period, every issuer must be a CA, and the client's certificate
    must be usable for client authentication (no extended key usage, or one that includes
    client auth), as Go's ``x509.Verify`` with ``ExtKeyUsageClientAuth`` requires.
    Returns a reason when it does not.
    """
    anchors = tuple(trusted)
    if not chain:
        return "no client certificate"
    if not anchors:
        return "no trusted CA configured"
    leaf = chain[0]
    if not _usable_for_client_auth(leaf):
        return f"certificate {_describe(leaf)} is not valid for client authentication"
    anchor_ders = {anchor.public_bytes(serialization.Encoding.DER) for anchor in anchors}
    for position, certificate in enumerate(chain[:_MAX_CHAIN_LENGTH]):
        if not _valid_at(certificate, now):
            return (
                f"certificate {_describe(certificate)} is not valid at {now:%Y-%m-%dT%H:%M:%SZ} "
                f"(valid {certificate.not_valid_before_utc:%Y-%m-%dT%H:%M:%SZ} to "
                f"{certificate.not_valid_after_utc:%Y-%m-%dT%H:%M:%SZ})"
            )
        if position > 0 and certificate.public_bytes(serialization.Encoding.DER) in anchor_ders:
            return None  # the client sent the trusted CA itself at the end of its chain
        if any(_issued_by(certificate, anchor) and _valid_at(anchor, now) for anchor in anchors):
            return None
        if position + 1 >= len(chain):
            break
        issuer = chain[position + 1]
        if not (_is_ca(issuer) and _issued_by(certificate, issuer)):
            return f"certificate {_describe(certificate)} is not signed by the next one it sent"
    return f"certificate {_describe(leaf)} is not signed by a trusted CA"


@dataclass(frozen=True)
class TokenReviewResult:
    """What kube-apiserver said about a bearer token.

    Attributes:
        user: the token's user when valid, else ``None``.
        error: why the token was refused (kube-apiserver's ``status.error``), if it was.
    """

    user: UserInfo | None
    error: str = ""


class TokenReviewAuthenticator:
    """Checks bearer tokens with TokenReviews, and caches the answers briefly.

    Args:
        api: kube-apiserver client; its identity needs ``create`` on ``tokenreviews``.
        audiences: audiences the token must be valid for; empty means kube-apiserver's own.
        success_ttl: seconds a valid token's answer is kept.
        failure_ttl: seconds a refused token's answer is kept.
        max_entries: the cache's bound.
        clock: monotonic seconds, for the cache.
    """

    def __init__(
        self,
        api: KubernetesAPI,
        *,
        audiences: Sequence[str] = (),
        success_ttl: float = 10.0,
        failure_ttl: float = 2.0,
        max_entries: int = 4096,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._api = api
        self._audiences = tuple(audiences)
        self._success_ttl = success_ttl
        self._failure_ttl = failure_ttl
        self._cache: TTLCache[str, TokenReviewResult] = TTLCache(max_entries, clock)

    @property
    def cache(self) -> TTLCache[str, TokenReviewResult]:
        """The answer cache (for inspection and tests)."""
        return self._cache

    async def review(self, token: str) -> tuple[TokenReviewResult, bool]:
        """Ask (or remember) whether ``token`` is valid; returns ``(result, was_cached)``.

        Raises:
            KubernetesAPIError: the TokenReview could not be made; nothing is cached.
        """
        digest = hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()
        return await self._cache.get_or_load(
            digest,
            lambda: self._create_review(token),
            lambda result: self._success_ttl if result.user else self._failure_ttl,
        )

    async def _create_review(self, token: str) -> TokenReviewResult:
        spec: dict[str, Any] = {"token": token}
        if self._audiences:
            spec["audiences"] = list(self._audiences)
        answer = await self._api.create(
            _TOKEN_REVIEW_PATH,
            {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": spec},
        )
        status = answer.get("status")
        if not isinstance(status, Mapping):
            raise KubernetesAPIError("TokenReview answer has no status")
        if not status.get("authenticated"):
            return TokenReviewResult(None, str(status.get("error") or "token not valid"))
        if self._audiences and not set(self._audiences) & set(status.get("audiences") or ()):
            return TokenReviewResult(
                None, f"token is not valid for the audiences {', '.join(self._audiences)}"
            )
        user = status.get("user")
        if not isinstance(user, Mapping) or not user.get("username"):
            return TokenReviewResult(None, "TokenReview named no user")
        extra = user.get("extra") or {}
        return TokenReviewResult(
            UserInfo(
                name=str(user["username"]),
                uid=str(user.get("uid") or ""),
                groups=tuple(str(g) for g in user.get("groups") or ()),
                extra={str(k): tuple(str(v) for v in vs or ()) for k, vs in extra.items()},
            )
        )


@dataclass(frozen=True)
class AuthenticationResult:
    """The outcome of authenticating one request.

    Attributes:
        user: who is asking, ``None`` when nobody could be identified.
        method: ``front-proxy``, ``client-certificate`` or ``token`` for an identified user.
        errors: why each applicable rule refused, for the log (never sent to the client).
        unavailable: a TokenReview could not be made, so the answer is "unknown", not "no".
        cached: the token answer came from the cache (front-proxy and client certificate
            answers need no kube-apiserver call).
    """

    user: UserInfo | None
    method: str = ""
    errors: tuple[str, ...] = ()
    unavailable: bool = False
    cached: bool = False


class DelegatingAuthenticator:
    """Front proxy, client certificate and bearer token authentication, in that order.

    Args:
        api: kube-apiserver client for the ConfigMap; may be ``None`` when ``config`` is
            given and never refreshed (tests, or front-proxy-only setups).
        token_authenticator: checks bearer tokens; ``None`` turns bearer tokens off.
        config: a ConfigMap already read; otherwise :meth:`start` reads it.
        client_certificates: whether certificates from the cluster's client CA identify
            users (rule 2).
        refresh_interval: seconds between re-reads of the ConfigMap.
        tolerate_lookup_failure: start without the ConfigMap when it cannot be read,
            instead of failing (front-proxy and client-certificate authentication stay off
            until a re-read succeeds).
        on_trusted_cas: called with the PEM of every trusted client CA whenever that set
            changes (the server adds them to its TLS context).
        now: wall clock for certificate validity.
    """

    def __init__(
        self,
        api: KubernetesAPI | None,
        *,
        token_authenticator: TokenReviewAuthenticator | None,
        config: AuthenticationConfig | None = None,
        client_certificates: bool = True,
        refresh_interval: float = 60.0,
        tolerate_lookup_failure: bool = False,
        on_trusted_cas: Callable[[bytes], None] | None = None,
        now: Callable[[], datetime.datetime] | None = None,
    ) -> None:
        self._api = api
        self._tokens = token_authenticator
        self._config = config
        self._client_certificates = client_certificates
        self._refresh_interval = refresh_interval
        self._tolerate_lookup_failure = tolerate_lookup_failure
        self._on_trusted_cas = on_trusted_cas
        self._now = now or (lambda: datetime.datetime.now(datetime.timezone.utc))
        self._refresher: asyncio.Task[None] | None = None
        self._identity_headers, self._identity_prefixes = _identity_header_names(config)

    @property
    def config(self) -> AuthenticationConfig | None:
        """The ConfigMap's settings in use, ``None`` before the first successful read."""
        return self._config

    async def start(self) -> None:
        """Read the ConfigMap, then keep re-reading it in the background.

        Raises:
            AuthenticationConfigError: the ConfigMap cannot be read (and lookup failures
                are not tolerated); the message says which permission is missing.
        """
        if self._api is None:
            return
        try:
            await self.refresh()
        except AuthenticationConfigError as exc:
            if not self._tolerate_lookup_failure:
                raise
            logger.warning(
                "starting without the authentication ConfigMap: %s; front-proxy and client "
                "certificate authentication stay off until it can be read",
                exc,
            )
        self._refresher = asyncio.create_task(self._refresh_forever())

    async def stop(self) -> None:
        """Stop the background re-reads."""
        if self._refresher is not None:
            self._refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refresher
            self._refresher = None

    async def refresh(self) -> bool:
        """Read the ConfigMap now; returns whether its settings changed.

        Raises:
            AuthenticationConfigError: it cannot be read or parsed; the settings in use
                are kept.
        """
        if self._api is None:
            return False
        try:
            configmap = await self._api.get(_CONFIGMAP_PATH)
        except KubernetesAPIError as exc:
            raise AuthenticationConfigError(
                f"cannot read ConfigMap {'/'.join(AUTHENTICATION_CONFIGMAP)} with "
                f"{self._api.description}: {exc}"
            ) from exc
        data = configmap.get("data") or {}
        if not isinstance(data, Mapping):
            raise AuthenticationConfigError(
                f"ConfigMap {'/'.join(AUTHENTICATION_CONFIGMAP)} has no data"
            )
        config = parse_authentication_configmap(
            {str(k): str(v) for k, v in data.items() if isinstance(v, str)}
        )
        return self.use_config(config)

    def use_config(self, config: AuthenticationConfig) -> bool:
        """Switch to ``config``; returns whether it differs from the one in use."""
        previous = self._config
        if previous == config:
            return False
        self._config = config
        self._identity_headers, self._identity_prefixes = _identity_header_names(config)
        if config.request_header is None:
            logger.warning(
                "the authentication ConfigMap has no requestheader-client-ca-file: "
                "kube-apiserver runs without the aggregation layer's front-proxy settings, "
                "so requests through the aggregator cannot be authenticated"
            )
        previous_pem = previous.trusted_ca_pem() if previous is not None else b""
        trusted_pem = config.trusted_ca_pem()
        if trusted_pem != previous_pem and trusted_pem and self._on_trusted_cas is not None:
            self._on_trusted_cas(trusted_pem)
        logger.info(
            "authentication settings loaded",
            extra={
                "fields": {
                    "front_proxy": config.request_header is not None,
                    "allowed_names": list(config.request_header.allowed_names)
                    if config.request_header
                    else [],
                    "client_ca_certificates": len(config.client_cas),
                }
            },
        )
        return True

    def is_identity_header(self, name: bytes) -> bool:
        """Whether a request header (lower-case name) carries a front-proxy identity."""
        text = name.decode("latin-1").lower()
        return text in self._identity_headers or text.startswith(self._identity_prefixes)

    async def authenticate(
        self,
        headers: Sequence[tuple[bytes, bytes]],
        client_chain: Sequence[x509.Certificate],
    ) -> AuthenticationResult:
        """Identify the caller from its TLS client certificate and request headers.

        ``headers`` are the ASGI scope's (lower-case names, bytes); ``client_chain`` is the
        verified TLS client chain, client certificate first (see
        :func:`adapter.security.tls.client_certificate_chain`).
        """
        errors: list[str] = []
        config = self._config
        now = self._now()
        if client_chain and config is not None:
            if config.request_header is not None:
                user, error = _front_proxy_user(config.request_header, headers, client_chain, now)
                if user is not None:
                    return AuthenticationResult(user.with_authenticated_group(), "front-proxy")
                if error:
                    errors.append(error)
            if self._client_certificates and config.client_cas:
                user, error = _client_certificate_user(config.client_cas, client_chain, now)
                if user is not None:
                    return AuthenticationResult(
                        user.with_authenticated_group(), "client-certificate"
                    )
                if error:
                    errors.append(error)
        token = _bearer_token(headers)
        if token is not None and self._tokens is not None:
            if not token:
                errors.append("empty bearer token")
            else:
                try:
                    answer, cached = await self._tokens.review(token)
                except KubernetesAPIError as exc:
                    return AuthenticationResult(
                        None, errors=(*errors, f"TokenReview failed: {exc}"), unavailable=True
                    )
                if answer.user is not None:
                    return AuthenticationResult(
                        answer.user.with_authenticated_group(), "token", cached=cached
                    )
                errors.append(f"token refused: {answer.error}")
        return AuthenticationResult(None, errors=tuple(errors))

    async def _refresh_forever(self) -> None:
        while True:
            await asyncio.sleep(self._refresh_interval)
            try:
                await self.refresh()
            except AuthenticationConfigError as exc:
                logger.warning("keeping the previous authentication settings: %s", exc)


# ------------------------------------------------------------------------------ helpers


def _front_proxy_user(
    config: RequestHeaderConfig,
    headers: Sequence[tuple[bytes, bytes]],
    chain: Sequence[x509.Certificate],
    now: datetime.datetime,
) -> tuple[UserInfo | None, str]:
    problem = verify_client_chain(chain, config.client_cas, now)
    if problem is not None:
        return None, f"front proxy: {problem}"
    common_name = _common_name(chain[0])
    if config.allowed_names and common_name not in config.allowed_names:
        return None, (
            f"front proxy: certificate common name {common_name!r} is not in "
            f"requestheader-allowed-names {list(config.allowed_names)}"
        )
    name = _first_value(headers, config.username_headers)
    if not name:
        return None, ""  # a proxy certificate without a user: not an identity, not an error
    groups = _all_values(headers, config.group_headers)
    extra: dict[str, list[str]] = {}
    prefixes = tuple(p.lower() for p in config.extra_header_prefixes)
    for prefix in prefixes:
        for raw_name, raw_value in headers:
            header = raw_name.decode("latin-1").lower()
            if header.startswith(prefix):
                key = _unescape_extra_key(header[len(prefix) :])
                extra.setdefault(key, []).append(raw_value.decode("latin-1"))
    return (
        UserInfo(
            name=name,
            uid=_first_value(headers, config.uid_headers),
            groups=tuple(groups),
            extra={key: tuple(values) for key, values in extra.items()},
        ),
        "",
    )


def _client_certificate_user(
    client_cas: Sequence[x509.Certificate],
    chain: Sequence[x509.Certificate],
    now: datetime.datetime,
) -> tuple[UserInfo | None, str]:
    problem = verify_client_chain(chain, client_cas, now)
    if problem is not None:
        return None, f"client certificate: {problem}"
    common_name = _common_name(chain[0])
    if not common_name:
        return None, "client certificate: it has no common name to use as the user name"
    organizations = tuple(
        str(attribute.value)
        for attribute in chain[0].subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    )
    fingerprint = chain[0].fingerprint(hashes.SHA256()).hex()
    return (
        UserInfo(
            name=common_name,
            groups=organizations,
            extra={"authentication.kubernetes.io/credential-id": (f"X509SHA256={fingerprint}",)},
        ),
        "",
    )


def _bearer_token(headers: Sequence[tuple[bytes, bytes]]) -> str | None:
    """The bearer token of the ``Authorization`` header; ``None`` when there is none.

    Like Kubernetes: the scheme is case-insensitive and the token is the second
    space-separated word.
    """
    for name, value in headers:
        if name == b"authorization":
            parts = value.decode("latin-1").strip().split(" ", 2)
            if len(parts) >= 2 and parts[0].lower() == "bearer":
                return parts[1]  # empty for "Bearer  token": refused, as Kubernetes does
            return None
    return None


def _first_value(headers: Sequence[tuple[bytes, bytes]], names: Iterable[str]) -> str:
    for wanted in names:
        key = wanted.lower().encode("latin-1")
        for name, value in headers:
            if name == key and value:
                return value.decode("latin-1")
    return ""


def _all_values(headers: Sequence[tuple[bytes, bytes]], names: Iterable[str]) -> list[str]:
    values: list[str] = []
    for wanted in names:
        key = wanted.lower().encode("latin-1")
        values += [value.decode("latin-1") for name, value in headers if name == key and value]
    return values


def _identity_header_names(
    config: AuthenticationConfig | None,
) -> tuple[frozenset[str], tuple[str, ...]]:
    names = set(DEFAULT_IDENTITY_HEADERS)
    prefixes = set(_DEFAULT_EXTRA_PREFIXES)
    if config is not None and config.request_header is not None:
        rh = config.request_header
        names |= {h.lower() for h in (*rh.username_headers, *rh.uid_headers, *rh.group_headers)}
        prefixes |= {p.lower() for p in rh.extra_header_prefixes}
    return frozenset(names), tuple(sorted(prefixes))


def _unescape_extra_key(encoded: str) -> str:
    # As Kubernetes: %-decoded, but kept as sent when the decoding is not valid UTF-8.
    try:
        return urllib.parse.unquote(encoded, errors="strict")
    except UnicodeDecodeError:
        return encoded


def _common_name(certificate: x509.Certificate) -> str:
    attributes = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(attributes[0].value) if attributes else ""


def _describe(certificate: x509.Certificate) -> str:
    return f"CN={_common_name(certificate)!r} (serial {certificate.serial_number:x})"


def _usable_for_client_auth(certificate: x509.Certificate) -> bool:
    try:
        usages = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return True
    return any(
        usage in (ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE)
        for usage in usages
    )


def _valid_at(certificate: x509.Certificate, now: datetime.datetime) -> bool:
    return certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc


def _is_ca(certificate: x509.Certificate) -> bool:
    try:
        return bool(certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def _issued_by(certificate: x509.Certificate, issuer: x509.Certificate) -> bool:
    if certificate.issuer != issuer.subject or not _is_ca(issuer):
        return False
    return _signature_checks_out(certificate, issuer)


# A signature is valid or not forever, so its check is remembered: the aggregator sends
# the same proxy certificate with every request, and an ECDSA verification costs about
# 0.1 ms. Validity periods are still checked on every request.
@functools.lru_cache(maxsize=1024)
def _signature_checks_out(certificate: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        certificate.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True
