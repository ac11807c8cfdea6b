"""What the embedded scraper scrapes: exporter pods, annotated pods and static targets.

Two kinds of pods become :class:`Target` objects (:func:`target_from_pod`, pure):

- **kubepulse exporter pods**, matched by a label selector (default
  ``app.kubernetes.io/name=kubepulse-exporter``) and scraped on port 9847 at
  ``/metrics`` unless their ``prometheus.io/port``, ``/path`` or ``/scheme`` annotations
  say otherwise. Role :attr:`TargetRole.EXPORTER`: their series already name the pods
  and containers they describe;
- **annotated pods**, the convention of Prometheus' example Kubernetes configuration:

  ===========================  =================================================
  annotation                   meaning
  ===========================  =================================================
  ``prometheus.io/scrape``     ``"true"`` to be scraped
  ``prometheus.io/port``       the port; without it, a container port named
                               ``metrics`` or ``http-metrics``, else the pod's only
                               declared TCP port
  ``prometheus.io/path``       the path (default ``/metrics``)
  ``prometheus.io/scheme``     ``http`` (default) or ``https``
  ===========================  =================================================

  Role :attr:`TargetRole.POD`: their series get the pod's namespace, name and node.

Only pods in phase ``Running`` with a pod IP are targets. A pod whose annotations cannot
be used (a port that is not a number, a path without a leading ``/``) is skipped, counted
and logged once with what to fix (:class:`InvalidTargetError`).

:class:`KubernetesTargetDiscovery` keeps the targets current from the API server: a
paginated LIST of pods (``fieldSelector=status.phase=Running``, cluster-wide or per
configured namespace), then a WATCH from the list's resourceVersion with bookmarks; a
``410 Gone`` (as the watch's status or as an ``ERROR`` event) lists again; any other
failure is retried with capped, jittered exponential backoff; one token bucket bounds
all requests to ``max_requests_per_second``. Pods are read from the API server's raw
JSON (no client model classes: ten times cheaper per pod) and only their targets are
kept, so 5,000 pods cost a few hundred kilobytes. :meth:`~KubernetesTargetDiscovery.targets`
returns the newest immutable tuple without waiting on anything.

:class:`StaticTargets` serves a fixed list (local mode and tests); see
:func:`parse_static_target` for the ``--static-target`` syntax.

The pure parts (:func:`target_from_pod`, :class:`PodTargetCache`) take dicts and return
data; only the discovery class does I/O. Logging goes to the
``kubepulse.adapter.scrape.targets`` logger, one line per change of state, never one
per event.
"""

from __future__ import annotations

import contextlib
import enum
import json
import logging
import threading
import time
import urllib.parse
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final, Protocol

import kubernetes.client
from kubernetes.client.exceptions import ApiException

from kubepulse.errors import KubepulseValueError
from kubepulse.selector import LabelSelector, SelectorError, parse_selector
from kubepulse.watchloop import ExponentialBackoff, TokenBucket, iter_lines

__all__ = [
    "ANNOTATION_PATH",
    "ANNOTATION_PORT",
    "ANNOTATION_SCHEME",
    "ANNOTATION_SCRAPE",
    "DEFAULT_EXPORTER_PORT",
    "DEFAULT_EXPORTER_SELECTOR",
    "DEFAULT_METRICS_PATH",
    "DiscoverySettings",
    "InvalidTargetError",
    "KubernetesTargetDiscovery",
    "MergedTargets",
    "PodTargetCache",
    "StaticTargets",
    "Target",
    "TargetRole",
    "TargetSource",
    "parse_static_target",
    "target_from_pod",
]

LOGGER: Final = logging.getLogger("kubepulse.adapter.scrape.targets")

ANNOTATION_SCRAPE: Final = "prometheus.io/scrape"
ANNOTATION_PORT: Final = "prometheus.io/port"
ANNOTATION_PATH: Final = "prometheus.io/path"
ANNOTATION_SCHEME: Final = "prometheus.io/scheme"

DEFAULT_EXPORTER_SELECTOR: Final = "app.kubernetes.io/name=kubepulse-exporter"
"""The label selector of kubepulse exporter pods (the Helm chart's standard label)."""
DEFAULT_EXPORTER_PORT: Final = 9847
"""The port kubepulse exporters serve ``/metrics`` on."""
DEFAULT_METRICS_PATH: Final = "/metrics"

# Container port names that say "scrape me here" when no port annotation is given.
_METRICS_PORT_NAMES: Final = ("metrics", "http-metrics")
_SCHEMES: Final = frozenset({"http", "https"})
_MAX_PATH_LENGTH: Final = 1024
_HTTP_GONE: Final = 410
# Error reasons counted in KubernetesTargetDiscovery.errors.
_ERROR_LIST: Final = "list"
_ERROR_WATCH: Final = "watch"
_ERROR_GONE: Final = "gone"
_ERROR_DECODE: Final = "decode"
_ERROR_INVALID_POD: Final = "invalid_pod"
# A watch that ends this quickly without an event counts as a failure (no spinning).
_SHORT_WATCH_SECONDS: Final = 1.0
# A watch's read timeout exceeds its server-side timeout by this much, so that the
# server, not the client, normally ends a quiet watch.
_WATCH_READ_GRACE_SECONDS: Final = 30.0


class InvalidTargetError(KubepulseValueError):
    """A pod asks to be scraped but its annotations (or a static target) cannot be used."""


class TargetRole(enum.Enum):
    """How a target's series are labelled (see :mod:`adapter.scrape.scraper`)."""

    EXPORTER = "exporter"
    """A kubepulse exporter: its series name the pods they describe; kept as exposed,
    plus ``instance``."""
    POD = "pod"
    """An application pod: its series get the target's ``namespace``, ``pod`` and
    ``node``; exposed labels of those names are renamed ``exported_<name>``."""


def _no_labels() -> Mapping[str, str]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Target:
    """One endpoint to scrape, and the pod it belongs to.

    Two targets are equal when they scrape the same URL for the same pod in the same
    role; the pod's labels are carried along but do not take part (a relabelled pod is
    the same target with new labels).

    Attributes:
        url: what to GET, e.g. ``http://10.244.1.7:8080/metrics``.
        role: how its series are labelled.
        namespace: the pod's namespace (``None`` for a static target without one).
        pod: the pod's name.
        node: the node the pod runs on.
        pod_uid: the pod's ``metadata.uid``.
        pod_labels: the pod's labels, for matching ``labelSelector`` against pods.
    """

    url: str
    role: TargetRole
    namespace: str | None = None
    pod: str | None = None
    node: str | None = None
    pod_uid: str | None = None
    pod_labels: Mapping[str, str] = field(default_factory=_no_labels, compare=False, hash=False)

    @property
    def instance(self) -> str:
        """``host:port`` of :attr:`url`, Prometheus' ``instance`` label."""
        parts = urllib.parse.urlsplit(self.url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        host = parts.hostname or ""
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    def __str__(self) -> str:
        if self.pod is None:
            return f"{self.role.value} target {self.url}"
        return f"{self.role.value} target {self.url} (pod {self.namespace}/{self.pod})"


@dataclass(frozen=True, slots=True)
class DiscoverySettings:
    """Which pods become targets, and how hard discovery may press the API server.

    Attributes:
        exporter_selector: label selector of kubepulse exporter pods (Kubernetes
            syntax); an empty string disables exporter discovery.
        exporter_port: port of an exporter pod's ``/metrics`` when it has no
            ``prometheus.io/port`` annotation (default 9847).
        exporter_path: path on exporter pods (default ``/metrics``).
        exporter_scheme: ``http`` (default) or ``https`` for exporter pods.
        annotated_pods: whether pods annotated ``prometheus.io/scrape: "true"`` are
            targets (default yes).
        namespaces: namespaces to watch; empty (the default) watches the whole
            cluster, which needs a ClusterRole to list and watch pods.
        max_requests_per_second: bound on list and watch requests together, averaged
            (default 5; a healthy watch needs one request per ``watch_timeout_seconds``).
        page_size: pods per LIST page (default 500, as client-go's reflector).
        watch_timeout_seconds: how long the server keeps one watch open (default 300).
        request_timeout_seconds: connect and read timeout of LIST requests (default 30).
    """

    exporter_selector: str = DEFAULT_EXPORTER_SELECTOR
    exporter_port: int = DEFAULT_EXPORTER_PORT
    exporter_path: str = DEFAULT_METRICS_PATH
    exporter_scheme: str = "http"
    annotated_pods: bool = True
    namespaces: tuple[str, ...] = ()
    max_requests_per_second: float = 5.0
    page_size: int = 500
    watch_timeout_seconds: int = 300
    request_timeout_seconds: float = 30.0
    exporter_label_selector: LabelSelector | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        try:
            selector = parse_selector(self.exporter_selector) if self.exporter_selector else None
        except SelectorError as error:
            raise KubepulseValueError(
                f"exporter_selector {self.exporter_selector!r}: {error}"
            ) from error
        object.__setattr__(self, "exporter_label_selector", selector)
        _check_port(self.exporter_port, "exporter_port")
        _check_path(self.exporter_path, "exporter_path")
        _check_scheme(self.exporter_scheme, "exporter_scheme")
        if not 0 < self.max_requests_per_second < float("inf"):
            raise KubepulseValueError(
                f"max_requests_per_second must be a positive number such as 5, got "
                f"{self.max_requests_per_second!r}"
            )
        if self.page_size < 1 or self.watch_timeout_seconds < 1:
            raise KubepulseValueError(
                f"page_size ({self.page_size}) and watch_timeout_seconds "
                f"({self.watch_timeout_seconds}) must be at least 1"
            )
        if not self.request_timeout_seconds > 0:
            raise KubepulseValueError(
                f"request_timeout_seconds must be positive, got {self.request_timeout_seconds!r}"
            )


def _check_port(port: object, what: str) -> int:
    if isinstance(port, str):
        text = port.strip()
        if not text.isdigit():
            raise InvalidTargetError(
                f"{what} {port!r} is not a port number; write a number from 1 to 65535 "
                "(named ports are not supported)"
            )
        port = int(text)
    if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
        raise InvalidTargetError(f"{what} {port!r} is not a port number from 1 to 65535")
    return port


def _check_path(path: str, what: str) -> str:
    if not path.startswith("/") or len(path) > _MAX_PATH_LENGTH or any(c.isspace() for c in path):
        raise InvalidTargetError(
            f"{what} {path[:80]!r} must be an absolute path such as /metrics: starting with "
            f"'/', without blanks, at most {_MAX_PATH_LENGTH} characters"
        )
    return path


def _check_scheme(scheme: str, what: str) -> str:
    if scheme.lower() not in _SCHEMES:
        raise InvalidTargetError(f"{what} {scheme!r} must be http or https")
    return scheme.lower()


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else MappingProxyType({})


def _string_map(value: object) -> Mapping[str, str]:
    if not isinstance(value, Mapping):
        return MappingProxyType({})
    return MappingProxyType({str(key): str(item) for key, item in value.items()})


def _url(scheme: str, ip: str, port: int, path: str) -> str:
    host = f"[{ip}]" if ":" in ip else ip
    return f"{scheme}://{host}:{port}{path}"


def target_from_pod(pod: Mapping[str, Any], settings: DiscoverySettings) -> Target | None:
    """The target a pod (as the API server returns it, parsed JSON) is, or ``None``.

    ``None`` for pods that are not Running, have no pod IP yet, or are neither exporter
    pods nor annotated for scraping. An exporter pod is never also an annotated target:
    its annotations only adjust the port, path and scheme.

    Raises:
        InvalidTargetError: the pod asks to be scraped but the port, path or scheme
            cannot be used, or no port can be chosen; the message names the pod and the
            annotation to fix.
    """
    metadata = _mapping(pod.get("metadata"))
    namespace = metadata.get("namespace")
    name = metadata.get("name")
    if not isinstance(namespace, str) or not isinstance(name, str):
        raise InvalidTargetError("a pod without metadata.namespace or metadata.name")
    status = _mapping(pod.get("status"))
    spec = _mapping(pod.get("spec"))
    pod_ip = status.get("podIP")
    if status.get("phase") != "Running" or not isinstance(pod_ip, str) or not pod_ip:
        return None
    labels = _string_map(metadata.get("labels"))
    annotations = _string_map(metadata.get("annotations"))
    selector = settings.exporter_label_selector
    is_exporter = selector is not None and selector.matches(labels)
    if not is_exporter and not (
        settings.annotated_pods and annotations.get(ANNOTATION_SCRAPE, "").lower() == "true"
    ):
        return None
    where = f"pod {namespace}/{name}"
    try:
        if ANNOTATION_PORT in annotations:
            port = _check_port(annotations[ANNOTATION_PORT], f"annotation {ANNOTATION_PORT}")
        elif is_exporter:
            port = settings.exporter_port
        else:
            port = _port_from_containers(spec)
        default_path = settings.exporter_path if is_exporter else DEFAULT_METRICS_PATH
        path = _check_path(
            annotations.get(ANNOTATION_PATH, default_path), f"annotation {ANNOTATION_PATH}"
        )
        default_scheme = settings.exporter_scheme if is_exporter else "http"
        scheme = _check_scheme(
            annotations.get(ANNOTATION_SCHEME, default_scheme), f"annotation {ANNOTATION_SCHEME}"
        )
    except InvalidTargetError as error:
        raise InvalidTargetError(f"{where}: {error}") from error
    node = spec.get("nodeName")
    uid = metadata.get("uid")
    return Target(
        url=_url(scheme, pod_ip, port, path),
        role=TargetRole.EXPORTER if is_exporter else TargetRole.POD,
        namespace=namespace,
        pod=name,
        node=node if isinstance(node, str) else None,
        pod_uid=uid if isinstance(uid, str) else None,
        pod_labels=labels,
    )


def _port_from_containers(spec: Mapping[str, Any]) -> int:
    ports: list[tuple[str, int]] = []
    containers = spec.get("containers")
    for container in containers if isinstance(containers, list) else ():
        declared = _mapping(container).get("ports")
        for port in declared if isinstance(declared, list) else ():
            port_spec = _mapping(port)
            number = port_spec.get("containerPort")
            if isinstance(number, int) and port_spec.get("protocol", "TCP") == "TCP":
                ports.append((str(port_spec.get("name", "")), number))
    for wanted in _METRICS_PORT_NAMES:
        for port_name, number in ports:
            if port_name == wanted:
                return number
    if len(ports) == 1:
        return ports[0][1]
    raise InvalidTargetError(
        f'it is annotated {ANNOTATION_SCRAPE}: "true" but has no {ANNOTATION_PORT} '
        f"annotation, no container port named {' or '.join(_METRICS_PORT_NAMES)} and "
        f"{len(ports)} declared TCP ports; add the {ANNOTATION_PORT} annotation"
    )


def _has_valid_port(parts: urllib.parse.SplitResult) -> bool:
    try:
        parts.port  # noqa: B018 - raises ValueError for a port out of range or not a number
    except ValueError:
        return False
    return True


def parse_static_target(text: str) -> Target:
    """A target from its ``--static-target`` spelling.

    ``URL[;key=value...]`` where the keys are ``role`` (``exporter``, the default, or
    ``pod``), ``namespace``, ``pod`` and ``node``; for example
    ``http://127.0.0.1:9847/metrics`` (a local exporter) or
    ``http://127.0.0.1:8080/metrics;role=pod;namespace=demo;pod=web-0;node=local``.

    Raises:
        InvalidTargetError: the URL is not http(s) with a host, or a key is unknown,
            repeated or has a bad value.
    """
    url, *options = text.strip().split(";")
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in _SCHEMES or not parts.hostname or not _has_valid_port(parts):
        raise InvalidTargetError(
            f"static target {text!r}: expected an http or https URL with a host, such as "
            "http://127.0.0.1:9847/metrics, optionally followed by ;role=pod;namespace=...;"
            "pod=...;node=..."
        )
    if not parts.path:
        url = urllib.parse.urlunsplit(parts._replace(path=DEFAULT_METRICS_PATH))
    values: dict[str, str] = {}
    for option in options:
        key, separator, value = option.partition("=")
        key = key.strip()
        if not separator or key not in ("role", "namespace", "pod", "node") or key in values:
            raise InvalidTargetError(
                f"static target {text!r}: {option!r} is not one of role=, namespace=, pod=, "
                "node= (each at most once)"
            )
        values[key] = value.strip()
    try:
        role = TargetRole(values.get("role", TargetRole.EXPORTER.value))
    except ValueError as error:
        raise InvalidTargetError(
            f"static target {text!r}: role must be exporter or pod, not {values['role']!r}"
        ) from error
    return Target(
        url=url,
        role=role,
        namespace=values.get("namespace") or None,
        pod=values.get("pod") or None,
        node=values.get("node") or None,
    )


class TargetSource(Protocol):
    """Anything the scraper can ask for the current targets."""

    def targets(self) -> tuple[Target, ...]:
        """The current targets; must return at once, from any thread."""
        ...


class StaticTargets:
    """A fixed list of targets (local mode, tests, benchmarks)."""

    def __init__(self, targets: Iterable[Target | str]) -> None:
        """Raises:
        InvalidTargetError: a string is not a valid static target.
        """
        self._targets = tuple(
            parse_static_target(target) if isinstance(target, str) else target for target in targets
        )

    def targets(self) -> tuple[Target, ...]:
        """The targets given at construction."""
        return self._targets


class MergedTargets:
    """The targets of several sources together, duplicates removed (first one wins)."""

    def __init__(self, sources: Sequence[TargetSource]) -> None:
        self._sources = tuple(sources)

    def targets(self) -> tuple[Target, ...]:
        """Every source's targets, in source order."""
        return tuple(
            dict.fromkeys(target for source in self._sources for target in source.targets())
        )


# ---------------------------------------------------------------------------- pure cache


class PodTargetCache:
    """The targets of one watch scope, by pod UID, kept current by lists and events.

    Pure: it takes the API server's parsed JSON and returns what happened. Rules, as
    client-go's reflector has them: :meth:`replace` installs a full list (pods gone from
    it are dropped) with the list's resourceVersion; :meth:`apply` applies one watch
    event and follows the resourceVersion of events and bookmarks; an ``ERROR`` event
    with code 410 sets :attr:`needs_relist`, and the targets stay until the next list
    replaces them. A pod whose annotations cannot be used is remembered in
    :attr:`rejected` (UID → message) until it changes or goes away.
    """

    def __init__(self, settings: DiscoverySettings) -> None:
        self._settings = settings
        self._targets: dict[str, Target] = {}
        self._rejected: dict[str, str] = {}
        self._resource_version: str | None = None
        self._needs_relist = True
        self._snapshot: tuple[Target, ...] | None = None
        self.last_problem: str | None = None
        """Why the last invalid, expired or error event was one, for logs."""

    @property
    def resource_version(self) -> str | None:
        """The resourceVersion to watch from; ``None`` before the first list."""
        return self._resource_version

    @property
    def needs_relist(self) -> bool:
        """True before the first list and after the resourceVersion expired."""
        return self._needs_relist

    @property
    def rejected(self) -> Mapping[str, str]:
        """Pods that ask to be scraped but cannot be, UID → what to fix."""
        return MappingProxyType(dict(self._rejected))

    def targets(self) -> tuple[Target, ...]:
        """The current targets in the order their pods arrived; the same tuple object
        until something changes (so a reader can tell a change by identity)."""
        if self._snapshot is None:
            self._snapshot = tuple(self._targets.values())
        return self._snapshot

    def mark_expired(self) -> None:
        """Record that the server no longer has :attr:`resource_version` (410 Gone)."""
        self._needs_relist = True

    def replace(self, items: Iterable[object], resource_version: str) -> int:
        """Install the pods of a complete list; return how many pods were rejected."""
        targets: dict[str, Target] = {}
        rejected: dict[str, str] = {}
        for item in items:
            _classify(item, self._settings, targets, rejected)
        return self.install(targets, rejected, resource_version)

    def install(
        self, targets: dict[str, Target], rejected: dict[str, str], resource_version: str
    ) -> int:
        """Install targets already classified from a complete list (see :meth:`replace`)."""
        self._targets = targets
        self._rejected = rejected
        self._resource_version = resource_version
        self._needs_relist = False
        self._snapshot = None
        return len(rejected)

    def apply(self, event: object) -> str:
        """Apply one watch event (parsed JSON); return what it did.

        One of ``"changed"`` (the targets changed), ``"unchanged"`` (a pod that is no
        target changed, or a bookmark), ``"invalid"`` (not a watch event: skipped),
        ``"expired"`` (410: list again) or ``"error"`` (another ``ERROR``: watch again).
        """
        if not isinstance(event, Mapping) or not isinstance(event.get("object"), Mapping):
            self.last_problem = "a watch line is not a watch event with an object"
            return "invalid"
        event_type = event.get("type")
        obj: Mapping[str, Any] = event["object"]
        if event_type == "ERROR":
            code = obj.get("code")
            self.last_problem = f"{code} {obj.get('reason', '')}: {obj.get('message', '')}"
            if code == _HTTP_GONE or obj.get("reason") in ("Expired", "Gone"):
                self._needs_relist = True
                return "expired"
            return "error"
        metadata = _mapping(obj.get("metadata"))
        version = metadata.get("resourceVersion")
        if isinstance(version, str) and version:
            self._resource_version = version
        if event_type == "BOOKMARK":
            return "unchanged"
        if event_type not in ("ADDED", "MODIFIED", "DELETED"):
            self.last_problem = f"unknown watch event type {event_type!r}"
            return "invalid"
        uid = metadata.get("uid")
        if not isinstance(uid, str) or not uid:
            self.last_problem = f"a {event_type} pod has no metadata.uid"
            return "invalid"
        before = self._targets.get(uid)
        rejected_before = self._rejected.get(uid)
        if event_type == "DELETED":
            self._targets.pop(uid, None)
            self._rejected.pop(uid, None)
        else:
            _classify(obj, self._settings, self._targets, self._rejected)
        after = self._targets.get(uid)
        targets_changed = before != after or (
            before is not None and after is not None and before.pod_labels != after.pod_labels
        )
        if targets_changed:
            self._snapshot = None
        # A newly rejected pod is a change too: the targets are the same, what to warn
        # about is not.
        if targets_changed or rejected_before != self._rejected.get(uid):
            return "changed"
        return "unchanged"


def _classify(
    item: object,
    settings: DiscoverySettings,
    targets: dict[str, Target],
    rejected: dict[str, str],
) -> None:
    """Put one pod into ``targets`` or ``rejected`` by UID (or neither); skip non-pods."""
    if not isinstance(item, Mapping):
        return
    uid = _mapping(item.get("metadata")).get("uid")
    if not isinstance(uid, str) or not uid:
        return
    targets.pop(uid, None)
    rejected.pop(uid, None)
    try:
        target = target_from_pod(item, settings)
    except InvalidTargetError as error:
        rejected[uid] = str(error)
        return
    if target is not None:
        targets[uid] = target


# ---------------------------------------------------------------------------- rate, backoff


# ---------------------------------------------------------------------------- discovery


class _StoppingError(Exception):
    """stop() was called: leave the loop."""


class _RequestFailedError(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def _describe(error: BaseException) -> str:
    if isinstance(error, ApiException):
        detail = error.reason or ""
        with contextlib.suppress(ValueError, TypeError):
            body = json.loads(error.body) if error.body else None
            if isinstance(body, Mapping) and body.get("message"):
                detail = str(body["message"])
        hint = ""
        if error.status in (401, 403):
            hint = (
                "; give the adapter's ServiceAccount list and watch on pods (a ClusterRole "
                "for cluster-wide discovery, a Role per namespace otherwise; see "
                "docs/security.md)"
            )
        return f"HTTP {error.status}: {detail}{hint}"
    reason = getattr(error, "reason", None)
    if isinstance(reason, BaseException):
        error = reason
    return f"{type(error).__name__}: {error}"


class KubernetesTargetDiscovery:
    """Targets from the API server: list, then watch, per namespace scope.

    One daemon thread per scope (the whole cluster, or each configured namespace).
    :meth:`targets` returns the newest merged tuple at once; :attr:`synced` tells when
    every scope has been listed once; :attr:`errors` counts failures by reason
    (``list``, ``watch``, ``gone``, ``decode``, ``invalid_pod``).

    Args:
        api_client: a ``kubernetes.client.ApiClient`` with the adapter's credentials.
        settings: which pods become targets, request rate and timeouts.
    """

    def __init__(
        self,
        api_client: kubernetes.client.ApiClient,
        settings: DiscoverySettings | None = None,
    ) -> None:
        self._settings = settings or DiscoverySettings()
        self._core = kubernetes.client.CoreV1Api(api_client)
        self._bucket = TokenBucket(self._settings.max_requests_per_second)
        scopes: tuple[str | None, ...] = self._settings.namespaces or (None,)
        self._caches = {scope: PodTargetCache(self._settings) for scope in scopes}
        self._lock = threading.Lock()
        self._publish_lock = threading.Lock()
        self._targets: tuple[Target, ...] = ()
        self._synced_scopes: set[str | None] = set()
        self._errors: dict[str, int] = {}
        self._logged_rejections: set[str] = set()
        self._open_responses: set[Any] = set()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []

    # ------------------------------------------------------------------ public

    def targets(self) -> tuple[Target, ...]:
        """The current targets of every scope; returns at once."""
        return self._targets

    @property
    def synced(self) -> bool:
        """True once every scope has been listed."""
        return len(self._synced_scopes) == len(self._caches)

    @property
    def errors(self) -> Mapping[str, int]:
        """Failures so far by reason."""
        with self._lock:
            return MappingProxyType(dict(self._errors))

    def start(self) -> None:
        """Start one daemon thread per scope.

        Raises:
            RuntimeError: already started; make a new discovery instead.
        """
        if self._threads:
            raise RuntimeError("target discovery was already started; create a new one")
        for scope in self._caches:
            thread = threading.Thread(
                target=self._run,
                args=(scope,),
                name=f"scrape-discovery-{scope or 'cluster'}",
                daemon=True,
            )
            self._threads.append(thread)
            thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the threads and wait for them, at most ``timeout`` seconds."""
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
                "target discovery: %s still waiting for the API server; they end within "
                "the request timeout",
                ", ".join(alive),
            )

    def __enter__(self) -> KubernetesTargetDiscovery:
        self.start()
        return self

    def __exit__(self, *_exc_info: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ loop

    def _run(self, scope: str | None) -> None:
        cache = self._caches[scope]
        where = f"namespace {scope}" if scope else "the cluster"
        backoff = ExponentialBackoff()
        failing = False
        while not self._stopping.is_set():
            try:
                if cache.needs_relist:
                    self._list(scope, cache)
                    if failing:
                        LOGGER.info("target discovery in %s: recovered", where)
                    failing = False
                    backoff.reset()
                self._watch(scope, cache)
            except _StoppingError:
                break
            except _RequestFailedError as failure:
                self._count(failure.reason)
                delay = backoff.next_delay()
                level = logging.DEBUG if failing else logging.WARNING
                LOGGER.log(
                    level,
                    "target discovery in %s: %s failed: %s; retrying in %.1f s",
                    where,
                    failure.reason,
                    failure,
                    delay,
                )
                failing = True
                if self._stopping.wait(delay):
                    break
            except Exception:  # the thread must outlive any bug
                self._count(_ERROR_WATCH)
                LOGGER.exception("target discovery in %s: unexpected error", where)
                if self._stopping.wait(backoff.next_delay()):
                    break
        LOGGER.info("target discovery in %s: stopped", where)

    def _await_token(self) -> None:
        while True:
            if self._stopping.is_set():
                raise _StoppingError
            wait = self._bucket.try_acquire()
            if wait <= 0:
                return
            if self._stopping.wait(wait):
                raise _StoppingError

    @contextlib.contextmanager
    def _tracked(self, response: Any) -> Iterator[None]:
        with self._lock:
            self._open_responses.add(response)
        try:
            if self._stopping.is_set():
                raise _StoppingError
            yield
        finally:
            with self._lock:
                self._open_responses.discard(response)
            with contextlib.suppress(Exception):
                response.release_conn()

    def _request(self, scope: str | None, **arguments: Any) -> Any:
        """Send a pod LIST or WATCH for ``scope`` with the common arguments."""
        arguments.update(field_selector="status.phase=Running", _preload_content=False)
        if scope is None:
            return self._core.list_pod_for_all_namespaces(**arguments)
        return self._core.list_namespaced_pod(scope, **arguments)

    def _list(self, scope: str | None, cache: PodTargetCache) -> None:
        settings = self._settings
        started = time.monotonic()
        targets: dict[str, Target] = {}
        rejected: dict[str, str] = {}
        pods = 0
        continue_token: str | None = None
        resource_version: str | None = None
        while True:
            self._await_token()
            options: dict[str, Any] = {"limit": settings.page_size}
            if continue_token:
                options["_continue"] = continue_token
            try:
                response = self._request(
                    scope, _request_timeout=settings.request_timeout_seconds, **options
                )
                with self._tracked(response):
                    page = json.loads(response.data)
            except _StoppingError:
                raise
            except ApiException as error:
                if error.status == _HTTP_GONE and continue_token:
                    # The continue token expired mid-list: start the list again.
                    targets, rejected, pods, continue_token = {}, {}, 0, None
                    continue
                raise self._failure(_ERROR_LIST, error) from error
            except ValueError as error:
                raise _RequestFailedError(
                    _ERROR_DECODE, f"a pod list is not JSON: {error}"
                ) from error
            except Exception as error:
                raise self._failure(_ERROR_LIST, error) from error
            metadata = _mapping(_mapping(page).get("metadata"))
            page_items = _mapping(page).get("items")
            if isinstance(page_items, list):
                # Classify page by page: only targets are kept, never whole pods.
                pods += len(page_items)
                for item in page_items:
                    _classify(item, settings, targets, rejected)
            resource_version = resource_version or metadata.get("resourceVersion")
            continue_token = metadata.get("continue") or None
            if not continue_token:
                break
        if not isinstance(resource_version, str) or not resource_version:
            raise _RequestFailedError(
                _ERROR_DECODE, "the pod list has no metadata.resourceVersion; cannot watch"
            )
        cache.install(targets, rejected, resource_version)
        self._after_change(scope, cache)
        self._synced_scopes.add(scope)
        LOGGER.info(
            "target discovery in %s: %d targets among %d running pods (%d rejected) at "
            "resourceVersion %s, listed in %.0f ms; watching",
            f"namespace {scope}" if scope else "the cluster",
            len(targets),
            pods,
            len(rejected),
            resource_version,
            (time.monotonic() - started) * 1000,
        )

    def _watch(self, scope: str | None, cache: PodTargetCache) -> None:
        settings = self._settings
        self._await_token()
        started = time.monotonic()
        try:
            response = self._request(
                scope,
                watch=True,
                resource_version=cache.resource_version,
                allow_watch_bookmarks=True,
                timeout_seconds=settings.watch_timeout_seconds,
                _request_timeout=(
                    settings.request_timeout_seconds,
                    settings.watch_timeout_seconds + _WATCH_READ_GRACE_SECONDS,
                ),
            )
        except ApiException as error:
            if error.status == _HTTP_GONE:
                self._expired(scope, cache, _describe(error))
                return
            raise self._failure(_ERROR_WATCH, error) from error
        except Exception as error:
            raise self._failure(_ERROR_WATCH, error) from error
        events = 0
        with self._tracked(response):
            try:
                for line in iter_lines(response.stream(None, decode_content=True)):
                    events += 1
                    if self._handle(scope, cache, line):
                        return
            except (_StoppingError, _RequestFailedError):
                raise
            except Exception as error:
                raise self._failure(_ERROR_WATCH, error) from error
        if self._stopping.is_set():
            raise _StoppingError
        if events == 0 and time.monotonic() - started < _SHORT_WATCH_SECONDS:
            raise _RequestFailedError(_ERROR_WATCH, "the API server ended the watch at once")

    def _handle(self, scope: str | None, cache: PodTargetCache, line: bytes) -> bool:
        """Apply one watch line; True when the watch must end for a relist."""
        try:
            event = json.loads(line)
        except ValueError:
            self._count(_ERROR_DECODE)
            return False
        outcome = cache.apply(event)
        if outcome == "changed":
            self._after_change(scope, cache)
        elif outcome == "expired":
            self._expired(scope, cache, cache.last_problem or "410")
            return True
        elif outcome == "error":
            raise _RequestFailedError(_ERROR_WATCH, f"the watch ended with {cache.last_problem}")
        elif outcome == "invalid":
            self._count(_ERROR_DECODE)
        return False

    def _expired(self, scope: str | None, cache: PodTargetCache, detail: str) -> None:
        self._count(_ERROR_GONE)
        cache.mark_expired()
        LOGGER.info(
            "target discovery in %s: resourceVersion expired (%s); listing again",
            f"namespace {scope}" if scope else "the cluster",
            detail,
        )

    def _after_change(self, scope: str | None, cache: PodTargetCache) -> None:
        """Log newly rejected pods and publish the merged targets (one scope at a time)."""
        with self._publish_lock:
            rejected = cache.rejected
            fresh = [uid for uid in rejected if uid not in self._logged_rejections]
            for uid in fresh:
                LOGGER.warning("target discovery: skipping %s", rejected[uid])
            if fresh:
                self._count(_ERROR_INVALID_POD, len(fresh))
            self._logged_rejections = set(rejected) | {
                uid
                for other in self._caches.values()
                if other is not cache
                for uid in other.rejected
            }
            if len(self._caches) == 1:
                merged = cache.targets()
            else:
                merged = tuple(
                    dict.fromkeys(
                        target for each in self._caches.values() for target in each.targets()
                    )
                )
            with self._lock:
                self._targets = merged

    def _count(self, reason: str, count: int = 1) -> None:
        with self._lock:
            self._errors[reason] = self._errors.get(reason, 0) + count

    def _failure(self, reason: str, error: BaseException) -> Exception:
        if self._stopping.is_set():
            return _StoppingError()
        return _RequestFailedError(reason, _describe(error))


def _interrupt(response: Any) -> None:
    """Unblock a thread reading ``response`` (urllib3): shut its socket down."""
    shutdown = getattr(response, "shutdown", None)
    try:
        if shutdown is not None:
            shutdown()
        else:
            response.close()
    except Exception as error:  # already closed: nothing is blocked on it
        LOGGER.debug("interrupting a response: %s", error)
