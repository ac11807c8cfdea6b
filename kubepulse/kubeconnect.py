"""Where kube-apiserver is and how to prove who we are to it, for every kubepulse client.

Credentials come from the same places ``kubectl`` and client-go look: the pod's
ServiceAccount when running in a cluster, else a kubeconfig file (``--kubeconfig``,
``$KUBECONFIG`` or ``~/.kube/config``) and one of its contexts. The ``kubernetes``
package's loaders read them (exec plugins, inline certificate data and token refresh
included); the transport is httpx, set up from the :class:`ClusterConnection` this
module returns.

It lives in :mod:`kubepulse` (not in the adapter) because the library facade, the
``kubectl pulse`` CLI and the collectors of :mod:`kubepulse.collect` connect too, and
``kubepulse`` may not import ``adapter``. Every failure is raised as
:class:`KubernetesAPIError`, so callers never see httpx's or the loaders' exception types.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, TypeAlias

from kubepulse.errors import KubepulseError

__all__ = [
    "ClusterConnection",
    "KubeconfigPath",
    "KubernetesAPIError",
    "current_namespace",
    "load_client_configuration",
    "load_cluster_connection",
]

KubeconfigPath: TypeAlias = str | os.PathLike[str]
"""A kubeconfig file's path, as a string or a :class:`~pathlib.Path`."""

# Written by kubelet into every pod that mounts a ServiceAccount token.
_IN_CLUSTER_ENV: Final = "KUBERNETES_SERVICE_HOST"
# The namespace of the pod's ServiceAccount, mounted next to its token.
_SERVICE_ACCOUNT_NAMESPACE: Final = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
_DEFAULT_KUBECONFIG: Final = "~/.kube/config"
_DEFAULT_NAMESPACE: Final = "default"


class KubernetesAPIError(KubepulseError):
    """A call to kube-apiserver failed: unreachable, timed out, refused or answered badly.

    Also raised when the credentials to call it with cannot be loaded.

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
    kubeconfig: KubeconfigPath | None = None,
    context: str | None = None,
    *,
    environ: Mapping[str, str] | None = None,
) -> ClusterConnection:
    """Credentials for kube-apiserver: a kubeconfig if given, else in-cluster, else the default.

    With ``kubeconfig`` that file is used, at ``context`` (its current context when
    ``None``). Without, a process in a pod (``KUBERNETES_SERVICE_HOST`` set) uses its
    ServiceAccount token, whose file is re-read as kubelet rotates it, unless a
    ``context`` is asked for; anything else uses ``$KUBECONFIG`` or ``~/.kube/config``.

    Raises:
        KubernetesAPIError: the credentials cannot be loaded, or ``context`` is not in the
            kubeconfig; the message says from where, and which contexts there are.
    """
    configuration, description = load_client_configuration(
        kubeconfig, context=context, environ=environ
    )
    return _connection_from_configuration(configuration, description)


def load_client_configuration(
    kubeconfig: KubeconfigPath | None = None,
    *,
    context: str | None = None,
    environ: Mapping[str, str] | None = None,
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
    config_file = _kubeconfig_file(kubeconfig, context, env)
    if config_file is None:
        description = "the pod's ServiceAccount (in-cluster)"
    else:
        description = f"kubeconfig {config_file}"
        if context is not None:
            description += f", context {context!r}"
    try:
        if config_file is None:
            loaders.load_incluster_config(client_configuration=configuration)
        else:
            if context is not None:
                _check_context(config_file, context)
            loaders.load_kube_config(
                config_file=config_file,
                context=context,
                client_configuration=configuration,
                persist_config=False,
            )
    except (loaders.ConfigException, OSError, ValueError) as exc:
        raise KubernetesAPIError(
            f"cannot load Kubernetes credentials from {description}: {exc}; set "
            "kubeconfig (--kubeconfig) to a readable kubeconfig, or run in a pod with a "
            "ServiceAccount token"
        ) from exc
    return configuration, description


def current_namespace(
    kubeconfig: KubeconfigPath | None = None,
    context: str | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    service_account_namespace: Path = _SERVICE_ACCOUNT_NAMESPACE,
) -> str:
    """The namespace commands default to, as ``kubectl`` picks it.

    From a kubeconfig (chosen as :func:`load_cluster_connection` chooses it): the
    ``namespace`` of ``context`` (of the current context when ``None``), ``"default"``
    when the context sets none. In a pod: the ServiceAccount's namespace, read from
    ``service_account_namespace``.

    Raises:
        KubernetesAPIError: the kubeconfig cannot be read, ``context`` is not in it, or the
            ServiceAccount's namespace file cannot be read.
    """
    env = os.environ if environ is None else environ
    config_file = _kubeconfig_file(kubeconfig, context, env)
    if config_file is None:
        try:
            namespace = service_account_namespace.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise KubernetesAPIError(
                f"cannot read the pod's namespace from {service_account_namespace}: {exc}; "
                "mount the ServiceAccount token, or pass the namespace explicitly"
            ) from exc
        return namespace or _DEFAULT_NAMESPACE
    import kubernetes.config  # noqa: PLC0415

    loaders: Any = kubernetes.config
    try:
        contexts, active = loaders.list_kube_config_contexts(config_file=config_file)
    except (loaders.ConfigException, OSError, ValueError) as exc:
        raise KubernetesAPIError(
            f"cannot read the contexts of kubeconfig {config_file}: {exc}; set kubeconfig "
            "(--kubeconfig) to a readable kubeconfig"
        ) from exc
    if context is None:
        chosen = active
    else:
        chosen = next((item for item in contexts if item.get("name") == context), None)
        if chosen is None:
            raise _unknown_context(config_file, context, contexts)
    if not isinstance(chosen, Mapping):
        return _DEFAULT_NAMESPACE
    settings = chosen.get("context")
    configured = settings.get("namespace") if isinstance(settings, Mapping) else None
    return str(configured) if configured else _DEFAULT_NAMESPACE


def _kubeconfig_file(
    kubeconfig: KubeconfigPath | None, context: str | None, env: Mapping[str, str]
) -> str | None:
    """The kubeconfig to read (``$KUBECONFIG`` may list several), or ``None`` for in-cluster."""
    if kubeconfig is not None:
        return os.fspath(kubeconfig)
    if env.get(_IN_CLUSTER_ENV) and context is None:
        return None
    return env.get("KUBECONFIG") or os.path.expanduser(_DEFAULT_KUBECONFIG)


def _check_context(config_file: str, context: str) -> None:
    """Raise :class:`KubernetesAPIError` naming the contexts there are if ``context`` is not one.

    The loader's own error ("Expected key context in kube-config") does not say which
    contexts exist, which is what the user needs to fix the flag.
    """
    import kubernetes.config  # noqa: PLC0415

    loaders: Any = kubernetes.config
    contexts, _ = loaders.list_kube_config_contexts(config_file=config_file)
    if not any(item.get("name") == context for item in contexts or ()):
        raise _unknown_context(config_file, context, contexts or [])


def _unknown_context(
    config_file: str, context: str, contexts: list[Mapping[str, Any]]
) -> KubernetesAPIError:
    names = sorted(str(item.get("name")) for item in contexts if item.get("name"))
    known = ", ".join(repr(name) for name in names) if names else "none"
    return KubernetesAPIError(
        f"the context {context!r} is not in kubeconfig {config_file}; its contexts are "
        f"{known} (see `kubectl config get-contexts`)"
    )


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
