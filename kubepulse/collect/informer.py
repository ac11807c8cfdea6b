"""A watched, always-current view of the cluster's objects, for long-running collectors.

:class:`ClusterInformer` does what a client-go shared informer does, for the eight kinds
the analyzers read (nodes, pods, namespaces, resourcequotas, autoscaling/v2
horizontalpodautoscalers, and apps/v1 deployments, replicasets and statefulsets): per
kind, one background thread lists in pages, then watches from the list's resourceVersion
with bookmarks, and keeps an :class:`~kubepulse.collect.index.ObjectIndex` (UID -> parsed
object) current. When the resourceVersion expires (410 Gone, on the watch request or as
an ``ERROR`` event) the kind is listed again; when kube-apiserver goes away the thread
reconnects with :class:`kubepulse.watchloop.ExponentialBackoff`, serving the last known
objects meanwhile. All threads share one :class:`~kubepulse.collect.lister.ObjectLister`,
so one :class:`~kubepulse.watchloop.TokenBucket` bounds their requests together.

After the first lists, the load on kube-apiserver is one open watch per kind, whatever
the cluster's size and however often :meth:`ClusterInformer.snapshot` is called: that is
why the adapter's analysis endpoints and the library facade's ``watch`` mode use it
rather than listing on every request.

:meth:`ClusterInformer.snapshot` is a consistent copy: all kinds as of one moment under
one lock, built again only when something changed since the last call.

Once every kind is first listed, the informer moves every object the process holds
into the garbage collector's permanent generation (``gc.freeze()``, once per process).
At 50,000 pods the parsed objects are some 1.7 million tracked containers, and a full
collection walks all of them: 1.5 s measured on the benchmark machine, landing on
whichever request happened to allocate at the time (docs/performance.md, "Analyzers").
Frozen objects are still freed by reference counting when a watch event replaces them;
what freezing gives up is only the collection of reference *cycles* among objects
alive at that moment, and the parsed objects (frozen dataclasses of strings, numbers,
tuples and read-only mappings) form none. Pass ``freeze_after_sync=False`` to keep
the collector's default behaviour.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final

import httpx

from kubepulse.analysis.inputs import ClusterSnapshot
from kubepulse.collect.index import ObjectIndex, WatchOutcome
from kubepulse.collect.lister import (
    DEPLOYMENTS,
    HORIZONTAL_POD_AUTOSCALERS,
    NAMESPACES,
    NODES,
    PODS,
    REPLICA_SETS,
    RESOURCE_QUOTAS,
    STATEFUL_SETS,
    ObjectLister,
    ResourceKind,
)
from kubepulse.collect.workloads import Workload, namespace_and_name
from kubepulse.errors import KubepulseValueError
from kubepulse.kubeconnect import ClusterConnection, KubernetesAPIError
from kubepulse.model import Namespace, Node, Pod, ResourceQuota
from kubepulse.watchloop import ExponentialBackoff

__all__ = ["ClusterInformer"]

LOGGER = logging.getLogger("kubepulse.collect.informer")

_GONE: Final = 410
# A watch that ends this soon without a single event is treated as a failure, so that a
# server (or proxy) that closes watches at once is retried with backoff, not in a loop.
_SHORT_WATCH_SECONDS: Final = 1.0


def _raw(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    """Keep an object as kube-apiserver returned it (HPAs: the analyzers parse them)."""
    return MappingProxyType(dict(obj))


@dataclass
class _Feed:
    """One kind's list+watch loop: what it reads and the index it keeps."""

    kind: ResourceKind
    index: ObjectIndex[Any]
    namespace: str | None
    thread: threading.Thread | None = None
    problem: str | None = None
    lists: int = 0
    expirations: int = 0
    rejected: list[str] = field(default_factory=list)


class ClusterInformer:
    """Lists and watches the analyzers' kinds in background threads; see the module doc.

    Use it as a context manager, or call :meth:`start` and :meth:`close`::

        with ClusterInformer(load_cluster_connection()) as informer:
            if not informer.wait_synced(60):
                raise SystemExit(informer.problems())
            snapshot = informer.snapshot()

    Args:
        connection: where kube-apiserver is and the credentials to use.
        namespace: watch only this namespace's namespaced objects (nodes and namespaces
            are cluster-scoped and always watched whole); ``None`` for all.
        page_size: objects per list page.
        watch_timeout_seconds: how long one watch request lasts before it is renewed
            (kube-apiserver ends it; the informer resumes from its resourceVersion).
        max_requests_per_second: the average rate of all requests of all kinds together.
        timeout: seconds for connecting and for each list page.
        transport: an httpx transport to use instead of the network (tests).
        clock: wall-clock seconds since the epoch, for the snapshot's ``taken_at_ms``.
        freeze_after_sync: after the first complete listing, move the process's objects
            out of the cyclic garbage collector's reach (``gc.freeze()``; see the module
            docstring), once per process.

    RBAC: ``list`` and ``watch`` on each of the eight kinds (docs/analysis/collection.md).
    """

    def __init__(
        self,
        connection: ClusterConnection,
        *,
        namespace: str | None = None,
        page_size: int = 500,
        watch_timeout_seconds: int = 300,
        max_requests_per_second: float = 20.0,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.time,
        freeze_after_sync: bool = True,
    ) -> None:
        if watch_timeout_seconds < 1:
            raise KubepulseValueError(
                f"watch_timeout_seconds must be at least 1, got {watch_timeout_seconds!r}"
            )
        self._lister = ObjectLister(
            connection,
            page_size=page_size,
            timeout=timeout,
            max_requests_per_second=max_requests_per_second,
            transport=transport,
            user_agent="kubepulse-informer",
        )
        self._watch_timeout_seconds = int(watch_timeout_seconds)
        self._clock = clock
        self._freeze_after_sync = freeze_after_sync
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._synced = threading.Event()
        self._started = False
        self._feeds: dict[str, _Feed] = {
            kind.resource: _Feed(
                kind, ObjectIndex(kind.resource, build), namespace if kind.namespaced else None
            )
            for kind, build in (
                (NODES, Node.from_api),
                (PODS, Pod.from_api),
                (NAMESPACES, Namespace.from_api),
                (RESOURCE_QUOTAS, ResourceQuota.from_api),
                (HORIZONTAL_POD_AUTOSCALERS, _raw),
                (DEPLOYMENTS, Workload.builder("Deployment")),
                (REPLICA_SETS, Workload.builder("ReplicaSet")),
                (STATEFUL_SETS, Workload.builder("StatefulSet")),
            )
        }
        self._snapshot_key: tuple[int, ...] | None = None
        self._snapshot: ClusterSnapshot | None = None

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self) -> ClusterInformer:
        self.start()
        return self

    def __exit__(self, *_exc_info: object) -> None:
        self.close()

    def start(self) -> None:
        """Start one daemon thread per kind; a second call does nothing.

        Raises:
            RuntimeError: the informer was closed; make a new one.
        """
        if self._stopping.is_set():
            raise RuntimeError("this ClusterInformer was closed; create a new one")
        if self._started:
            return
        self._started = True
        for feed in self._feeds.values():
            feed.thread = threading.Thread(
                target=self._run, args=(feed,), name=f"kubepulse-informer-{feed.kind.resource}"
            )
            feed.thread.daemon = True
            feed.thread.start()

    def close(self, timeout: float = 5.0) -> None:
        """Stop the threads (open watches are interrupted) and wait for them, at most
        ``timeout`` seconds; idempotent."""
        self._stopping.set()
        self._lister.close()
        deadline = time.monotonic() + timeout
        for feed in self._feeds.values():
            if feed.thread is not None:
                feed.thread.join(max(0.0, deadline - time.monotonic()))

    # ------------------------------------------------------------------ reading

    def synced(self) -> bool:
        """Whether every kind has been listed once."""
        return self._synced.is_set()

    def wait_synced(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for every kind's first list; whether they all came.

        When not, :meth:`problems` says what kept which kind from being listed.
        """
        return self._synced.wait(timeout)

    def problems(self) -> Mapping[str, str]:
        """The last failure of each kind that is failing now (``pods``: the message)."""
        with self._lock:
            return MappingProxyType(
                {name: feed.problem for name, feed in self._feeds.items() if feed.problem}
            )

    def resource_versions(self) -> Mapping[str, str | None]:
        """Where each kind's index is, by resource name (diagnostics and tests)."""
        with self._lock:
            return MappingProxyType(
                {name: feed.index.resource_version for name, feed in self._feeds.items()}
            )

    def list_counts(self) -> Mapping[str, int]:
        """How many times each kind was listed (1 unless it expired or failed)."""
        with self._lock:
            return MappingProxyType({name: feed.lists for name, feed in self._feeds.items()})

    def snapshot(self) -> ClusterSnapshot:
        """The nodes, pods, namespaces and quotas as of now, as one consistent copy.

        Cheap when nothing changed since the last call (the same object is returned);
        otherwise built from the indexes' immutable copies outside the lock.
        """
        with self._lock:
            key = tuple(feed.index.generation for feed in self._feeds.values())
            if self._snapshot is not None and key == self._snapshot_key:
                return self._snapshot
            nodes = self._feeds[NODES.resource].index.items
            pods = self._feeds[PODS.resource].index.items
            namespaces = self._feeds[NAMESPACES.resource].index.items
            quotas = self._feeds[RESOURCE_QUOTAS.resource].index.items
        snapshot = ClusterSnapshot(
            taken_at_ms=int(self._clock() * 1000),
            nodes=tuple(sorted(nodes.values(), key=lambda node: node.name)),
            pods=tuple(sorted(pods.values(), key=lambda pod: (pod.namespace, pod.name))),
            namespaces=tuple(sorted(namespaces.values(), key=lambda ns: ns.name)),
            quotas=tuple(sorted(quotas.values(), key=lambda quota: (quota.namespace, quota.name))),
        )
        with self._lock:
            self._snapshot, self._snapshot_key = snapshot, key
        return snapshot

    def autoscalers(self) -> tuple[Mapping[str, Any], ...]:
        """The HorizontalPodAutoscalers as ``autoscaling/v2`` dicts, by namespace and name.

        Parse one with :meth:`kubepulse.model.HorizontalPodAutoscaler.from_api`.
        """
        with self._lock:
            items = self._feeds[HORIZONTAL_POD_AUTOSCALERS.resource].index.items
        return tuple(sorted(items.values(), key=namespace_and_name))

    def workloads(self) -> tuple[Workload, ...]:
        """The Deployments, ReplicaSets and StatefulSets, by kind, namespace and name."""
        with self._lock:
            found = [
                workload
                for kind in (DEPLOYMENTS, REPLICA_SETS, STATEFUL_SETS)
                for workload in self._feeds[kind.resource].index.items.values()
            ]
        return tuple(sorted(found, key=lambda workload: workload.key))

    # ------------------------------------------------------------------ the loops

    def _run(self, feed: _Feed) -> None:
        backoff = ExponentialBackoff()
        while not self._stopping.is_set():
            try:
                if feed.index.needs_relist:
                    self._list(feed)
                if self._watch(feed):
                    backoff.reset()
            except KubernetesAPIError as error:
                if self._stopping.is_set():
                    break
                if error.status == _GONE:
                    self._expired(feed, str(error))
                    continue
                if self._pause(feed, backoff, str(error)):
                    break
            except Exception as exc:  # the thread must outlive any bug
                if self._stopping.is_set():
                    break
                LOGGER.exception("informer: %s: unexpected error", feed.kind.resource)
                if self._pause(feed, backoff, f"unexpected {type(exc).__name__}: {exc}"):
                    break

    def _pause(self, feed: _Feed, backoff: ExponentialBackoff, problem: str) -> bool:
        """Record and log a failure (once per failing spell), then wait; True when stopping."""
        delay = backoff.next_delay()
        with self._lock:
            first = feed.problem is None
            feed.problem = problem
        LOGGER.log(
            logging.WARNING if first else logging.DEBUG,
            "informer: %s: %s; retrying in %.1f s",
            feed.kind.resource,
            problem,
            delay,
        )
        return self._stopping.wait(delay)

    def _list(self, feed: _Feed) -> None:
        result = self._lister.list(feed.kind, namespace=feed.namespace)
        with self._lock:
            rejected = feed.index.replace(result.items, result.resource_version)
            feed.lists += 1
            feed.rejected = list(rejected)
            recovered = feed.problem is not None
            feed.problem = None
            self._check_synced()
        if rejected:
            LOGGER.warning(
                "informer: %s: skipped %d object(s) that cannot be read, e.g. %s",
                feed.kind.resource,
                len(rejected),
                rejected[0],
            )
        LOGGER.log(
            logging.INFO if recovered or feed.lists == 1 else logging.DEBUG,
            "informer: %s: listed %d in %d page(s) at resourceVersion %s",
            feed.kind.resource,
            len(result.items),
            result.pages,
            result.resource_version,
        )

    def _watch(self, feed: _Feed) -> bool:
        """One watch, until kube-apiserver ends it; True when it worked (backoff resets)."""
        resource_version = feed.index.resource_version or ""
        started = time.monotonic()
        events = 0
        with self._lister.watch(
            feed.kind,
            resource_version,
            namespace=feed.namespace,
            timeout_seconds=self._watch_timeout_seconds,
        ) as lines:
            with self._lock:
                feed.problem = None
            for line in lines:
                if self._stopping.is_set():
                    return False
                events += 1
                with self._lock:
                    outcome = feed.index.apply_line(line)
                    problem = feed.index.last_problem
                if outcome is WatchOutcome.EXPIRED:
                    self._expired(feed, problem or "410 Gone")
                    return True
                if outcome is WatchOutcome.ERROR:
                    raise KubernetesAPIError(
                        f"the {feed.kind.resource} watch ended with an error: {problem}"
                    )
                if outcome in (WatchOutcome.INVALID_EVENT, WatchOutcome.INVALID_OBJECT):
                    LOGGER.warning(
                        "informer: %s: skipped an event: %s", feed.kind.resource, problem
                    )
        if events == 0 and time.monotonic() - started < _SHORT_WATCH_SECONDS:
            if self._stopping.is_set():
                return False
            raise KubernetesAPIError(
                f"kube-apiserver ended the {feed.kind.resource} watch at once, without any "
                "event; is a proxy between kubepulse and kube-apiserver closing long requests?"
            )
        return True

    def _expired(self, feed: _Feed, detail: str) -> None:
        with self._lock:
            feed.index.mark_expired()
            feed.expirations += 1
        LOGGER.info(
            "informer: %s: resourceVersion %s expired (%s); listing again",
            feed.kind.resource,
            feed.index.resource_version,
            detail,
        )

    def _check_synced(self) -> None:
        if all(feed.index.synced for feed in self._feeds.values()):
            if self._freeze_after_sync and not self._synced.is_set():
                _freeze_once()
            self._synced.set()


_frozen = threading.Lock()
_frozen_already: list[bool] = []


def _freeze_once() -> None:
    """``gc.collect()`` then ``gc.freeze()``, the first time any informer syncs.

    The collection first, so that garbage already unreachable is not frozen with the
    rest; later informers (a monitor reconnecting) find the bulk already frozen.
    """
    with _frozen:
        if _frozen_already:
            return
        _frozen_already.append(True)
    started = time.perf_counter()
    gc.collect()
    gc.freeze()
    LOGGER.info(
        "informer: froze %d objects out of the garbage collector's reach in %.0f ms",
        gc.get_freeze_count(),
        (time.perf_counter() - started) * 1000,
    )
