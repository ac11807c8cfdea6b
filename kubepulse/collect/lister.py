"""Paged LISTs, single GETs and WATCH requests to kube-apiserver, over httpx, for the collectors.

Everything the analyzers read from the cluster goes through :class:`ObjectLister`:

- :meth:`ObjectLister.list` reads one kind in pages of ``limit`` objects, following the
  ``continue`` token, so kube-apiserver never has to build (and we never have to hold in
  one response) a 50,000-pod answer. When a continue token expires (410 Gone: the list
  took longer than etcd keeps its revision, five minutes by default) the list starts
  again from the first page, as client-go's pager does; after a few restarts it falls
  back to one unpaged list, which kube-apiserver serves from its watch cache.
- :meth:`ObjectLister.get` reads one object (``None`` when it does not exist);
- :meth:`ObjectLister.watch` opens a watch from a resourceVersion, with bookmarks, and
  yields its JSON lines as they arrive (:func:`kubepulse.watchloop.iter_lines`).

Every request first takes a token from a :class:`kubepulse.watchloop.TokenBucket`, so a
collector never sends more than its configured rate whatever it is asked to do.
Responses stay raw JSON (dicts): :mod:`kubepulse.model`'s ``from_api`` builds the typed
objects about ten times faster than the ``kubernetes`` client's model classes would.

Failures are :class:`kubepulse.kubeconnect.KubernetesAPIError` with what to do next: the
RBAC verb and resource to grant for a 403, the kubeconfig's server to check when the
connection is refused.
"""

from __future__ import annotations

import contextlib
import json
import threading
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

import httpx

from kubepulse.errors import KubepulseValueError
from kubepulse.kubeconnect import ClusterConnection, KubernetesAPIError
from kubepulse.watchloop import TokenBucket, iter_lines

__all__ = [
    "DEPLOYMENTS",
    "HORIZONTAL_POD_AUTOSCALERS",
    "NAMESPACES",
    "NODES",
    "PODS",
    "REPLICA_SETS",
    "RESOURCE_KINDS",
    "RESOURCE_QUOTAS",
    "STATEFUL_SETS",
    "ListResult",
    "ObjectLister",
    "ResourceKind",
]

_GONE: Final = 410
_DEFAULT_PAGE_SIZE: Final = 500
# Restarts of a paged list whose continue token expired before one unpaged list.
_PAGED_RESTARTS: Final = 2
# How much longer than the server-side timeoutSeconds a watch read may take.
_WATCH_READ_GRACE_SECONDS: Final = 30.0


@dataclass(frozen=True, slots=True)
class ResourceKind:
    """A kind of object the collectors read: where it is served and what it is called."""

    resource: str
    """The plural resource name: ``pods``, ``horizontalpodautoscalers``."""
    kind: str
    """The object kind: ``Pod``."""
    group: str
    """The API group, ``""`` for the core group."""
    version: str
    """The API version to read: ``v1``, ``v2``."""
    namespaced: bool
    """Whether objects live in a namespace."""

    @property
    def group_version(self) -> str:
        """``v1``, ``apps/v1``: the ``apiVersion`` of the objects."""
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_resource(self) -> str:
        """``pods``, ``deployments.apps``: how RBAC rules and kubectl name it."""
        return f"{self.resource}.{self.group}" if self.group else self.resource

    def collection_path(self, namespace: str | None = None) -> str:
        """The path that lists these objects (in ``namespace`` when given and namespaced)."""
        prefix = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace is not None:
            prefix += f"/namespaces/{_segment(namespace)}"
        return f"{prefix}/{self.resource}"


NODES: Final = ResourceKind("nodes", "Node", "", "v1", namespaced=False)
PODS: Final = ResourceKind("pods", "Pod", "", "v1", namespaced=True)
NAMESPACES: Final = ResourceKind("namespaces", "Namespace", "", "v1", namespaced=False)
RESOURCE_QUOTAS: Final = ResourceKind("resourcequotas", "ResourceQuota", "", "v1", namespaced=True)
HORIZONTAL_POD_AUTOSCALERS: Final = ResourceKind(
    "horizontalpodautoscalers", "HorizontalPodAutoscaler", "autoscaling", "v2", namespaced=True
)
DEPLOYMENTS: Final = ResourceKind("deployments", "Deployment", "apps", "v1", namespaced=True)
REPLICA_SETS: Final = ResourceKind("replicasets", "ReplicaSet", "apps", "v1", namespaced=True)
STATEFUL_SETS: Final = ResourceKind("statefulsets", "StatefulSet", "apps", "v1", namespaced=True)
RESOURCE_KINDS: Final = (
    NODES,
    PODS,
    NAMESPACES,
    RESOURCE_QUOTAS,
    HORIZONTAL_POD_AUTOSCALERS,
    DEPLOYMENTS,
    REPLICA_SETS,
    STATEFUL_SETS,
)
"""Every kind the collectors read; RBAC needs ``list`` and ``watch`` on each."""


@dataclass(frozen=True, slots=True)
class ListResult:
    """One complete list of a kind."""

    kind: ResourceKind
    """What was listed."""
    items: tuple[Mapping[str, Any], ...]
    """The objects, as kube-apiserver returned them (list items carry no ``kind``)."""
    resource_version: str
    """The list's ``metadata.resourceVersion``: where a watch of the same kind starts."""
    pages: int
    """Requests it took, restarts included."""
    restarts: int = 0
    """How often an expired continue token made the list start again."""


class ObjectLister:
    """Reads objects from kube-apiserver: paged lists, single GETs and watches.

    Thread-safe: the informer's threads share one. Use it as a context manager or call
    :meth:`close`.

    Args:
        connection: where kube-apiserver is and the credentials to use
            (:func:`kubepulse.kubeconnect.load_cluster_connection`).
        page_size: objects per list page (``limit``).
        timeout: seconds for connecting and for each list page or GET.
        max_requests_per_second: the average rate of all requests together; bursts of
            up to one second's worth (at least 10) go out at once.
        transport: an httpx transport to use instead of the network (tests pass an
            ``httpx.MockTransport``).
        user_agent: the ``User-Agent`` kube-apiserver logs and audits.

    Raises:
        KubepulseValueError: ``page_size`` or ``timeout`` is not positive.
    """

    def __init__(
        self,
        connection: ClusterConnection,
        *,
        page_size: int = _DEFAULT_PAGE_SIZE,
        timeout: float = 30.0,
        max_requests_per_second: float = 20.0,
        transport: httpx.BaseTransport | None = None,
        user_agent: str = "kubepulse-collector",
    ) -> None:
        if page_size < 1:
            raise KubepulseValueError(f"page_size must be at least 1, got {page_size!r}")
        if not timeout > 0:
            raise KubepulseValueError(f"timeout must be positive seconds, got {timeout!r}")
        self._connection = connection
        self._page_size = page_size
        self._timeout = float(timeout)
        self._bucket = TokenBucket(
            max_requests_per_second, burst=max(10.0, max_requests_per_second)
        )
        self._client = httpx.Client(
            base_url=connection.host,
            verify=connection.ssl_context,
            timeout=httpx.Timeout(timeout),
            transport=transport,
            trust_env=False,
            headers={"Accept": "application/json", "User-Agent": user_agent},
        )
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._open: set[httpx.Response] = set()
        self.requests = 0
        """Requests sent so far (lists pages, GETs and watches), for figures and tests."""

    @property
    def connection(self) -> ClusterConnection:
        """Where the requests go."""
        return self._connection

    @property
    def page_size(self) -> int:
        """Objects per list page."""
        return self._page_size

    def __enter__(self) -> ObjectLister:
        return self

    def __exit__(self, *_exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Interrupt open watches and waits and close the connections; idempotent."""
        self._closed.set()
        with self._lock:
            responses = list(self._open)
        for response in responses:
            with contextlib.suppress(Exception):
                response.close()
        self._client.close()

    # ------------------------------------------------------------------ lists

    def list(
        self,
        kind: ResourceKind,
        *,
        namespace: str | None = None,
        field_selector: str | None = None,
        label_selector: str | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> ListResult:
        """Every object of ``kind`` (in ``namespace``), read in pages.

        ``progress`` is called after each page with the number of objects read so far
        (it starts again from zero when the list restarts).

        Raises:
            KubernetesAPIError: kube-apiserver is unreachable or refuses; the message says
                what to do (the RBAC rule to grant, the kubeconfig server to check).
        """
        params: dict[str, str] = {}
        if field_selector:
            params["fieldSelector"] = field_selector
        if label_selector:
            params["labelSelector"] = label_selector
        path = kind.collection_path(namespace)
        pages = 0
        for restart in range(_PAGED_RESTARTS + 1):
            items: list[Mapping[str, Any]] = []
            continue_token: str | None = None
            while True:
                page_params = {**params, "limit": str(self._page_size)}
                if continue_token:
                    page_params["continue"] = continue_token
                pages += 1
                try:
                    page = self._get_json(path, page_params, kind=kind, namespace=namespace)
                except KubernetesAPIError as error:
                    if error.status == _GONE and continue_token:
                        break  # the continue token expired: start again from page one
                    raise
                assert page is not None  # 404 raises for collections
                items.extend(_items(page, path))
                if progress is not None:
                    progress(len(items))
                metadata = _mapping(page.get("metadata"))
                continue_token = str(metadata.get("continue") or "") or None
                if continue_token is None:
                    return ListResult(
                        kind,
                        tuple(items),
                        str(metadata.get("resourceVersion") or ""),
                        pages,
                        restart,
                    )
        # Every paged attempt outlived etcd's compaction: read it whole, from the cache.
        pages += 1
        page = self._get_json(path, params, kind=kind, namespace=namespace)
        assert page is not None
        items = list(_items(page, path))
        if progress is not None:
            progress(len(items))
        metadata = _mapping(page.get("metadata"))
        return ListResult(
            kind,
            tuple(items),
            str(metadata.get("resourceVersion") or ""),
            pages,
            _PAGED_RESTARTS + 1,
        )

    def nodes(self) -> ListResult:
        """Every Node."""
        return self.list(NODES)

    def pods(
        self, namespace: str | None = None, *, field_selector: str | None = None
    ) -> ListResult:
        """Every Pod (of ``namespace``), optionally filtered by ``field_selector``
        (``spec.nodeName=node-1``, ``status.phase!=Succeeded``)."""
        return self.list(PODS, namespace=namespace, field_selector=field_selector)

    def namespaces(self) -> ListResult:
        """Every Namespace."""
        return self.list(NAMESPACES)

    def resource_quotas(self, namespace: str | None = None) -> ListResult:
        """Every ResourceQuota (of ``namespace``)."""
        return self.list(RESOURCE_QUOTAS, namespace=namespace)

    def horizontal_pod_autoscalers(self, namespace: str | None = None) -> ListResult:
        """Every HorizontalPodAutoscaler (of ``namespace``), as ``autoscaling/v2``."""
        return self.list(HORIZONTAL_POD_AUTOSCALERS, namespace=namespace)

    def deployments(self, namespace: str | None = None) -> ListResult:
        """Every ``apps/v1`` Deployment (of ``namespace``)."""
        return self.list(DEPLOYMENTS, namespace=namespace)

    def replica_sets(self, namespace: str | None = None) -> ListResult:
        """Every ``apps/v1`` ReplicaSet (of ``namespace``)."""
        return self.list(REPLICA_SETS, namespace=namespace)

    def stateful_sets(self, namespace: str | None = None) -> ListResult:
        """Every ``apps/v1`` StatefulSet (of ``namespace``)."""
        return self.list(STATEFUL_SETS, namespace=namespace)

    # ------------------------------------------------------------------ single objects

    def get(self, path: str) -> dict[str, Any] | None:
        """The object at ``path`` (``/api/v1/namespaces/default/pods/web``); ``None`` for 404.

        Raises:
            KubernetesAPIError: kube-apiserver is unreachable or refuses.
        """
        return self._get_json(path, {}, kind=None, namespace=None, missing_ok=True)

    # ------------------------------------------------------------------ watches

    @contextlib.contextmanager
    def watch(
        self,
        kind: ResourceKind,
        resource_version: str,
        *,
        namespace: str | None = None,
        field_selector: str | None = None,
        timeout_seconds: int = 300,
    ) -> Iterator[Iterator[bytes]]:
        """Open a watch of ``kind`` from ``resource_version``; yields its lines as they come.

        Bookmarks are asked for, so the resourceVersion keeps moving on a quiet kind and
        a reconnect rarely finds it expired. kube-apiserver ends the watch after
        ``timeout_seconds``; the lines then simply stop.

        Raises:
            KubernetesAPIError: the watch was refused; ``status`` 410 means
                ``resource_version`` is too old and the kind must be listed again.
        """
        params = {
            "watch": "1",
            "allowWatchBookmarks": "true",
            "resourceVersion": resource_version,
            "timeoutSeconds": str(int(timeout_seconds)),
        }
        if field_selector:
            params["fieldSelector"] = field_selector
        path = kind.collection_path(namespace)
        timeout = httpx.Timeout(self._timeout, read=timeout_seconds + _WATCH_READ_GRACE_SECONDS)
        self._acquire()
        request = self._client.build_request(
            "GET",
            path,
            params=params,
            headers=self._headers(),
            timeout=timeout,
            extensions=self._extensions(),
        )
        response = self._send(request, stream=True)
        with self._lock:
            self._open.add(response)
        try:
            if response.status_code != 200:
                response.read()
                raise self._refusal(response, path, kind, namespace, verb="watch")
            yield self._lines(response)
        finally:
            with self._lock:
                self._open.discard(response)
            response.close()

    def _lines(self, response: httpx.Response) -> Iterator[bytes]:
        try:
            yield from iter_lines(response.iter_bytes())
        except httpx.HTTPError as exc:
            if self._closed.is_set():
                return
            raise KubernetesAPIError(
                f"the watch of {response.request.url.path} broke off: {exc!r}; it is "
                "resumed from the last resourceVersion seen"
            ) from exc

    # ------------------------------------------------------------------ plumbing

    def _acquire(self) -> None:
        while True:
            if self._closed.is_set():
                raise KubernetesAPIError("the collector was closed; create a new one")
            wait = self._bucket.try_acquire()
            if wait <= 0:
                return
            self._closed.wait(wait)

    def _headers(self) -> dict[str, str]:
        authorization = self._connection.authorization()
        return {"Authorization": authorization} if authorization else {}

    def _extensions(self) -> dict[str, Any]:
        server_name = self._connection.server_name
        return {"sni_hostname": server_name} if server_name else {}

    def _send(self, request: httpx.Request, *, stream: bool) -> httpx.Response:
        where = f"kube-apiserver at {self._connection.host}"
        source = self._connection.description or "the kubeconfig"
        with self._lock:
            self.requests += 1
        try:
            return self._client.send(request, stream=stream)
        except httpx.TimeoutException as exc:
            raise KubernetesAPIError(
                f"GET {request.url.path}: {where} did not answer within {self._timeout:g} s; "
                "check that the cluster is up, or allow a longer timeout for a large cluster"
            ) from exc
        except httpx.HTTPError as exc:
            if self._closed.is_set():
                raise KubernetesAPIError("the collector was closed; create a new one") from exc
            raise KubernetesAPIError(
                f"GET {request.url.path}: cannot reach {where}: {exc}; check the server "
                f"address in {source} (`kubectl config view --minify`) and that the "
                "cluster is up"
            ) from exc

    def _get_json(
        self,
        path: str,
        params: Mapping[str, str],
        *,
        kind: ResourceKind | None,
        namespace: str | None,
        missing_ok: bool = False,
    ) -> dict[str, Any] | None:
        self._acquire()
        request = self._client.build_request(
            "GET", path, params=params, headers=self._headers(), extensions=self._extensions()
        )
        response = self._send(request, stream=False)
        if response.status_code == 404 and missing_ok:
            return None
        if response.status_code != 200:
            raise self._refusal(response, path, kind, namespace, verb="list" if kind else "get")
        try:
            decoded = json.loads(response.content)
        except ValueError as exc:
            raise KubernetesAPIError(
                f"GET {path}: kube-apiserver answered with something that is not JSON; is "
                f"{self._connection.host} really kube-apiserver?",
                status=response.status_code,
            ) from exc
        if not isinstance(decoded, dict):
            raise KubernetesAPIError(
                f"GET {path}: kube-apiserver answered with a JSON {type(decoded).__name__}, "
                "not an object",
                status=response.status_code,
            )
        return decoded

    def _refusal(
        self,
        response: httpx.Response,
        path: str,
        kind: ResourceKind | None,
        namespace: str | None,
        *,
        verb: str,
    ) -> KubernetesAPIError:
        """The error for a non-200 answer, with what to do about it."""
        status = response.status_code
        message, reason = _status_message(response)
        told = f": {message}" if message else ""
        prefix = f"{verb} {path}: kube-apiserver answered {status}{' ' + reason if reason else ''}"
        if status == 401:
            hint = (
                f"; the credentials from {self._connection.description or 'the kubeconfig'} "
                "were rejected: log in again or refresh the token"
            )
        elif status == 403 and kind is not None:
            scope = (
                f"in namespace {namespace!r}" if namespace and kind.namespaced else "cluster-wide"
            )
            group = f'"{kind.group}"' if kind.group else '"" (core)'
            hint = (
                f"; your user or ServiceAccount may not {verb} {kind.group_resource} {scope}: "
                f"grant the verbs list and watch on {kind.resource} in API group {group} "
                "(see docs/analysis/collection.md for the ClusterRole)"
            )
        elif status == 403:
            hint = "; your user or ServiceAccount may not get it: grant get on that resource"
        elif status == 404 and kind is not None:
            hint = (
                f"; kube-apiserver does not serve {kind.group_version} {kind.resource}"
                + (
                    " (autoscaling/v2 needs Kubernetes 1.23 or newer)"
                    if kind is HORIZONTAL_POD_AUTOSCALERS
                    else ""
                )
                + (f", or namespace {namespace!r} does not exist" if namespace else "")
            )
        elif status == _GONE:
            hint = "; the resourceVersion is too old: list again"
        else:
            hint = ""
        return KubernetesAPIError(f"{prefix}{told}{hint}", status=status, reason=reason)


def _status_message(response: httpx.Response) -> tuple[str, str]:
    """The ``message`` and ``reason`` of the Status object kube-apiserver answered."""
    try:
        body = json.loads(response.content)
    except ValueError:
        return response.text[:200].strip(), ""
    if not isinstance(body, Mapping):
        return "", ""
    return str(body.get("message") or ""), str(body.get("reason") or "")


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _items(page: Mapping[str, Any], path: str) -> list[Mapping[str, Any]]:
    items = page.get("items")
    if items is None:
        return []
    if not isinstance(items, list):
        raise KubernetesAPIError(f"GET {path}: the list's items are not an array")
    return items


def _segment(text: str) -> str:
    """``text`` as one URL path segment."""
    return urllib.parse.quote(text, safe="")
