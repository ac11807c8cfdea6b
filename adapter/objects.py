"""Which Kubernetes objects a metrics request is about, and which pods stand behind them.

A custom metrics request names a group-resource (``pods``, ``deployments.apps``,
``nodes``, ``namespaces``...) and an object name or ``*`` with a ``labelSelector``. An
:class:`ObjectResolver` turns that into :class:`ResolvedObject` values: the object to
describe in the answer and, for pods and workloads, the pods whose series make up its
value:

- ``pods``: by name, or every pod of the namespace matching the selector;
- ``deployments.apps``, ``statefulsets.apps``, ``replicasets.apps``: the workload by
  name (or every one matching the selector), and the pods of its namespace matched by
  its ``spec.selector``, which is how the HPA's scale subresource picks them too;
- ``nodes`` (cluster-scoped) and ``namespaces``: the objects themselves; their series are
  found by the ``node`` and ``namespace`` labels.

Pods that have finished (phase ``Succeeded`` or ``Failed``) are not considered: they no
longer produce metrics and the HPA ignores them. A named object that does not exist is
:class:`ObjectNotFoundError` (404); a selector matching nothing is an empty list.

Two implementations share the resolution rules (:class:`_ResolverBase`):

- :class:`KubernetesObjectResolver` keeps every running pod's name and labels in memory,
  from a metadata-only list and watch of kube-apiserver run as an asyncio task (an
  informer, without the ``kubernetes`` client's threads), and reads workloads, nodes and
  namespaces with GETs cached for a few seconds;
- :class:`InMemoryObjectResolver` answers from object dicts it is given (tests, demos).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import time
import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final, Protocol, runtime_checkable

import httpx

from adapter.security.kubeapi import ClusterConnection
from kubepulse.errors import KubepulseError, KubepulseValueError
from kubepulse.selector import LabelSelector, SelectorError

__all__ = [
    "DEPLOYMENTS",
    "NAMESPACES",
    "NODES",
    "PODS",
    "REPLICASETS",
    "RESOURCE_TYPES",
    "STATEFULSETS",
    "InMemoryObjectResolver",
    "KubernetesObjectResolver",
    "ObjectNotFoundError",
    "ObjectRef",
    "ObjectResolver",
    "ObjectsUnavailableError",
    "ResolvedObject",
    "ResourceType",
    "UnknownResourceError",
    "parse_resource",
]

logger = logging.getLogger("adapter.objects")

_FINISHED_PHASES: Final = frozenset({"Succeeded", "Failed"})
_RUNNING_PODS_FIELD_SELECTOR: Final = "status.phase!=Succeeded,status.phase!=Failed"
# Ask kube-apiserver for metadata only (as client-go's metadata informers do): a pod's
# spec and status are ten times its metadata, and only names and labels are needed.
_METADATA_LIST: Final = (
    "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"
)
_METADATA_OBJECT: Final = (
    "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json"
)
_GONE: Final = 410
# The shortest time between two pod lists.
_MIN_RELIST_INTERVAL_S: Final = 1.0
# Workload, node and namespace reads kept at once; expired ones are dropped beyond it.
_MAX_CACHED_READS: Final = 4096


@dataclass(frozen=True)
class ResourceType:
    """A kind of object the custom metrics API describes."""

    resource: str
    """The plural resource name: ``pods``, ``deployments``."""
    group: str
    """The API group, ``""`` for the core group."""
    version: str
    """The version to describe objects with: ``v1``."""
    kind: str
    """The object kind: ``Pod``, ``Deployment``."""
    namespaced: bool
    """Whether objects live in a namespace."""
    workload: bool = False
    """Whether the value is computed over the pods its ``spec.selector`` matches."""

    @property
    def group_resource(self) -> str:
        """``pods``, ``deployments.apps``: the name used in paths and discovery."""
        return f"{self.resource}.{self.group}" if self.group else self.resource

    @property
    def api_version(self) -> str:
        """``v1``, ``apps/v1``: the ``apiVersion`` of the objects."""
        return f"{self.group}/{self.version}" if self.group else self.version

    def collection_path(self, namespace: str | None) -> str:
        """The kube-apiserver path listing these objects (in ``namespace``)."""
        prefix = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace is not None:
            prefix += f"/namespaces/{_segment(namespace)}"
        return f"{prefix}/{self.resource}"


PODS: Final = ResourceType("pods", "", "v1", "Pod", namespaced=True)
NODES: Final = ResourceType("nodes", "", "v1", "Node", namespaced=False)
NAMESPACES: Final = ResourceType("namespaces", "", "v1", "Namespace", namespaced=False)
DEPLOYMENTS: Final = ResourceType("deployments", "apps", "v1", "Deployment", True, workload=True)
STATEFULSETS: Final = ResourceType("statefulsets", "apps", "v1", "StatefulSet", True, workload=True)
REPLICASETS: Final = ResourceType("replicasets", "apps", "v1", "ReplicaSet", True, workload=True)
RESOURCE_TYPES: Final = (PODS, DEPLOYMENTS, STATEFULSETS, REPLICASETS, NAMESPACES, NODES)
"""Every resource the adapter serves metrics for."""

# The group-resource names, and the bare plurals of the apps resources (no other group
# has them since extensions/v1beta1 went away).
_BY_NAME: Final[Mapping[str, ResourceType]] = {
    **{resource.group_resource: resource for resource in RESOURCE_TYPES},
    **{resource.resource: resource for resource in RESOURCE_TYPES},
}


class UnknownResourceError(KubepulseError):
    """The request names a resource the adapter has no metrics for (404)."""

    def __init__(self, resource: str) -> None:
        self.resource = resource
        known = ", ".join(resource.group_resource for resource in RESOURCE_TYPES)
        super().__init__(
            f"the resource {resource!r} has no custom metrics here; the resources served "
            f"are {known}"
        )


class ObjectNotFoundError(KubepulseError):
    """A named object does not exist (404)."""

    def __init__(self, resource: ResourceType, name: str, namespace: str | None) -> None:
        self.resource = resource
        self.name = name
        self.namespace = namespace
        where = f" in namespace {namespace!r}" if resource.namespaced and namespace else ""
        super().__init__(f'{resource.group_resource} "{name}" not found{where}')


class ObjectsUnavailableError(KubepulseError):
    """The objects cannot be looked up now: kube-apiserver is unreachable or refuses (503)."""


def parse_resource(text: str) -> ResourceType:
    """The resource named ``text`` (``pods``, ``deployments.apps``, ``deployments``...).

    Raises:
        UnknownResourceError: no metrics are served for that resource.
    """
    resource = _BY_NAME.get(text)
    if resource is None:
        raise UnknownResourceError(text)
    return resource


@dataclass(frozen=True)
class ObjectRef:
    """An object, as the ``describedObject`` of a metric value names it."""

    resource: ResourceType
    name: str
    namespace: str | None = None


@dataclass(frozen=True)
class ResolvedObject:
    """An object a request is about, and the pods behind it."""

    ref: ObjectRef
    """The object to describe."""
    pods: frozenset[str] | None = None
    """For a pod, its own name; for a workload, its pods (in ``ref.namespace``); for
    nodes and namespaces ``None``: their series are found by their own label."""


@runtime_checkable
class ObjectResolver(Protocol):
    """Looks up the objects of a request."""

    async def resolve(
        self,
        resource: ResourceType,
        namespace: str | None,
        name: str | None,
        selector: LabelSelector,
    ) -> list[ResolvedObject]:
        """The object ``name`` (``selector`` ignored), or with ``name`` ``None`` every object
        of ``resource`` (in ``namespace`` when namespaced) whose labels match ``selector``,
        sorted by name.

        Raises:
            ObjectNotFoundError: ``name`` does not exist.
            ObjectsUnavailableError: the objects cannot be looked up now.
        """
        ...

    async def ready(self) -> bool:
        """Whether lookups can be answered (the pod cache is filled)."""
        ...


@dataclass(frozen=True)
class _ObjectInfo:
    """What resolution needs of a workload, node or namespace."""

    name: str
    labels: Mapping[str, str]
    pod_selector: LabelSelector | None = None
    """A workload's ``spec.selector``; ``None`` when it has none (it then has no pods)."""


class _ResolverBase:
    """The resolution rules, over four lookups an implementation provides."""

    async def _pods_in(self, namespace: str) -> Mapping[str, Mapping[str, str]]:
        """Name -> labels of the running pods of ``namespace``."""
        raise NotImplementedError

    async def _get(
        self, resource: ResourceType, namespace: str | None, name: str
    ) -> _ObjectInfo | None:
        """One workload, node or namespace; ``None`` when it does not exist."""
        raise NotImplementedError

    async def _list(
        self, resource: ResourceType, namespace: str | None, selector: LabelSelector
    ) -> list[_ObjectInfo]:
        """The workloads, nodes or namespaces matching ``selector``."""
        raise NotImplementedError

    async def resolve(
        self,
        resource: ResourceType,
        namespace: str | None,
        name: str | None,
        selector: LabelSelector,
    ) -> list[ResolvedObject]:
        """See :meth:`ObjectResolver.resolve`."""
        scope = namespace if resource.namespaced else None
        if resource.namespaced and scope is None:
            raise KubepulseValueError(
                f"{resource.group_resource} are namespaced; a namespace is needed to look them up"
            )
        if resource is PODS:
            assert scope is not None
            pods = await self._pods_in(scope)
            if name is not None:
                if name not in pods:
                    raise ObjectNotFoundError(resource, name, scope)
                return [ResolvedObject(ObjectRef(resource, name, scope), frozenset({name}))]
            return [
                ResolvedObject(ObjectRef(resource, pod, scope), frozenset({pod}))
                for pod, labels in sorted(pods.items())
                if selector.matches(labels)
            ]
        if name is not None:
            found = await self._get(resource, scope, name)
            if found is None:
                raise ObjectNotFoundError(resource, name, scope)
            infos = [found]
        else:
            infos = sorted(await self._list(resource, scope, selector), key=lambda i: i.name)
        if not resource.workload:
            return [ResolvedObject(ObjectRef(resource, info.name, scope)) for info in infos]
        assert scope is not None
        pods = await self._pods_in(scope)
        resolved = []
        for info in infos:
            pod_selector = info.pod_selector
            members = (
                frozenset()
                if pod_selector is None
                else frozenset(pod for pod, labels in pods.items() if pod_selector.matches(labels))
            )
            resolved.append(ResolvedObject(ObjectRef(resource, info.name, scope), members))
        return resolved


def _labels_of(metadata: Mapping[str, Any]) -> dict[str, str]:
    labels = metadata.get("labels") or {}
    if not isinstance(labels, Mapping):
        return {}
    return {str(key): str(value) for key, value in labels.items()}


def _info_from(obj: Mapping[str, Any], resource: ResourceType) -> _ObjectInfo | None:
    """The :class:`_ObjectInfo` of an API object dict; ``None`` if it has no name."""
    metadata = obj.get("metadata") or {}
    name = metadata.get("name") if isinstance(metadata, Mapping) else None
    if not isinstance(name, str) or not name:
        return None
    pod_selector: LabelSelector | None = None
    if resource.workload:
        spec = obj.get("spec") or {}
        raw_selector = spec.get("selector") if isinstance(spec, Mapping) else None
        if isinstance(raw_selector, Mapping):
            try:
                pod_selector = LabelSelector.from_api(raw_selector)
            except SelectorError:
                logger.warning(
                    "ignoring a workload with an unreadable selector",
                    extra={"fields": {"kind": resource.kind, "name": name}},
                )
            # An empty selector would match every pod of the namespace; apps/v1 refuses
            # it, so treat one (from an old object) as matching nothing.
            if pod_selector is not None and pod_selector.is_empty:
                pod_selector = None
    return _ObjectInfo(name, _labels_of(metadata), pod_selector)


# ---------------------------------------------------------------------- in memory


class InMemoryObjectResolver(_ResolverBase):
    """An :class:`ObjectResolver` over object dicts given to it, as the API returns them.

    Args:
        objects: Pods, Deployments, StatefulSets, ReplicaSets, Nodes and Namespaces as
            plain API dicts (``kind``, ``metadata``, ``spec``, ``status``). Other kinds
            are ignored.
    """

    def __init__(self, objects: Iterable[Mapping[str, Any]] = ()) -> None:
        self._objects: dict[tuple[str, str | None, str], Mapping[str, Any]] = {}
        self.replace(objects)

    def replace(self, objects: Iterable[Mapping[str, Any]]) -> None:
        """Forget every object and hold ``objects`` instead."""
        kinds = {resource.kind: resource for resource in RESOURCE_TYPES}
        self._objects = {}
        for obj in objects:
            resource = kinds.get(str(obj.get("kind")))
            metadata = obj.get("metadata") or {}
            name = metadata.get("name")
            if resource is None or not isinstance(name, str):
                continue
            namespace = metadata.get("namespace") if resource.namespaced else None
            self._objects[(resource.kind, namespace, name)] = obj

    async def ready(self) -> bool:
        """Always ready."""
        return True

    async def _pods_in(self, namespace: str) -> Mapping[str, Mapping[str, str]]:
        return {
            name: _labels_of(obj.get("metadata") or {})
            for (kind, pod_namespace, name), obj in self._objects.items()
            if kind == PODS.kind
            and pod_namespace == namespace
            and (obj.get("status") or {}).get("phase") not in _FINISHED_PHASES
        }

    async def _get(
        self, resource: ResourceType, namespace: str | None, name: str
    ) -> _ObjectInfo | None:
        obj = self._objects.get((resource.kind, namespace, name))
        return None if obj is None else _info_from(obj, resource)

    async def _list(
        self, resource: ResourceType, namespace: str | None, selector: LabelSelector
    ) -> list[_ObjectInfo]:
        infos = []
        for (kind, object_namespace, _), obj in self._objects.items():
            if kind != resource.kind or object_namespace != namespace:
                continue
            info = _info_from(obj, resource)
            if info is not None and selector.matches(info.labels):
                infos.append(info)
        return infos


# ---------------------------------------------------------------------- Kubernetes


class _WatchExpiredError(Exception):
    """The watch's resource version is too old (410 Gone): list again."""


class KubernetesObjectResolver(_ResolverBase):
    """An :class:`ObjectResolver` backed by kube-apiserver.

    The running pods of the cluster are kept in memory by a list and watch (metadata
    only, finished pods filtered out by a field selector) that :meth:`start` runs as an
    asyncio task: it lists in pages, watches from the list's resource version with
    bookmarks, lists again when the version expires (410 Gone) and reconnects with a
    capped backoff when kube-apiserver goes away, serving the last known pods meanwhile.
    Workloads, nodes and namespaces are read with GETs, reused for ``cache_ttl_s``.

    Use it as an async context manager, or call :meth:`start` and :meth:`aclose`::

        async with KubernetesObjectResolver(load_cluster_connection()) as objects:
            await objects.wait_until_synced(30)
            ...

    Args:
        connection: where kube-apiserver is and the credentials to use
            (:func:`adapter.security.kubeapi.load_cluster_connection`).
        request_timeout_s: the longest one GET or list page may take.
        cache_ttl_s: how long a workload, node or namespace read is reused.
        watch_timeout_s: how long one watch request lasts before it is renewed.
        page_size: pods per list page.
        transport: an httpx transport to use instead of the network (tests).
        monotonic: the clock the read cache ages by, in seconds (tests).

    RBAC: ``get``, ``list`` and ``watch`` on pods; ``get`` and ``list`` on deployments,
    statefulsets and replicasets (``apps``), nodes and namespaces.
    """

    def __init__(
        self,
        connection: ClusterConnection,
        *,
        request_timeout_s: float = 10.0,
        cache_ttl_s: float = 5.0,
        watch_timeout_s: int = 300,
        page_size: int = 500,
        transport: httpx.AsyncBaseTransport | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._connection = connection
        self._request_timeout_s = request_timeout_s
        self._cache_ttl_s = cache_ttl_s
        self._watch_timeout_s = watch_timeout_s
        self._page_size = page_size
        self._monotonic = monotonic
        self._client = httpx.AsyncClient(
            base_url=connection.host,
            verify=connection.ssl_context,
            timeout=httpx.Timeout(request_timeout_s),
            transport=transport,
            trust_env=False,
            headers={"User-Agent": "kubepulse-adapter"},
        )
        self._pods: dict[str, dict[str, dict[str, str]]] = {}
        self._synced = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._cache: dict[tuple[str, str], tuple[float, Any]] = {}
        self.resource_version = ""
        """The resource version the pod cache is at (for tests and diagnostics)."""

    async def __aenter__(self) -> KubernetesObjectResolver:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def start(self) -> None:
        """Start keeping the pod cache (call from the event loop that will serve)."""
        if self._task is None:
            self._task = asyncio.create_task(self._keep_pods(), name="kubepulse-pod-watch")

    async def wait_until_synced(self, timeout_s: float) -> None:
        """Wait until the first pod list is in.

        Raises:
            ObjectsUnavailableError: not within ``timeout_s`` seconds.
        """
        try:
            await asyncio.wait_for(self._synced.wait(), timeout_s)
        except asyncio.TimeoutError:
            raise ObjectsUnavailableError(
                f"the pods could not be listed from kube-apiserver at {self._connection.host} "
                f"within {timeout_s:g} s; check that it is reachable and that the adapter may "
                "list and watch pods"
            ) from None

    async def aclose(self) -> None:
        """Stop the watch and close the connections."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._client.aclose()

    async def ready(self) -> bool:
        """Whether the pod cache has been filled once."""
        return self._synced.is_set()

    # ------------------------------------------------------------------ lookups

    async def _pods_in(self, namespace: str) -> Mapping[str, Mapping[str, str]]:
        if not self._synced.is_set():
            raise ObjectsUnavailableError(
                "the pod cache is not filled yet (kube-apiserver has not answered the first "
                "pod list); retry in a moment"
            )
        return self._pods.get(namespace, {})

    async def _get(
        self, resource: ResourceType, namespace: str | None, name: str
    ) -> _ObjectInfo | None:
        path = f"{resource.collection_path(namespace)}/{_segment(name)}"
        # Workloads are read whole for their spec.selector; of the rest, metadata suffices.
        accept = "application/json" if resource.workload else _METADATA_OBJECT
        obj = await self._cached_get(path, {}, accept=accept)
        return _info_from(obj, resource) if isinstance(obj, Mapping) else None

    async def _list(
        self, resource: ResourceType, namespace: str | None, selector: LabelSelector
    ) -> list[_ObjectInfo]:
        params = {} if selector.is_empty else {"labelSelector": str(selector)}
        accept = "application/json" if resource.workload else _METADATA_LIST
        answer = await self._cached_get(resource.collection_path(namespace), params, accept=accept)
        items = answer.get("items") if isinstance(answer, Mapping) else None
        infos = []
        for item in items if isinstance(items, list) else []:
            info = _info_from(item, resource) if isinstance(item, Mapping) else None
            if info is not None:
                infos.append(info)
        return infos

    async def _cached_get(self, path: str, params: Mapping[str, str], *, accept: str) -> Any:
        """:meth:`_get_json`, reusing an answer younger than the cache TTL."""
        key = (path, urllib.parse.urlencode(sorted(params.items())))
        now = self._monotonic()
        cached = self._cache.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
        answer = await self._get_json(path, params, accept=accept)
        if len(self._cache) >= _MAX_CACHED_READS:
            self._cache = {k: v for k, v in self._cache.items() if v[0] > now}
        self._cache[key] = (now + self._cache_ttl_s, answer)
        return answer

    async def _get_json(self, path: str, params: Mapping[str, str], *, accept: str) -> Any:
        """GET ``path``; the decoded answer, ``None`` for 404.

        Raises:
            ObjectsUnavailableError: no answer, or an error status other than 404.
        """
        try:
            response = await self._client.get(
                path, params=params, headers=self._headers(accept), extensions=self._extensions
            )
        except httpx.HTTPError as exc:
            raise ObjectsUnavailableError(
                f"cannot read {path} from kube-apiserver at {self._connection.host}: {exc!r}"
            ) from exc
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise ObjectsUnavailableError(_refusal(path, response))
        try:
            return response.json()
        except ValueError as exc:
            raise ObjectsUnavailableError(
                f"kube-apiserver answered {path} with something that is not JSON"
            ) from exc

    def _headers(self, accept: str) -> dict[str, str]:
        headers = {"Accept": accept}
        authorization = self._connection.authorization()
        if authorization:
            headers["Authorization"] = authorization
        return headers

    @property
    def _extensions(self) -> dict[str, Any]:
        server_name = self._connection.server_name
        return {"sni_hostname": server_name} if server_name else {}

    # ------------------------------------------------------------------ the pod cache

    async def _keep_pods(self) -> None:
        loop = asyncio.get_running_loop()
        backoff_s = 0.5
        last_list_s = -math.inf
        while True:
            try:
                # client-go relists at once after a 410; pace it anyway, so that a server
                # that keeps refusing watches is not flooded with lists.
                await asyncio.sleep(max(0.0, last_list_s + _MIN_RELIST_INTERVAL_S - loop.time()))
                last_list_s = loop.time()
                await self._list_pods()
                self._synced.set()
                backoff_s = 0.5
                while True:
                    started_s = loop.time()
                    await self._watch_pods()
                    if loop.time() - started_s < 1.0:
                        # A watch that ends at once would otherwise spin; pace it.
                        await asyncio.sleep(1.0)
            except _WatchExpiredError:
                logger.info("the pod watch expired; listing the pods again")
            except Exception as exc:  # the cache must outlive any one failure
                logger.warning(
                    "the pod watch failed; retrying",
                    extra={"fields": {"error": str(exc), "retry_in_s": backoff_s}},
                )
                await asyncio.sleep(backoff_s)
                backoff_s = min(backoff_s * 2, 30.0)

    async def _list_pods(self) -> None:
        pods: dict[str, dict[str, dict[str, str]]] = {}
        params = {"limit": str(self._page_size), "fieldSelector": _RUNNING_PODS_FIELD_SELECTOR}
        while True:
            answer = await self._get_json("/api/v1/pods", params, accept=_METADATA_LIST)
            if not isinstance(answer, Mapping):
                raise ObjectsUnavailableError("kube-apiserver answered the pod list with nothing")
            for item in answer.get("items") or []:
                _store_pod(pods, item)
            metadata = answer.get("metadata") or {}
            continue_token = metadata.get("continue")
            if not continue_token:
                break
            params = {**params, "continue": str(continue_token)}
        self._pods = pods
        self.resource_version = str(metadata.get("resourceVersion", ""))

    async def _watch_pods(self) -> None:
        """Apply one watch request's events until kube-apiserver ends it."""
        params = {
            "watch": "true",
            "allowWatchBookmarks": "true",
            "resourceVersion": self.resource_version,
            "timeoutSeconds": str(self._watch_timeout_s),
            "fieldSelector": _RUNNING_PODS_FIELD_SELECTOR,
        }
        timeout = httpx.Timeout(self._request_timeout_s, read=self._watch_timeout_s + 30.0)
        async with self._client.stream(
            "GET",
            "/api/v1/pods",
            params=params,
            headers=self._headers(_METADATA_OBJECT),
            timeout=timeout,
            extensions=self._extensions,
        ) as response:
            if response.status_code == _GONE:
                raise _WatchExpiredError
            if response.status_code != 200:
                await response.aread()
                raise ObjectsUnavailableError(_refusal("/api/v1/pods?watch=true", response))
            async for line in response.aiter_lines():
                if line.strip():
                    self._apply_event(json.loads(line))

    def _apply_event(self, event: Mapping[str, Any]) -> None:
        kind = event.get("type")
        obj = event.get("object") or {}
        if kind == "ERROR":
            if obj.get("code") == _GONE:
                raise _WatchExpiredError
            raise ObjectsUnavailableError(
                f"the pod watch reported an error: {obj.get('message', obj)}"
            )
        metadata = obj.get("metadata") or {}
        version = metadata.get("resourceVersion")
        if kind in {"ADDED", "MODIFIED"}:
            _store_pod(self._pods, obj)
        elif kind == "DELETED":
            namespace_pods = self._pods.get(str(metadata.get("namespace")))
            if namespace_pods is not None:
                namespace_pods.pop(str(metadata.get("name")), None)
                if not namespace_pods:
                    del self._pods[str(metadata.get("namespace"))]
        if version:
            self.resource_version = str(version)


def _store_pod(pods: dict[str, dict[str, dict[str, str]]], obj: Mapping[str, Any]) -> None:
    metadata = obj.get("metadata") or {}
    name = metadata.get("name")
    namespace = metadata.get("namespace")
    if isinstance(name, str) and isinstance(namespace, str):
        pods.setdefault(namespace, {})[name] = _labels_of(metadata)


def _segment(text: str) -> str:
    """``text`` as one URL path segment."""
    return urllib.parse.quote(text, safe="")


def _refusal(path: str, response: httpx.Response) -> str:
    """Why kube-apiserver refused ``path``, and what to grant when it is RBAC."""
    try:
        body = response.json()
        message = str(body.get("message", "")) if isinstance(body, Mapping) else ""
    except ValueError:
        message = response.text[:200]
    hint = ""
    if response.status_code == 403:
        hint = (
            "; grant the adapter's ServiceAccount get, list and watch on pods and get and "
            "list on nodes, namespaces and apps deployments, statefulsets and replicasets"
        )
    return f"kube-apiserver answered {response.status_code} to {path}: {message}{hint}"
