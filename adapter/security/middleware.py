"""One ASGI middleware that authenticates and authorizes every request, as Contract 4 asks.

Wrap the API app in it::

    app = KubernetesAuthMiddleware(create_app(...), authenticator, authorizer)

For each HTTP request it

1. strips the front-proxy identity headers (``X-Remote-User``, ``X-Remote-Group``,
   ``X-Remote-Extra-*`` and the names the ConfigMap adds) from what the app will see,
   whoever sent them: the app never reads an identity a client made up;
2. lets the open paths through without credentials: ``/healthz``, ``/livez``,
   ``/readyz`` (and below them) and ``/metrics``;
3. authenticates the caller (:class:`~adapter.security.authn.DelegatingAuthenticator`):
   nobody identified is ``401 Unauthorized``, and a TokenReview that could not be made is
   ``503 ServiceUnavailable`` (the answer is unknown, not no);
4. derives the request's authorization attributes from its path and asks the authorizer
   (:class:`~adapter.security.authz.SubjectAccessReviewAuthorizer`): denied is
   ``403 Forbidden`` naming the user and the action, a review that could not be made is
   ``503``;
5. calls the app with the ``Authorization`` header removed and the user in the request
   state: ``authenticated_user(request)`` in a FastAPI handler.

Refusals are Kubernetes ``Status`` objects, as every client of an aggregated API expects.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Iterable, MutableMapping, Sequence
from typing import Any, Protocol

from cryptography import x509

from adapter.security.authn import AuthenticationResult, UserInfo
from adapter.security.authz import (
    AuthorizationResult,
    RequestAttributes,
    forbidden_message,
    request_attributes,
)
from adapter.security.kubeapi import KubernetesAPIError
from adapter.security.tls import client_certificate_chain
from adapter.status import status_body

__all__ = [
    "DEFAULT_OPEN_PATHS",
    "USER_STATE_KEY",
    "Authenticator",
    "Authorizer",
    "KubernetesAuthMiddleware",
    "authenticated_user",
]

logger = logging.getLogger("kubepulse.adapter.security.access")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

DEFAULT_OPEN_PATHS: tuple[str, ...] = (
    "/healthz",
    "/healthz/*",
    "/livez",
    "/livez/*",
    "/readyz",
    "/readyz/*",
    "/metrics",
)
USER_STATE_KEY = "kubepulse_user"
"""Key of the authenticated :class:`UserInfo` in the request state (``scope["state"]``)."""

_AUTHORIZATION_HEADER = b"authorization"
# Conventional front-proxy header names, stripped even when no authenticator is configured.
_DEFAULT_IDENTITY_NAMES = frozenset({b"x-remote-user", b"x-remote-uid", b"x-remote-group"})
_DEFAULT_IDENTITY_PREFIX = b"x-remote-extra-"


class Authenticator(Protocol):
    """What the middleware needs from an authenticator."""

    def is_identity_header(self, name: bytes) -> bool:
        """Whether a (lower-case) header carries a front-proxy identity."""

    async def authenticate(
        self, headers: Sequence[tuple[bytes, bytes]], client_chain: Sequence[x509.Certificate]
    ) -> AuthenticationResult:
        """Identify the caller."""


class Authorizer(Protocol):
    """What the middleware needs from an authorizer."""

    async def authorize(self, user: UserInfo, attributes: RequestAttributes) -> AuthorizationResult:
        """Decide whether ``user`` may do ``attributes``."""


class KubernetesAuthMiddleware:
    """ASGI middleware: strip spoofable headers, authenticate, authorize, then call ``app``.

    Args:
        app: the ASGI app to protect.
        authenticator: identifies callers; ``None`` turns authentication off (every caller
            is ``system:anonymous``), for local experiments only.
        authorizer: decides; ``None`` turns authorization off (every identified caller
            may do anything).
        open_paths: paths served without authentication or authorization; ``/x/*`` opens
            everything below ``/x``.
    """

    def __init__(
        self,
        app: ASGIApp,
        authenticator: Authenticator | None,
        authorizer: Authorizer | None,
        *,
        open_paths: Iterable[str] = DEFAULT_OPEN_PATHS,
    ) -> None:
        self.app = app
        self._authenticator = authenticator
        self._authorizer = authorizer
        paths = tuple(open_paths)
        self._open_exact = frozenset(p for p in paths if not p.endswith("/*"))
        self._open_prefixes = tuple(p[:-1] for p in paths if p.endswith("/*"))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ASGI connection scope."""
        if scope["type"] == "lifespan":
            await self.app(scope, receive, send)
            return
        if scope["type"] != "http":
            # Nothing the adapter serves upgrades to a WebSocket; refuse rather than let a
            # second, unauthenticated code path exist.
            await receive()
            await send({"type": "websocket.close", "code": 1008})
            return
        headers: Sequence[tuple[bytes, bytes]] = scope.get("headers") or []
        path: str = scope.get("path", "")
        scope["headers"] = [(n, v) for n, v in headers if not self._is_identity_header(n)]
        if self._is_open(path):
            await self.app(scope, receive, send)
            return

        user = UserInfo("system:anonymous", groups=("system:unauthenticated",))
        if self._authenticator is not None:
            authentication = await self._authenticator.authenticate(
                headers, client_certificate_chain(scope)
            )
            if authentication.user is None:
                await self._refuse_unauthenticated(scope, send, authentication)
                return
            user = authentication.user

        if self._authorizer is not None:
            attributes = request_attributes(
                scope.get("method", "GET"), path, scope.get("query_string", b"")
            )
            try:
                decision = await self._authorizer.authorize(user, attributes)
            except KubernetesAPIError as exc:
                logger.warning(
                    "authorization check failed",
                    extra={"fields": {"user": user.name, "path": path, "error": str(exc)}},
                )
                await _send_status(
                    send,
                    status_body(
                        503,
                        "the authorization check could not be made (kube-apiserver did not "
                        "answer the SubjectAccessReview); retry shortly",
                    ),
                )
                return
            if not decision.allowed:
                logger.info(
                    "request forbidden",
                    extra={
                        "fields": {
                            "user": user.name,
                            "groups": list(user.groups),
                            "action": attributes.describe(),
                            "reason": decision.reason,
                        }
                    },
                )
                await _send_status(send, _forbidden_status(user, attributes, decision.reason))
                return

        scope["headers"] = [(n, v) for n, v in scope["headers"] if n != _AUTHORIZATION_HEADER]
        state = scope.get("state")
        if not isinstance(state, MutableMapping):
            state = {}
            scope["state"] = state
        state[USER_STATE_KEY] = user
        await self.app(scope, receive, send)

    def _is_identity_header(self, name: bytes) -> bool:
        if name in _DEFAULT_IDENTITY_NAMES or name.startswith(_DEFAULT_IDENTITY_PREFIX):
            return True
        return self._authenticator is not None and self._authenticator.is_identity_header(name)

    def _is_open(self, path: str) -> bool:
        # Dot segments are never "open": a path such as /healthz/../apis/... must not skip
        # the checks on its way to a handler that normalises it.
        segments = path.split("/")
        if "." in segments or ".." in segments:
            return False
        return path in self._open_exact or path.startswith(self._open_prefixes)

    async def _refuse_unauthenticated(
        self, scope: Scope, send: Send, authentication: AuthenticationResult
    ) -> None:
        client = scope.get("client")
        fields = {
            "path": scope.get("path", ""),
            "client": f"{client[0]}:{client[1]}" if client else "",
            "errors": list(authentication.errors),
        }
        if authentication.unavailable:
            logger.warning("authentication could not be checked", extra={"fields": fields})
            await _send_status(
                send,
                status_body(
                    503,
                    "the credentials could not be checked (kube-apiserver did not answer the "
                    "TokenReview); retry shortly",
                ),
            )
            return
        logger.info("request not authenticated", extra={"fields": fields})
        await _send_status(send, status_body(401, "Unauthorized"))


def authenticated_user(request: Any) -> UserInfo | None:
    """The user the middleware authenticated, from a Starlette/FastAPI request or a scope."""
    scope = getattr(request, "scope", request)
    state = scope.get("state") if isinstance(scope, MutableMapping) else None
    user = state.get(USER_STATE_KEY) if isinstance(state, MutableMapping) else None
    return user if isinstance(user, UserInfo) else None


def _forbidden_status(user: UserInfo, attributes: RequestAttributes, reason: str) -> dict[str, Any]:
    details: dict[str, Any] | None = None
    if attributes.is_resource_request:
        details = {"group": attributes.api_group, "kind": attributes.resource}
        if attributes.name:
            details["name"] = attributes.name
    return status_body(403, forbidden_message(user, attributes, reason), details=details)


async def _send_status(send: Send, status: dict[str, Any]) -> None:
    body = json.dumps(status, separators=(",", ":")).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status["code"],
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"cache-control", b"no-cache, private"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
