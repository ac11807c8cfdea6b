"""The few kube-apiserver calls delegated authentication and authorization need, over httpx.

An aggregated API server asks kube-apiserver three things: the
``extension-apiserver-authentication`` ConfigMap (who the front proxy is), TokenReviews
(whose bearer token is this) and SubjectAccessReviews (may this user do that). This module
sends them with an async :class:`httpx.AsyncClient`.

Credentials come from the same places ``kubectl`` and client-go look: the pod's
ServiceAccount when running in a cluster, else a kubeconfig file. The ``kubernetes``
package's loaders read them (exec plugins, inline certificate data and token refresh
included); only the transport is httpx. Every failure is raised as
:class:`KubernetesAPIError`, so callers never see httpx's exception types.
"""

from __future__ import annotations

import json
import os
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from kubepulse.errors import KubepulseError

__all__ = [
    "ClusterConnection",
    "KubernetesAPI",
    "KubernetesAPIError",
    "load_client_configuration",
    "load_cluster_connection",
]

# Written by kubelet into every pod that mounts a ServiceAccount token.
_IN_CLUSTER_ENV = "KUBERNETES_SERVICE_HOST"
# Enough for any review or the ConfigMap; a bigger answer is not kube-apiserver talking.
_MAX_RESPONSE_BYTES = 4 * 1024 * 1024


class KubernetesAPIError(KubepulseError):
    """A call to kube-apiserver failed: unreachable, timed out, refused or answered badly.

    Attributes:
        status: the HTTP status kube-apiserver answered, or ``None`` when there was no answer.
        reason: the ``reason`` of the Status object kube-apiserver sent, if any.
    """

    def __init__(self, message: str, *, status: int | None = None, reason: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class ClusterConnection:
    """Where kube-apiserver is and how to prove who we are to it.

    Attributes:
        host: base URL, ``https://10.0.0.1:443``.
        ssl_context: trusts kube-apiserver's CA and carries a client certificate if the
            credentials have one.
        authorization: returns the ``Authorization`` header value for the next request
            (a bearer token that may be refreshed from disk), or ``None``.
        server_name: TLS server name to verify instead of the host's, when the kubeconfig
            sets ``tls-server-name``.
        description: where the credentials came from, for error messages.
    """

    host: str
    ssl_context: ssl.SSLContext
    authorization: Callable[[], str | None]
    server_name: str | None = None
    description: str = ""


def load_cluster_connection(
    kubeconfig: Path | None = None, *, environ: Mapping[str, str] | None = None
) -> ClusterConnection:
    """Credentials for kube-apiserver: a kubeconfig if given, else in-cluster, else the default.

    With ``kubeconfig`` that file is used. Without, a process in a pod
    (``KUBERNETES_SERVICE_HOST`` set) uses its ServiceAccount token, whose file is re-read
    as kubelet rotates it; anything else uses ``$KUBECONFIG`` or ``~/.kube/config``.

    Raises:
        KubernetesAPIError: the credentials cannot be loaded; the message says from where.
    """
    configuration, description = load_client_configuration(kubeconfig, environ=environ)
    return _connection_from_configuration(configuration, description)


def load_client_configuration(
    kubeconfig: Path | None = None, *, environ: Mapping[str, str] | None = None
) -> tuple[Any, str]:
    """The ``kubernetes.client.Configuration`` :func:`load_cluster_connection` is built from.

    For code that uses the ``kubernetes`` client library itself (pod discovery), with the
    same credentials in the same order. Returns the configuration and where it came from.

    Raises:
        KubernetesAPIError: the credentials cannot be loaded; the message says from where.
    """
    import kubernetes.client  # noqa: PLC0415 - the heavy import is paid only when connecting
    import kubernetes.config  # noqa: PLC0415

    loaders: Any = kubernetes.config
    env = os.environ if environ is None else environ
    configuration: Any = kubernetes.client.Configuration()
    try:
        if kubeconfig is not None:
            description = f"kubeconfig {kubeconfig}"
            loaders.load_kube_config(
                config_file=str(kubeconfig),
                client_configuration=configuration,
                persist_config=False,
            )
        elif env.get(_IN_CLUSTER_ENV):
            description = "the pod's ServiceAccount (in-cluster)"
            loaders.load_incluster_config(client_configuration=configuration)
        else:
            default = env.get("KUBECONFIG", "~/.kube/config")
            description = f"kubeconfig {default}"
            loaders.load_kube_config(client_configuration=configuration, persist_config=False)
    except (loaders.ConfigException, OSError, ValueError) as exc:
        raise KubernetesAPIError(
            f"cannot load Kubernetes credentials from {description}: {exc}; set "
            "kubeconfig (--kubeconfig) to a readable kubeconfig, or run in a pod with a "
            "ServiceAccount token"
        ) from exc
    return configuration, description


def _connection_from_configuration(configuration: Any, description: str) -> ClusterConnection:
    if configuration.verify_ssl:
        context = ssl.create_default_context(cafile=configuration.ssl_ca_cert or None)
    else:
        # Only when the kubeconfig says insecure-skip-tls-verify: the user's explicit choice.
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if configuration.cert_file:
        try:
            context.load_cert_chain(configuration.cert_file, configuration.key_file or None)
        except (OSError, ssl.SSLError) as exc:
            raise KubernetesAPIError(
                f"cannot load the client certificate from {description}: {exc}"
            ) from exc

    def authorization() -> str | None:
        value: str | None = configuration.get_api_key_with_prefix(
            "BearerToken", alias="authorization"
        )
        return value

    return ClusterConnection(
        host=str(configuration.host).rstrip("/"),
        ssl_context=context,
        authorization=authorization,
        server_name=getattr(configuration, "tls_server_name", None) or None,
        description=description,
    )


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
