"""This node's pods and Node object from the API server: a list, then a watch.

:class:`NodePodWatcher` is the exporter's cluster-backed :class:`~exporter.metadata.MetadataSource`.
It asks the API server only about its own node, as the DaemonSet's RBAC allows and as
kubelet-scale load demands:

- LIST ``/api/v1/pods?fieldSelector=spec.nodeName=<node>``, then WATCH from the list's
  resourceVersion with ``allowWatchBookmarks=true``; every event is applied to a local
  cache keyed by pod UID, and the cache's resourceVersion follows events and bookmarks,
  so a watch that ends (the server closes it every ``watch_timeout_seconds``) resumes
  where it stopped instead of listing again;
- a resourceVersion the server no longer has (``410 Gone``: as the status of the watch
  request, or, as kube-apiserver does it, as an ``ERROR`` event with code 410) starts a
  new list; any other failure is retried with capped exponential backoff and jitter;
- GET ``/api/v1/nodes/<node>`` every ``node_refresh_seconds`` for capacity and
  allocatable;
- one token bucket limits all of these requests together to
  ``max_requests_per_second``.

The collector reads :meth:`NodePodWatcher.current`, which returns the newest immutable
:class:`~exporter.metadata.ClusterView` without waiting on anything: an API server that
is down or slow costs the collector nothing, and every request carries a timeout so that
the background threads notice it too. Failures are counted by reason in
:attr:`ClusterView.errors <exporter.metadata.ClusterView.errors>`:

========== ============================================================================
reason     counted when
========== ============================================================================
``list``   listing the pods failed (connection, timeout, HTTP error, unreadable body)
``watch``  starting or reading the watch failed, or it ended with a non-410 ``ERROR``
``gone``   the watch's resourceVersion had expired (410): the pods are listed again
``node``   reading the Node object failed
``decode`` an answer or a watch line was not JSON, or not the expected shape
``object`` the object model rejected a pod or the Node (the object is skipped)
========== ============================================================================

Objects are read from the API server's raw JSON with :mod:`kubepulse.model`; building the
``kubernetes`` client's model classes would cost more than ten times as much per pod.

The decisions are kept apart from the I/O so that they can be tested without a server:
:class:`PodCache` (events, resourceVersion, when to list again), :class:`TokenBucket` and
:class:`ExponentialBackoff` take data and a clock and return data. :func:`load_api_client`
builds the client: in-cluster credentials inside a pod, a kubeconfig otherwise.

Logging goes to the ``kubepulse.exporter.podwatch`` logger, one line per change of state
(listing, synced, expired, failing, recovered, stopped), never one per event.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from decimal import Decimal
from enum import Enum
from types import MappingProxyType
from typing import Any, Final, cast

import kubernetes.client
import kubernetes.config
import urllib3
from kubernetes.client.exceptions import ApiException
from kubernetes.config.incluster_config import (
    SERVICE_HOST_ENV_NAME,
    SERVICE_PORT_ENV_NAME,
    InClusterConfigLoader,
)

from exporter.metadata import ClusterView, MetadataMode, MetadataSource
from kubepulse.collect.index import ObjectIndex, WatchOutcome
from kubepulse.errors import KubepulseError, KubepulseValueError
from kubepulse.model import EPHEMERAL_STORAGE, MEMORY, Node, ObjectError, Pod
from kubepulse.quantity import format_quantity
from kubepulse.watchloop import ExponentialBackoff, TokenBucket, iter_lines

__all__ = [
    "ERROR_DECODE",
    "ERROR_GONE",
    "ERROR_LIST",
    "ERROR_NODE",
    "ERROR_OBJECT",
    "ERROR_WATCH",
    "SERVICE_ACCOUNT_DIR",
    "ApiClientConfigError",
    "EventOutcome",
    "NodePodWatcher",
    "PodCache",
    "RelistResult",
    "load_api_client",
    "outcome_error_reason",
]

LOGGER: Final = logging.getLogger("kubepulse.exporter.podwatch")

ERROR_LIST: Final = "list"
"""Listing the node's pods failed."""
ERROR_WATCH: Final = "watch"
"""Starting or reading the watch failed, or the server ended it with an error."""
ERROR_GONE: Final = "gone"
"""The watch's resourceVersion had expired (410 Gone); the pods are listed again."""
ERROR_NODE: Final = "node"
"""Reading the Node object failed."""
ERROR_DECODE: Final = "decode"
"""An answer or a watch line was not JSON, or not the expected shape (a list without a
resourceVersion, a line that is no watch event)."""
ERROR_OBJECT: Final = "object"
"""The object model rejected a pod or the Node; the object was skipped."""

SERVICE_ACCOUNT_DIR: Final = "/var/run/secrets/kubernetes.io/serviceaccount"
"""Where the kubelet mounts a pod's ServiceAccount token and the cluster's CA."""

_HTTP_GONE: Final = 410
# A watch that ends this quickly without a single event is treated as a failure, so that
# a server that accepts and closes watches at once does not make the watcher spin.
_SHORT_WATCH_SECONDS: Final = 1.0
# Seconds to wait for a TCP connection and TLS handshake; capped by the request timeout.
_CONNECT_TIMEOUT_SECONDS: Final = 5.0
# The read timeout of a watch exceeds its server-side timeout by this much, so that the
# server, not the client, normally ends a quiet watch.
_WATCH_READ_GRACE_SECONDS: Final = 30.0
_BYTE_RESOURCES: Final = frozenset({MEMORY, EPHEMERAL_STORAGE})


class ApiClientConfigError(KubepulseError):
    """No usable credentials for the Kubernetes API; the message says what to provide."""


# ---------------------------------------------------------------------------- pure parts


EventOutcome = WatchOutcome
"""What applying one watch event did to a :class:`PodCache` (the library's outcomes)."""

_ERROR_REASONS: Final[Mapping[WatchOutcome, str]] = MappingProxyType(
    {
        WatchOutcome.INVALID_EVENT: ERROR_DECODE,
        WatchOutcome.INVALID_OBJECT: ERROR_OBJECT,
        WatchOutcome.EXPIRED: ERROR_GONE,
        WatchOutcome.ERROR: ERROR_WATCH,
    }
)


def outcome_error_reason(outcome: EventOutcome) -> str | None:
    """The ``errors`` reason an outcome is counted under, or None when it is no error."""
    return _ERROR_REASONS.get(outcome)


@dataclass(frozen=True, slots=True)
class RelistResult:
    """What :meth:`PodCache.replace` kept and skipped."""

    pods: int
    """Pods now in the cache."""
    rejected: tuple[str, ...] = ()
    """Why each skipped item was skipped, one message per item."""


def _metadata(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    metadata = obj.get("metadata")
    return metadata if isinstance(metadata, Mapping) else MappingProxyType({})


def _optional_text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


class PodCache:
    """A node's pods by UID, kept current by a list and then watch events.

    Pure: it takes the API server's parsed JSON and returns what happened; the watcher
    does the I/O. The bookkeeping is the library's
    :class:`~kubepulse.collect.index.ObjectIndex`, which the analyzers' informer uses for
    every kind; this adds the PodList checks. Rules, as client-go's reflector and the API
    conventions have them:

    - :meth:`replace` installs a list wholesale (pods gone from the list are dropped) and
      takes the list's resourceVersion;
    - :meth:`apply` applies one event and follows the resourceVersion of events and
      bookmarks, never moving it backwards;
    - an ``ERROR`` event with code 410 (or :meth:`mark_expired`, for a 410 answer to
      the watch request itself) sets :attr:`needs_relist`; the pods stay until the next
      list replaces them, so readers keep a complete, if ageing, picture;
    - with kube-apiserver's integer resourceVersions, an event no newer than what the
      cache holds for that pod is a duplicate or arrived out of order and is ignored,
      and a deleted pod's UID is remembered so that a late event cannot resurrect it;
    - an object that cannot be read is skipped and reported, never raised: one bad pod
      must not stop the watch. A pod whose update cannot be read keeps its last good
      version, since names, owners and containers never change over a pod's life.
    """

    def __init__(self) -> None:
        self._index: ObjectIndex[Pod] = ObjectIndex("pods", Pod.from_api)

    # ------------------------------------------------------------------ reading

    @property
    def pods(self) -> Mapping[str, Pod]:
        """An immutable snapshot of the pods by UID; later events never change it."""
        return self._index.items

    @property
    def resource_version(self) -> str | None:
        """The resourceVersion to watch from; None before the first list."""
        return self._index.resource_version

    @property
    def synced(self) -> bool:
        """True once a list has been installed."""
        return self._index.synced

    @property
    def needs_relist(self) -> bool:
        """True before the first list and after the resourceVersion expired."""
        return self._index.needs_relist

    @property
    def last_problem(self) -> str | None:
        """Why the most recent invalid, expired or error event was one, for logs."""
        return self._index.last_problem

    def __len__(self) -> int:
        return len(self._index)

    # ------------------------------------------------------------------ updating

    def mark_expired(self) -> None:
        """Record that the server no longer has :attr:`resource_version` (410 Gone)."""
        self._index.mark_expired()

    def replace(self, pod_list: object) -> RelistResult:
        """Install a PodList as the API server returned it (parsed JSON).

        Items the object model rejects, or that have no UID, are skipped and reported in
        the result.

        Raises:
            ObjectError: the list itself is malformed (not an object, no
                ``metadata.resourceVersion``, ``items`` not an array); the cache is left
                as it was.
        """
        if not isinstance(pod_list, Mapping):
            raise ObjectError("PodList: expected a JSON object from the API server")
        resource_version = _optional_text(_metadata(pod_list).get("resourceVersion"))
        if resource_version is None:
            raise ObjectError(
                "PodList: metadata.resourceVersion is missing; a watch cannot start "
                "without it (is something between the exporter and the API server "
                "rewriting responses?)"
            )
        items = pod_list.get("items")
        if items is None:
            items = []
        if not isinstance(items, list):
            raise ObjectError("PodList: items: expected an array")
        rejected = self._index.replace(items, resource_version)
        return RelistResult(pods=len(self._index), rejected=rejected)

    def apply_line(self, line: bytes | str) -> EventOutcome:
        """Decode one line of a watch stream and :meth:`apply` it."""
        return self._index.apply_line(line)

    def apply(self, event: object) -> EventOutcome:
        """Apply one watch event (``{"type": ..., "object": {...}}``, parsed JSON)."""
        return self._index.apply(event)


# ---------------------------------------------------------------------------- the client


def load_api_client(
    kubeconfig: str | None = None,
    *,
    service_account_dir: str = SERVICE_ACCOUNT_DIR,
) -> kubernetes.client.ApiClient:
    """A ``kubernetes`` ApiClient for the exporter, from the usual sources, in order:

    1. ``kubeconfig``, when given (its current context);
    2. the pod's ServiceAccount, when running in a pod (``KUBERNETES_SERVICE_HOST`` and
       ``KUBERNETES_SERVICE_PORT`` set); the token is re-read as the kubelet rotates it;
    3. ``$KUBECONFIG``, or ``~/.kube/config`` when that exists.

    urllib3's own retries are limited to one immediate reconnect and no repeated reads:
    the watcher retries with backoff itself and counts each failure, and a request must
    not silently take several times its timeout. ``service_account_dir`` is a parameter
    for tests.

    Raises:
        ApiClientConfigError: no source works; the message says which were tried and
            what to do.
    """
    configuration = kubernetes.client.Configuration()
    environ = os.environ
    if kubeconfig is not None:
        _load_kubeconfig(kubeconfig, configuration, source="the kubeconfig passed in")
    elif environ.get(SERVICE_HOST_ENV_NAME) and environ.get(SERVICE_PORT_ENV_NAME):
        # kubernetes.config has no annotations, hence the ignores on its calls.
        loader = InClusterConfigLoader(  # type: ignore[no-untyped-call]
            token_filename=os.path.join(service_account_dir, "token"),
            cert_filename=os.path.join(service_account_dir, "ca.crt"),
            environ=environ,
        )
        try:
            loader.load_and_set(configuration)  # type: ignore[no-untyped-call]
        except (kubernetes.config.ConfigException, OSError) as exc:
            raise ApiClientConfigError(
                f"running in a pod ({SERVICE_HOST_ENV_NAME} is set) but the ServiceAccount "
                f"credentials in {service_account_dir} are unusable ({exc}); make sure the "
                "exporter's pod does not set automountServiceAccountToken: false, or pass "
                "a kubeconfig"
            ) from exc
    else:
        default_path = environ.get("KUBECONFIG") or os.path.expanduser("~/.kube/config")
        if not environ.get("KUBECONFIG") and not os.path.exists(default_path):
            raise ApiClientConfigError(
                "no Kubernetes API credentials: not running in a pod "
                f"({SERVICE_HOST_ENV_NAME} is unset), KUBECONFIG is unset and "
                f"{default_path} does not exist. Run the exporter as the DaemonSet (its "
                "ServiceAccount is used), pass a kubeconfig path, set KUBECONFIG, or run "
                "it without a cluster (pods are then reported by cgroup identity only)"
            )
        _load_kubeconfig(default_path, configuration, source="KUBECONFIG / ~/.kube/config")
    configuration.retries = urllib3.Retry(
        total=1, connect=1, read=0, redirect=0, status=0, other=0, backoff_factor=0
    )
    return kubernetes.client.ApiClient(configuration)


def _load_kubeconfig(path: str, configuration: Any, *, source: str) -> None:
    try:
        kubernetes.config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=path, client_configuration=configuration, persist_config=False
        )
    # Malformed files surface as YAML, key, type and value errors, not only ConfigException.
    except Exception as exc:
        raise ApiClientConfigError(
            f"cannot use kubeconfig {path} ({source}): {exc}; check that the file exists "
            "and that its current context names a cluster and a user"
        ) from exc


# ---------------------------------------------------------------------------- the watcher


class _State(Enum):
    """Where the pod loop is; logged when it changes."""

    IDLE = "idle"
    LISTING = "listing"
    WATCHING = "watching"
    FAILING = "failing"
    STOPPED = "stopped"


class _RequestFailedError(Exception):
    """A request failed; ``reason`` is the ``errors`` key to count it under."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class _StoppingError(Exception):
    """:meth:`NodePodWatcher.stop` was called while waiting or reading."""


@dataclass(slots=True)
class _ReadState:
    """Whether a response's body was read to its end, so its connection can be reused."""

    complete: bool = False


def _describe_failure(exc: BaseException, *, what: str) -> str:
    """One line saying what went wrong and, where it is clear, what to do about it."""
    if isinstance(exc, ApiException):
        status = exc.status
        detail = exc.reason or ""
        with contextlib.suppress(ValueError, TypeError):
            body = json.loads(exc.body) if exc.body else None
            if isinstance(body, Mapping) and body.get("message"):
                detail = str(body["message"])
        if status == 401:
            hint = "; the API server rejected the credentials (token or client certificate)"
        elif status == 403:
            hint = (
                "; grant the exporter's ServiceAccount get, list and watch on pods and get "
                "on nodes (see docs/security.md)"
            )
        elif status == 404 and what == "node":
            hint = "; check the node name (the DaemonSet passes spec.nodeName)"
        else:
            hint = ""
        return f"HTTP {status}: {detail}{hint}"
    if isinstance(exc, urllib3.exceptions.MaxRetryError) and exc.reason is not None:
        exc = exc.reason
    return f"{type(exc).__name__}: {exc}"


class NodePodWatcher(MetadataSource):
    """The cluster-backed metadata source: this node's pods (list + watch) and Node object.

    Start it once with :meth:`start` (two daemon threads: pods and Node) and end it with
    :meth:`stop`; or use it as a context manager. :meth:`current` may be called from any
    thread at any time, before start and after stop included.
    """

    def __init__(
        self,
        *,
        node_name: str,
        api_client: kubernetes.client.ApiClient,
        max_requests_per_second: float = 5.0,
        node_refresh_seconds: float = 60.0,
        watch_timeout_seconds: int = 300,
        request_timeout_seconds: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """A watcher for ``node_name``'s pods; nothing is sent before :meth:`start`.

        Args:
            node_name: this node's name (``spec.nodeName`` through the downward API).
            api_client: the client to use, e.g. from :func:`load_api_client`; it is not
                closed by :meth:`stop`.
            max_requests_per_second: average rate of all requests together (lists,
                watches, Node reads); bursts of up to one second's worth are allowed.
            node_refresh_seconds: how often the Node object is read again.
            watch_timeout_seconds: the server-side ``timeoutSeconds`` of each watch;
                the watch then resumes from the cache's resourceVersion.
            request_timeout_seconds: read timeout of lists and Node reads (a watch's is
                its ``timeoutSeconds`` plus 30 s); connecting may take at most 5 s.
            clock: monotonic seconds, for the token bucket and the figures in the logs.

        Raises:
            KubepulseValueError: an argument is empty, zero or negative.
        """
        if not node_name:
            raise KubepulseValueError(
                "node_name is empty; pass this node's name (the DaemonSet sets it from "
                "the downward API's spec.nodeName)"
            )
        for name, value in (
            ("node_refresh_seconds", node_refresh_seconds),
            ("watch_timeout_seconds", watch_timeout_seconds),
            ("request_timeout_seconds", request_timeout_seconds),
        ):
            if not value > 0:
                raise KubepulseValueError(f"{name} must be positive, got {value!r}")
        self._node_name = node_name
        self._core = kubernetes.client.CoreV1Api(api_client)
        self._bucket = TokenBucket(max_requests_per_second, clock=clock)
        self._node_refresh_seconds = float(node_refresh_seconds)
        self._watch_timeout_seconds = int(watch_timeout_seconds)
        self._request_timeout = (
            min(_CONNECT_TIMEOUT_SECONDS, float(request_timeout_seconds)),
            float(request_timeout_seconds),
        )
        self._watch_request_timeout = (
            self._request_timeout[0],
            self._watch_timeout_seconds + _WATCH_READ_GRACE_SECONDS,
        )
        self._field_selector = f"spec.nodeName={node_name}"
        self._clock = clock

        self._cache = PodCache()
        self._lock = threading.Lock()
        self._view = ClusterView(mode=MetadataMode.CLUSTER)
        self._errors: dict[str, int] = {}
        self._open_responses: set[Any] = set()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._state = _State.IDLE
        self._node_failing = False
        self._last_logged_problem: str | None = None
        # What the next change to the watching state logs: the list's figures after a
        # list, where the watch resumed from after a failure.
        self._watching_message = "watching"

    # ------------------------------------------------------------------ public

    @property
    def node_name(self) -> str:
        """The node whose pods are watched."""
        return self._node_name

    def current(self) -> ClusterView:
        """The newest view; returns at once, without I/O or locks."""
        return self._view

    @property
    def running(self) -> bool:
        """True while a background thread is alive."""
        return any(thread.is_alive() for thread in self._threads)

    def start(self) -> None:
        """Start the pod and Node threads (daemon threads; they never raise).

        Raises:
            RuntimeError: the watcher was already started; a stopped watcher cannot be
                started again, make a new one.
        """
        if self._threads:
            raise RuntimeError(
                f"the pod watcher for node {self._node_name} was already started; "
                "create a new NodePodWatcher instead"
            )
        self._threads = [
            threading.Thread(
                target=self._run_pods, name=f"podwatch-pods-{self._node_name}", daemon=True
            ),
            threading.Thread(
                target=self._run_node, name=f"podwatch-node-{self._node_name}", daemon=True
            ),
        ]
        for thread in self._threads:
            thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop both threads and wait for them, at most ``timeout`` seconds.

        Waits and open watches are interrupted at once. A request still waiting for the
        server's first byte cannot be; its thread (a daemon) then ends within the
        request timeout, which is logged.
        """
        self._stopping.set()
        with self._lock:
            responses = list(self._open_responses)
        for response in responses:
            _interrupt(response)
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        alive = [thread.name for thread in self._threads if thread.is_alive()]
        if alive:
            LOGGER.warning(
                "pod watch on node %s: %s still waiting for the API server; they end "
                "within the request timeout",
                self._node_name,
                ", ".join(alive),
            )

    def __enter__(self) -> NodePodWatcher:
        self.start()
        return self

    def __exit__(self, *_exc_info: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ publishing

    def _publish(self, **changes: Any) -> None:
        with self._lock:
            self._view = replace(self._view, **changes)

    def _publish_pods(self) -> None:
        cache = self._cache
        self._publish(pods=cache.pods, synced=cache.synced, resource_version=cache.resource_version)

    def _count(self, reason: str, count: int = 1) -> None:
        with self._lock:
            self._errors[reason] = self._errors.get(reason, 0) + count
            self._view = replace(self._view, errors=MappingProxyType(dict(self._errors)))

    # ------------------------------------------------------------------ requests

    def _await_token(self) -> None:
        if self._stopping.is_set():
            raise _StoppingError
        while True:
            wait = self._bucket.try_acquire()
            if wait <= 0:
                return
            if self._stopping.wait(wait):
                raise _StoppingError

    @contextlib.contextmanager
    def _tracked(self, response: Any) -> Iterator[_ReadState]:
        """Let :meth:`stop` interrupt ``response`` while it is read.

        The connection goes back to the pool only when the caller marks the body as read
        to its end; otherwise (an error, a watch left early) unread bytes would be the
        next request's answer, so it is closed.
        """
        with self._lock:
            self._open_responses.add(response)
        state = _ReadState()
        try:
            # stop() sets the flag before it looks for open responses, so a response
            # registered too late for it to interrupt is caught here.
            if self._stopping.is_set():
                raise _StoppingError
            yield state
        finally:
            with self._lock:
                self._open_responses.discard(response)
            with contextlib.suppress(Exception):
                if state.complete and not self._stopping.is_set():
                    response.release_conn()
                else:
                    response.close()

    def _get_json(self, reason: str, request: Callable[[], Any]) -> Mapping[str, Any]:
        """Send one request (a token must be taken first) and decode its JSON body."""
        try:
            response = request()
        except Exception as exc:
            raise self._failure(reason, exc) from exc
        with self._tracked(response) as read:
            try:
                body = response.data
            except Exception as exc:
                raise self._failure(reason, exc) from exc
            read.complete = True
        try:
            decoded = json.loads(body)
        except ValueError as exc:
            raise _RequestFailedError(ERROR_DECODE, f"the answer is not JSON: {exc}") from exc
        if not isinstance(decoded, Mapping):
            raise _RequestFailedError(ERROR_DECODE, "the answer is not a JSON object")
        return decoded

    def _failure(self, reason: str, exc: BaseException) -> Exception:
        if self._stopping.is_set():
            return _StoppingError()
        return _RequestFailedError(reason, _describe_failure(exc, what=reason))

    # ------------------------------------------------------------------ pod loop

    def _run_pods(self) -> None:
        backoff = ExponentialBackoff()
        try:
            while not self._stopping.is_set():
                try:
                    if self._cache.needs_relist:
                        self._list_pods()
                    if self._watch_pods():
                        backoff.reset()
                except _StoppingError:
                    break
                except _RequestFailedError as failure:
                    self._count(failure.reason)
                    if self._pause(backoff, f"{failure.reason} failed: {failure.message}"):
                        break
                except Exception as exc:  # the thread must outlive any bug
                    self._count(ERROR_WATCH)
                    if self._state is not _State.FAILING:
                        LOGGER.exception("pod watch on node %s: unexpected error", self._node_name)
                    if self._pause(backoff, f"unexpected {type(exc).__name__}: {exc}"):
                        break
        finally:
            self._set_state(_State.STOPPED, "stopped")

    def _pause(self, backoff: ExponentialBackoff, problem: str) -> bool:
        """Log a failure (once per failing spell) and wait; True when stopping."""
        delay = backoff.next_delay()
        if self._state is _State.FAILING:
            LOGGER.debug(
                "pod watch on node %s: %s; retry %d in %.1f s",
                self._node_name,
                problem,
                backoff.failures,
                delay,
            )
        self._set_state(_State.FAILING, f"{problem}; retrying in {delay:.1f} s with backoff")
        return self._stopping.wait(delay)

    def _set_state(self, state: _State, message: str) -> None:
        previous, self._state = self._state, state
        if previous is state:
            return
        level = logging.WARNING if state is _State.FAILING else logging.INFO
        if previous is _State.FAILING and state is _State.WATCHING:
            message = f"recovered: {message}"
        LOGGER.log(level, "pod watch on node %s: %s", self._node_name, message)

    def _list_pods(self) -> None:
        if self._state is not _State.FAILING:
            self._set_state(_State.LISTING, "listing pods")
        self._await_token()
        sent = self._clock()
        body = self._get_json(
            ERROR_LIST,
            lambda: self._core.list_pod_for_all_namespaces(
                field_selector=self._field_selector,
                _preload_content=False,
                _request_timeout=self._request_timeout,
            ),
        )
        received = self._clock()
        try:
            result = self._cache.replace(body)
        except ObjectError as exc:
            raise _RequestFailedError(ERROR_DECODE, str(exc)) from exc
        built = self._clock()
        if result.rejected:
            self._count(ERROR_OBJECT, len(result.rejected))
            LOGGER.warning(
                "pod watch on node %s: skipped %d pod(s) the object model rejects, e.g. %s",
                self._node_name,
                len(result.rejected),
                result.rejected[0],
            )
        self._publish_pods()
        self._watching_message = (
            f"synced {result.pods} pods at resourceVersion {self._cache.resource_version} "
            f"(list took {(built - sent) * 1000:.0f} ms, of which "
            f"{(built - received) * 1000:.0f} ms building the pods); watching"
        )

    def _watch_pods(self) -> bool:
        """One watch, until the server ends it; True when it worked (backoff resets)."""
        resource_version = self._cache.resource_version
        self._await_token()
        started = self._clock()
        try:
            # With _preload_content=False the client returns urllib3's response, unread.
            response = cast(
                urllib3.BaseHTTPResponse,
                self._core.list_pod_for_all_namespaces(
                    field_selector=self._field_selector,
                    watch=True,
                    resource_version=resource_version,
                    allow_watch_bookmarks=True,
                    timeout_seconds=self._watch_timeout_seconds,
                    _preload_content=False,
                    _request_timeout=self._watch_request_timeout,
                ),
            )
        except ApiException as exc:
            if exc.status == _HTTP_GONE:
                self._expired(resource_version, _describe_failure(exc, what=ERROR_WATCH))
                return True
            raise self._failure(ERROR_WATCH, exc) from exc
        except Exception as exc:
            raise self._failure(ERROR_WATCH, exc) from exc
        self._set_state(_State.WATCHING, self._watching_message)
        self._watching_message = f"watching from resourceVersion {resource_version}"
        events = 0
        with self._tracked(response) as read:
            try:
                for line in iter_lines(response.stream(None, decode_content=True)):
                    events += 1
                    if self._handle_event(line, resource_version):
                        return True
            except (_StoppingError, _RequestFailedError):
                raise
            except Exception as exc:
                raise self._failure(ERROR_WATCH, exc) from exc
            read.complete = True
        if self._stopping.is_set():
            raise _StoppingError
        if events == 0 and self._clock() - started < _SHORT_WATCH_SECONDS:
            raise _RequestFailedError(
                ERROR_WATCH, "the API server ended the watch at once, without any event"
            )
        LOGGER.debug(
            "pod watch on node %s: watch ended after %d events at resourceVersion %s",
            self._node_name,
            events,
            self._cache.resource_version,
        )
        return True

    def _handle_event(self, line: bytes, watched_from: str | None) -> bool:
        """Apply one line; True when the watch must end for a relist."""
        outcome = self._cache.apply_line(line)
        if outcome in (EventOutcome.CHANGED, EventOutcome.VERSION):
            self._publish_pods()
            return False
        if outcome is EventOutcome.EXPIRED:
            self._expired(watched_from, self._cache.last_problem or "410")
            return True
        reason = outcome_error_reason(outcome)
        if reason is None:  # IGNORED
            return False
        self._count(reason)
        problem = self._cache.last_problem
        if outcome is EventOutcome.ERROR:
            raise _RequestFailedError(ERROR_WATCH, f"the watch ended with an error: {problem}")
        if problem != self._last_logged_problem:
            self._last_logged_problem = problem
            LOGGER.warning("pod watch on node %s: skipped an event: %s", self._node_name, problem)
        return False

    def _expired(self, resource_version: str | None, detail: str) -> None:
        self._count(ERROR_GONE)
        self._cache.mark_expired()
        self._set_state(
            _State.LISTING,
            f"resourceVersion {resource_version} expired ({detail}); listing pods again",
        )

    # ------------------------------------------------------------------ node loop

    def _run_node(self) -> None:
        backoff = ExponentialBackoff(max_seconds=max(1.0, self._node_refresh_seconds))
        while not self._stopping.is_set():
            try:
                delay = self._refresh_node(backoff)
            except _StoppingError:
                break
            except Exception:  # the thread must outlive any bug
                self._count(ERROR_NODE)
                if not self._node_failing:
                    LOGGER.exception("pod watch on node %s: unexpected error", self._node_name)
                self._node_failing = True
                delay = backoff.next_delay()
            if self._stopping.wait(delay):
                break

    def _refresh_node(self, backoff: ExponentialBackoff) -> float:
        """Read the Node once; the seconds to wait before the next read."""
        try:
            self._await_token()
            body = self._get_json(
                ERROR_NODE,
                lambda: self._core.read_node(
                    self._node_name,
                    _preload_content=False,
                    _request_timeout=self._request_timeout,
                ),
            )
            node = Node.from_api(body)
        except (_RequestFailedError, ObjectError) as failure:
            if isinstance(failure, ObjectError):
                reason, message = ERROR_OBJECT, str(failure)
            else:
                reason, message = failure.reason, failure.message
            self._count(reason)
            delay = backoff.next_delay()
            level = logging.DEBUG if self._node_failing else logging.WARNING
            self._node_failing = True
            LOGGER.log(
                level,
                "pod watch on node %s: reading the Node failed (%s); retrying in %.1f s",
                self._node_name,
                message,
                delay,
            )
            return delay
        first = self._view.node is None
        self._publish(node=node)
        if first or self._node_failing:
            LOGGER.info(
                "pod watch on node %s: %s Node (capacity %s; allocatable %s)",
                self._node_name,
                "read the" if first else "recovered: read the",
                _format_resources(node.capacity),
                _format_resources(node.allocatable),
            )
        self._node_failing = False
        backoff.reset()
        return self._node_refresh_seconds


def _format_resources(resources: Mapping[str, Decimal]) -> str:
    """``cpu=32, memory=128Gi, pods=110``: memory and storage in binary units."""
    return (
        ", ".join(
            f"{name}={format_quantity(amount, binary=name in _BYTE_RESOURCES)}"
            for name, amount in sorted(resources.items())
        )
        or "none"
    )


def _interrupt(response: Any) -> None:
    """Unblock a thread reading ``response``: shut its socket down for reading."""
    shutdown = getattr(response, "shutdown", None)
    try:
        if shutdown is not None:
            shutdown()
        else:  # urllib3 1.x has no shutdown(); closing also ends a blocked read
            response.close()
    except Exception as exc:  # already closed or released: nothing is blocked on it
        LOGGER.debug("interrupting a response: %s", exc)
