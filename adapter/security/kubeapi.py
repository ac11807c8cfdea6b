"""The few kube-apiserver calls delegated authentication and authorization need, over httpx.

An aggregated API server asks kube-apiserver three things: the
``extension-apiserver-authentication`` ConfigMap (who the front proxy is), TokenReviews
(whose bearer token is this) and SubjectAccessReviews (may this user do that). This module
sends them with an async :class:`httpx.AsyncClient`.

Credentials are loaded by :mod:`kubepulse.kubeconnect` (the pod's ServiceAccount in a
cluster, else a kubeconfig), which this module re-exports; only the transport is here.
Every failure is raised as :class:`KubernetesAPIError`, so callers never see httpx's
exception types.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import httpx

# Credentials and their errors live in kubepulse (the CLI and the library connect too);
# they are re-exported here for the adapter's modules and tests that import them from here.
from kubepulse.kubeconnect import (
    ClusterConnection,
    KubernetesAPIError,
    load_client_configuration,
    load_cluster_connection,
)

__all__ = [
    "ClusterConnection",
    "KubernetesAPI",
    "KubernetesAPIError",
    "load_client_configuration",
    "load_cluster_connection",
]

# Enough for any review or the ConfigMap; a bigger answer is not kube-apiserver talking.
_MAX_RESPONSE_BYTES = 4 * 1024 * 1024


class KubernetesAPI:
    """An async client for the handful of kube-apiserver calls the adapter's security makes.

    Args:
        connection: where and as whom to connect.
        timeout: seconds for each call; a review that takes longer fails rather than
            holding the request that waits for it.
        transport: an httpx transport to use instead of the network (tests pass an
            ``httpx.MockTransport``).
    """

    def __init__(
        self,
        connection: ClusterConnection,
        *,
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._connection = connection
        self._client = httpx.AsyncClient(
            base_url=connection.host,
            verify=connection.ssl_context,
            timeout=httpx.Timeout(timeout),
            transport=transport,
            trust_env=False,
            headers={"Accept": "application/json", "User-Agent": "kubepulse-adapter"},
        )

    @property
    def description(self) -> str:
        """Where the credentials came from, for messages."""
        return self._connection.description

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._client.aclose()

    async def get(self, path: str) -> dict[str, Any]:
        """GET ``path`` and return the decoded object."""
        return await self._request("GET", path, None)

    async def create(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """POST ``body`` to ``path`` (a create) and return the object kube-apiserver answers."""
        return await self._request("POST", path, body)

    async def _request(
        self, method: str, path: str, body: Mapping[str, Any] | None
    ) -> dict[str, Any]:
        headers: dict[str, str] = {}
        authorization = self._connection.authorization()
        if authorization:
            headers["Authorization"] = authorization
        content = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            content = json.dumps(body, separators=(",", ":")).encode()
        extensions = (
            {"sni_hostname": self._connection.server_name} if self._connection.server_name else {}
        )
        try:
            response = await self._client.request(
                method, path, content=content, headers=headers, extensions=extensions
            )
        except httpx.TimeoutException as exc:
            raise KubernetesAPIError(
                f"{method} {path}: kube-apiserver at {self._connection.host} did not answer in time"
            ) from exc
        except httpx.HTTPError as exc:
            raise KubernetesAPIError(
                f"{method} {path}: cannot reach kube-apiserver at {self._connection.host}: {exc}"
            ) from exc
        if len(response.content) > _MAX_RESPONSE_BYTES:
            raise KubernetesAPIError(
                f"{method} {path}: kube-apiserver answered {len(response.content)} bytes, more "
                "than any review or ConfigMap needs",
                status=response.status_code,
            )
        decoded = _decode(response)
        if response.status_code >= 300:
            message = str(decoded.get("message", "")) if decoded else response.text[:200]
            reason = str(decoded.get("reason", "")) if decoded else ""
            raise KubernetesAPIError(
                f"{method} {path}: kube-apiserver answered {response.status_code}"
                f"{' ' + reason if reason else ''}: {message or '(no message)'}"
                f"{_permission_hint(response.status_code, path)}",
                status=response.status_code,
                reason=reason,
            )
        if decoded is None:
            raise KubernetesAPIError(
                f"{method} {path}: kube-apiserver answered {response.status_code} without a "
                "JSON object",
                status=response.status_code,
            )
        return decoded


def _decode(response: httpx.Response) -> dict[str, Any] | None:
    try:
        decoded = response.json()
    except ValueError:
        return None
    return decoded if isinstance(decoded, dict) else None


def _permission_hint(status: int, path: str) -> str:
    """What to grant when kube-apiserver refuses one of the adapter's own calls."""
    if status == 401:
        return "; the adapter's own credentials were rejected: check its ServiceAccount token"
    if status != 403:
        return ""
    if "tokenreviews" in path or "subjectaccessreviews" in path:
        return (
            "; bind the adapter's ServiceAccount to the ClusterRole system:auth-delegator "
            "(see docs/security.md)"
        )
    if "extension-apiserver-authentication" in path:
        return (
            "; bind the adapter's ServiceAccount to the Role "
            "extension-apiserver-authentication-reader in kube-system (see docs/security.md)"
        )
    return ""
