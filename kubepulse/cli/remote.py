"""Asking the adapter's analysis API through kube-apiserver, as ``kubectl get --raw`` does.

kube-apiserver proxies ``/apis/analysis.kubepulse.io/...`` to the adapter once its
APIService is registered, with the caller's own identity and RBAC, so the CLI needs
nothing but the user's kubeconfig. Failures come back as ``Status`` objects; this
module turns them into :class:`AnalysisApiError` with what to do next.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

import httpx

from kubepulse.analysis.resources import GROUP, GROUP_VERSION, VERSION, Analysis
from kubepulse.errors import KubepulseError
from kubepulse.kubeconnect import ClusterConnection

__all__ = ["AnalysisApiError", "analysis_path", "fetch_analysis"]

_APISERVICE: Final = f"{VERSION}.{GROUP}"
_MAX_ANSWER_BYTES: Final = 256 * 1024 * 1024


class AnalysisApiError(KubepulseError):
    """The analysis API refused or failed a request; the message says what to do."""


def analysis_path(analysis: Analysis, namespace: str | None, name: str | None) -> str:
    """The API path of one analysis request."""
    where = f"namespaces/{namespace}/" if namespace else ""
    tail = f"/{name}" if name else ""
    return f"/apis/{GROUP_VERSION}/{where}{analysis.resource}{tail}"


def fetch_analysis(
    connection: ClusterConnection,
    analysis: Analysis,
    *,
    namespace: str | None,
    name: str | None,
    params: Mapping[str, str],
    timeout: float,
) -> dict[str, Any]:
    """The adapter's answer to one analysis request, as a JSON document.

    Raises:
        AnalysisApiError: kube-apiserver or the adapter refused or failed the request.
    """
    path = analysis_path(analysis, namespace, name)
    headers = {"Accept": "application/json", "User-Agent": "kubectl-pulse"}
    authorization = connection.authorization()
    if authorization:
        headers["Authorization"] = authorization
    extensions = {"sni_hostname": connection.server_name} if connection.server_name else {}
    try:
        with httpx.Client(
            base_url=connection.host,
            verify=connection.ssl_context,
            timeout=httpx.Timeout(timeout),
            trust_env=False,
        ) as client:
            response = client.get(path, params=dict(params), headers=headers, extensions=extensions)
    except httpx.TimeoutException as exc:
        raise AnalysisApiError(
            f"GET {path}: no answer within {timeout:g} s; raise --request-timeout for large "
            "clusters"
        ) from exc
    except httpx.HTTPError as exc:
        raise AnalysisApiError(
            f"cannot reach kube-apiserver at {connection.host} ({connection.description}): "
            f"{exc}; check the kubeconfig's server and that the cluster is up"
        ) from exc
    if len(response.content) > _MAX_ANSWER_BYTES:
        raise AnalysisApiError(f"GET {path}: the answer is larger than {_MAX_ANSWER_BYTES} bytes")
    try:
        document = response.json()
    except json.JSONDecodeError:
        document = None
    if response.status_code >= 300 or not isinstance(document, dict):
        raise AnalysisApiError(_explain(response.status_code, path, document))
    return document


def _explain(code: int, path: str, document: object) -> str:
    message = ""
    if isinstance(document, dict):
        message = str(document.get("message") or "")
    told = f": {message}" if message else ""
    if code == 404 and (not message or "could not find the requested resource" in message):
        return (
            f"the analysis API is not available at {path} ({code}{told}); is the kubepulse "
            f"adapter installed? Check `kubectl get apiservice {_APISERVICE}`, or run the "
            "analysis in-process with --local"
        )
    if code == 503:
        return (
            f"the kubepulse adapter cannot answer now ({code}{told}); check "
            f"`kubectl get apiservice {_APISERVICE}` and the adapter's pods, or use --local"
        )
    if code in (401, 403):
        return (
            f"kube-apiserver refused the request ({code}{told}); your user needs `list` (or "
            f"`get`) on the {GROUP} resources: see docs/security.md for the ClusterRole"
        )
    return f"GET {path}: {code}{told or ' (no Status message)'}"
