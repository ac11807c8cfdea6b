"""The Kubernetes objects kubepulse's analyzers need, built from plain API dicts.

The input is the JSON the API server returns, parsed into Python: camelCase keys, as
``kubectl get -o json`` prints it or as the ``kubernetes`` client's
``ApiClient().sanitize_for_serialization()`` yields it. The output is frozen, typed
dataclasses with the few derived answers the analyzers keep asking for: a pod's QoS class,
its effective requests and limits as the scheduler counts them, whether it is a static
pod, a node's pressure conditions, a quota's utilisation.

Reading is tolerant of what is optional in the API (a pod that is not scheduled has no
``spec.nodeName``; a pod that has not started has no container statuses) and strict about
what is required or malformed: that raises :class:`ObjectError` naming the object, the
field and what was expected, for example::

    pod default/web: spec.containers[1].resources.limits.memory: ...

Quantities are exact :class:`~decimal.Decimal` values from :mod:`kubepulse.quantity`;
timestamps are integer milliseconds since the Unix epoch. The module does no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import MAX_EMAX, MIN_EMIN, Context, Decimal
from types import MappingProxyType
from typing import Any, ClassVar, Final, Literal, TypeAlias, TypeVar, overload

from kubepulse.errors import KubepulseValueError
from kubepulse.quantity import QuantityError, parse_quantity

__all__ = [
    "ANNOTATION_CONFIG_HASH",
    "ANNOTATION_CONFIG_MIRROR",
    "ANNOTATION_CONFIG_SOURCE",
    "CPU",
    "EPHEMERAL_STORAGE",
    "MEMORY",
    "PODS",
    "ContainerSpec",
    "ContainerState",
    "ContainerStateKind",
    "ContainerStatus",
    "HorizontalPodAutoscaler",
    "HpaMetric",
    "KubeObject",
    "MetricTarget",
    "Namespace",
    "Node",
    "NodeCondition",
    "ObjectError",
    "OwnerReference",
    "Pod",
    "QosClass",
    "ResourceList",
    "ResourceQuota",
    "ScalingPolicy",
    "ScalingRules",
    "Taint",
    "Termination",
    "compute_qos_class",
    "parse_list",
    "parse_object",
    "parse_rfc3339_ms",
]

CPU: Final = "cpu"
"""Resource name of CPU, measured in cores."""
MEMORY: Final = "memory"
"""Resource name of memory, measured in bytes."""
EPHEMERAL_STORAGE: Final = "ephemeral-storage"
"""Resource name of node-local scratch storage, measured in bytes."""
PODS: Final = "pods"
"""Resource name of the pod count (node capacity, quota)."""

ANNOTATION_CONFIG_MIRROR: Final = "kubernetes.io/config.mirror"
"""Set by the kubelet on the mirror pod it creates for a static pod; holds the config hash."""
ANNOTATION_CONFIG_HASH: Final = "kubernetes.io/config.hash"
"""The kubelet's hash of a static pod's manifest; the pod's cgroup is named after it."""
ANNOTATION_CONFIG_SOURCE: Final = "kubernetes.io/config.source"
"""Where the kubelet got the pod from: ``api``, ``file`` or ``http``."""

QosClass: TypeAlias = Literal["Guaranteed", "Burstable", "BestEffort"]
"""The three pod QoS classes the kubelet assigns."""

_QOS_CLASSES_BY_NAME: Final[Mapping[str, QosClass]] = MappingProxyType(
    {"Guaranteed": "Guaranteed", "Burstable": "Burstable", "BestEffort": "BestEffort"}
)
# Only CPU and memory decide QoS: ephemeral storage, hugepages and extended resources
# (GPUs) are ignored by the kubelet's rule, so they are ignored here too.
_QOS_RESOURCES: Final = (CPU, MEMORY)
# Pod-level resources (spec.resources) may only set these, plus hugepages-<size>.
_POD_LEVEL_RESOURCES: Final = frozenset({CPU, MEMORY})
_HUGEPAGES_PREFIX: Final = "hugepages-"
# The node conditions the kubelet raises when it starts evicting pods.
_PRESSURE_CONDITION_TYPES: Final = ("MemoryPressure", "DiskPressure", "PIDPressure")
# In a ResourceQuota `cpu` means the same as `requests.cpu` (and so on); either spelling
# may be the one the quota author used.
_QUOTA_ALIASES: Final[Mapping[str, str]] = MappingProxyType(
    {
        CPU: "requests.cpu",
        "requests.cpu": CPU,
        MEMORY: "requests.memory",
        "requests.memory": MEMORY,
        EPHEMERAL_STORAGE: "requests.ephemeral-storage",
        "requests.ephemeral-storage": EPHEMERAL_STORAGE,
    }
)
_STATIC_POD_SOURCES: Final = frozenset({"file", "http"})

# Sums of quantities must stay exact. The default context keeps 28 digits, too few for
# exabytes plus nano fractions (1Ei + 1n needs 28); 64 covers any real resource amount.
_EXACT: Final = Context(prec=64, Emax=MAX_EMAX, Emin=MIN_EMIN)

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=timezone.utc)
_RFC3339: Final = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:\d{2})"
)


class ObjectError(KubepulseValueError):
    """A Kubernetes object dict is missing a required field or has a malformed one.

    The message names the object (``pod default/web``), the field path
    (``spec.containers[1].resources.limits.memory``), what was wrong and what to do.
    """


# ---------------------------------------------------------------------------- timestamps


def parse_rfc3339_ms(text: str) -> int:
    """Parse an RFC 3339 timestamp as the API server writes it into epoch milliseconds.

    Accepts ``2026-11-01T10:00:00Z``, fractional seconds of any length
    (``...:00.123456789Z``, truncated to the millisecond) and numeric offsets
    (``+02:00``). Works the same on Python 3.10, whose ``fromisoformat`` cannot.

    Raises:
        KubepulseValueError: the text is not an RFC 3339 timestamp or names no real time.
    """
    match = _RFC3339.fullmatch(text)
    if match is None:
        raise KubepulseValueError(
            f"timestamp {text!r} is not RFC 3339; expected a form such as "
            "'2026-11-01T10:00:00Z' (fractional seconds and a +hh:mm offset are allowed)"
        )
    year, month, day, hour, minute, second = (int(part) for part in match.group(1, 2, 3, 4, 5, 6))
    fraction = match.group(7) or ""
    zone = match.group(8)
    try:
        if zone in ("Z", "z"):
            offset = timedelta(0)
        else:
            offset_hours, offset_minutes = int(zone[1:3]), int(zone[4:6])
            if offset_minutes >= 60:
                raise ValueError(f"offset minutes {offset_minutes} must be below 60")
            offset = timedelta(hours=offset_hours, minutes=offset_minutes)
            if zone[0] == "-":
                offset = -offset
        moment = datetime(year, month, day, hour, minute, second, tzinfo=timezone(offset))
    except ValueError as exc:
        raise KubepulseValueError(
            f"timestamp {text!r} names no real date, time or offset ({exc}); "
            "check the object's timestamps"
        ) from exc
    whole_seconds = (moment - _EPOCH) // timedelta(seconds=1)
    # Truncate rather than round, so a timestamp never lands in the following millisecond.
    milliseconds = int(fraction[:3].ljust(3, "0"))
    return whole_seconds * 1000 + milliseconds


# ---------------------------------------------------------------------------- ResourceList


_Default = TypeVar("_Default")


class ResourceList(Mapping[str, Decimal]):
    """An immutable mapping of resource name to exact amount, like the API's ResourceList.

    CPU is in cores (``500m`` is ``Decimal('0.5')``), memory and storage in bytes, counts
    (``pods``, ``count/deployments.apps``) as plain numbers. ``+`` adds two lists resource
    by resource (a resource present in one only keeps its amount), so
    ``sum(lists, ResourceList())`` totals many.
    """

    __slots__ = ("_amounts",)
    _amounts: Mapping[str, Decimal]

    def __init__(self, amounts: Mapping[str, Decimal] | Iterable[tuple[str, Decimal]] = ()) -> None:
        """Build from already-parsed amounts; use :meth:`from_api` for quantity strings.

        Raises:
            KubepulseValueError: a name is not a non-empty string or an amount is not a
                finite Decimal.
        """
        checked: dict[str, Decimal] = {}
        pairs = amounts.items() if isinstance(amounts, Mapping) else amounts
        for name, amount in pairs:
            if not isinstance(name, str) or not name:
                raise KubepulseValueError(
                    f"resource name {name!r} is not a non-empty string; "
                    "use names such as 'cpu', 'memory' or 'nvidia.com/gpu'"
                )
            if not isinstance(amount, Decimal) or not amount.is_finite():
                raise KubepulseValueError(
                    f"amount of {name!r} is {amount!r}, not a finite Decimal; parse quantity "
                    "strings with ResourceList.from_api or kubepulse.quantity.parse_quantity"
                )
            checked[name] = amount
        object.__setattr__(self, "_amounts", MappingProxyType(checked))

    @classmethod
    def from_api(
        cls,
        raw: object,
        *,
        object_ref: str = "object",
        field_path: str = "resources",
    ) -> ResourceList:
        """Parse an API ResourceList such as ``{"cpu": "500m", "memory": "1Gi"}``.

        ``None`` (the field is absent) gives an empty list. ``object_ref`` and
        ``field_path`` only word the error, e.g. ``pod default/web`` and
        ``spec.containers[1].resources.limits``.

        Raises:
            ObjectError: ``raw`` is not a mapping, or one of its quantities is malformed;
                the message names ``object_ref`` and the quantity's full field path.
        """
        if raw is None:
            return _EMPTY_RESOURCES
        if not isinstance(raw, Mapping):
            raise ObjectError(
                f"{object_ref}: {field_path}: expected a mapping of resource name to quantity "
                f"such as {{'cpu': '500m'}}, got {_json_type(raw)}"
            )
        amounts: dict[str, Decimal] = {}
        for name, text in raw.items():
            try:
                amounts[str(name)] = parse_quantity(text)
            except QuantityError as exc:
                # The quantity error already lists the valid forms; add where it was.
                raise ObjectError(f"{object_ref}: {field_path}.{name}: {exc}") from exc
        return cls(amounts)

    def __getitem__(self, name: str) -> Decimal:
        return self._amounts[name]

    # ``get`` and ``in`` straight from the dict: Mapping's versions go through
    # __getitem__ and an exception for every absent resource, and the analyzers ask
    # several times per container of every pod.
    @overload
    def get(self, name: str, /) -> Decimal | None: ...

    @overload
    def get(self, name: str, /, default: Decimal | _Default) -> Decimal | _Default: ...

    def get(self, name: str, /, default: object = None) -> object:
        return self._amounts.get(name, default)

    def __contains__(self, name: object) -> bool:
        return name in self._amounts

    def __iter__(self) -> Iterator[str]:
        return iter(self._amounts)

    def __len__(self) -> int:
        return len(self._amounts)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Mapping):
            return dict(self._amounts) == dict(other.items())
        return NotImplemented

    def __hash__(self) -> int:
        return hash(frozenset(self._amounts.items()))

    def __repr__(self) -> str:
        return f"ResourceList({dict(self._amounts)!r})"

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"ResourceList is immutable; cannot set {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"ResourceList is immutable; cannot delete {name!r}")

    def __add__(self, other: object) -> ResourceList:
        if not isinstance(other, ResourceList):
            return NotImplemented
        # Lists are immutable, so adding nothing can hand back the other operand: most
        # pods have one container and no overhead, and this spares a copy per addition.
        if not other._amounts:
            return self
        if not self._amounts:
            return other
        total = dict(self._amounts)
        for name, amount in other.items():
            total[name] = _EXACT.add(total.get(name, Decimal(0)), amount)
        return ResourceList(total)

    def max_per_resource(self, other: ResourceList) -> ResourceList:
        """The larger amount of each resource in either list (a union, like the scheduler's)."""
        if not other._amounts:
            return self
        largest = dict(self._amounts)
        for name, amount in other.items():
            if name not in largest or amount > largest[name]:
                largest[name] = amount
        return ResourceList(largest)

    @property
    def cpu_cores(self) -> Decimal | None:
        """CPU in cores, or None when the list has no ``cpu`` entry."""
        return self._amounts.get(CPU)

    @property
    def memory_bytes(self) -> Decimal | None:
        """Memory in bytes, or None when the list has no ``memory`` entry."""
        return self._amounts.get(MEMORY)


_EMPTY_RESOURCES: Final = ResourceList()


def _is_positive(amount: Decimal | None) -> bool:
    return amount is not None and amount > 0


# ---------------------------------------------------------------------------- reading dicts


@dataclass(frozen=True, slots=True)
class _Where:
    """The object being read, so every error can say which object and field were bad."""

    object_ref: str

    def error(self, field_path: str, problem: str) -> ObjectError:
        return ObjectError(f"{self.object_ref}: {field_path}: {problem}")


def _json_type(value: object) -> str:
    """Name a value by its JSON type, since that is what the user wrote."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean {value!r}"
    if isinstance(value, int | float | Decimal):
        return f"number {value!r}"
    if isinstance(value, str):
        return f"string {value!r}"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, Sequence):
        return "an array"
    return type(value).__name__


def _top_level(obj: object, kind: str) -> Mapping[str, Any]:
    if not isinstance(obj, Mapping):
        raise ObjectError(
            f"{kind}: expected the object as a mapping (parsed JSON from the API server), "
            f"got {_json_type(obj)}"
        )
    found_kind = obj.get("kind")
    # List items from the API server carry no kind, so a missing kind is fine.
    if found_kind is not None and found_kind != kind:
        raise ObjectError(
            f"{kind}: kind: expected {kind!r}, got {_json_type(found_kind)}; "
            "use parse_object() to build whatever kind an object is"
        )
    return obj


def _mapping(value: object, where: _Where, path: str) -> Mapping[str, Any]:
    if value is None:
        return MappingProxyType({})
    if not isinstance(value, Mapping):
        raise where.error(path, f"expected an object, got {_json_type(value)}")
    return value


def _array(value: object, where: _Where, path: str) -> Sequence[Any]:
    if value is None:
        return ()
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        raise where.error(path, f"expected an array, got {_json_type(value)}")
    return value


def _optional_str(value: object, where: _Where, path: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise where.error(path, f"expected a string, got {_json_type(value)}")
    return value


def _required_str(parent: Mapping[str, Any], key: str, where: _Where, path: str) -> str:
    value = _optional_str(parent.get(key), where, path)
    if not value:
        raise where.error(
            path,
            "is missing or empty; the API server always sets it, so pass the object as "
            "the API server returns it (kubectl get -o json), not a partial template",
        )
    return value


def _optional_int(value: object, where: _Where, path: str) -> int | None:
    if value is None:
        return None
    # bool is an int subclass in Python but never an integer in the API.
    if isinstance(value, bool) or not isinstance(value, int):
        raise where.error(path, f"expected an integer, got {_json_type(value)}")
    return value


def _bool(value: object, where: _Where, path: str, *, default: bool) -> bool:
    if value is None:
        return default
    if not isinstance(value, bool):
        raise where.error(path, f"expected true or false, got {_json_type(value)}")
    return value


def _string_map(value: object, where: _Where, path: str) -> Mapping[str, str]:
    raw = _mapping(value, where, path)
    strings: dict[str, str] = {}
    for key, item in raw.items():
        if not isinstance(item, str):
            raise where.error(
                f"{path}.{key}",
                f"expected a string, got {_json_type(item)}; quote label and annotation values",
            )
        strings[str(key)] = item
    return MappingProxyType(strings)


def _timestamp_ms(value: object, where: _Where, path: str) -> int | None:
    text = _optional_str(value, where, path)
    if text is None:
        return None
    try:
        return parse_rfc3339_ms(text)
    except KubepulseValueError as exc:
        raise where.error(path, str(exc)) from exc


def _resources(value: object, where: _Where, path: str) -> ResourceList:
    return ResourceList.from_api(value, object_ref=where.object_ref, field_path=path)


def _with_default_requests(requests: ResourceList, limits: ResourceList) -> ResourceList:
    """Requests as the API server defaults them: a limit without a request sets both."""
    if all(name in requests for name in limits):
        return requests
    return ResourceList({**dict(limits), **dict(requests)})


def _empty_strings() -> Mapping[str, str]:
    return MappingProxyType({})


# ---------------------------------------------------------------------------- containers


@dataclass(frozen=True, slots=True)
class ContainerSpec:
    """One container of a pod spec: an app container, an init container or a sidecar.

    ``requests`` are as the API server defaults them: a resource with a limit but no
    request gets a request equal to the limit (objects read from the API server already
    carry this; manifests may not).
    """

    name: str
    """The container's name, unique within the pod."""
    image: str | None
    """The image reference, e.g. ``nginx:1.27``."""
    requests: ResourceList
    """``resources.requests``, defaulted from limits."""
    limits: ResourceList
    """``resources.limits``; a resource missing here is unlimited."""
    is_init: bool = False
    """True for ``spec.initContainers`` entries, sidecars included."""
    is_sidecar: bool = False
    """True for a native sidecar: an init container with ``restartPolicy: Always`` (1.29+)."""

    @property
    def runs_to_completion(self) -> bool:
        """True for a classic init container, which must exit before the next one starts."""
        return self.is_init and not self.is_sidecar

    @classmethod
    def from_api(
        cls, raw: object, *, is_init: bool = False, object_ref: str = "pod", field_path: str = ""
    ) -> ContainerSpec:
        """Build from one entry of ``spec.containers`` or ``spec.initContainers``.

        ``object_ref`` and ``field_path`` only word errors, e.g. ``pod default/web`` and
        ``spec.containers[1]``.

        Raises:
            ObjectError: the name is missing, or a field or quantity is malformed.
        """
        where = _Where(object_ref)
        path = field_path or ("spec.initContainers[?]" if is_init else "spec.containers[?]")
        container = _mapping(raw, where, path)
        name = _required_str(container, "name", where, f"{path}.name")
        resources = _mapping(container.get("resources"), where, f"{path}.resources")
        limits = _resources(resources.get("limits"), where, f"{path}.resources.limits")
        requests = _resources(resources.get("requests"), where, f"{path}.resources.requests")
        restart_policy = _optional_str(
            container.get("restartPolicy"), where, f"{path}.restartPolicy"
        )
        return cls(
            name=name,
            image=_optional_str(container.get("image"), where, f"{path}.image"),
            requests=_with_default_requests(requests, limits),
            limits=limits,
            is_init=is_init,
            # Only init containers may carry restartPolicy: Always, and that is what makes
            # them sidecars that keep running beside the app containers.
            is_sidecar=is_init and restart_policy == "Always",
        )


@dataclass(frozen=True, slots=True)
class Termination:
    """How a container run ended: ``state.terminated`` or ``lastState.terminated``."""

    reason: str | None
    """Why it ended, e.g. ``OOMKilled``, ``Error``, ``Completed``."""
    exit_code: int
    """The process's exit code; 137 is SIGKILL, which an OOM kill delivers."""
    finished_at_ms: int | None = None
    """When it ended, epoch milliseconds."""
    started_at_ms: int | None = None
    """When that run had started, epoch milliseconds."""

    @property
    def is_oom_kill(self) -> bool:
        """True when the kernel's OOM killer ended the run."""
        return self.reason == "OOMKilled"

    @classmethod
    def _from_api(cls, raw: object, *, where: _Where, path: str) -> Termination:
        terminated = _mapping(raw, where, path)
        exit_code = _optional_int(terminated.get("exitCode"), where, f"{path}.exitCode")
        if exit_code is None:
            raise where.error(
                f"{path}.exitCode",
                "is missing; a terminated state always records the exit code, "
                "so pass the status as the API server returns it",
            )
        return cls(
            reason=_optional_str(terminated.get("reason"), where, f"{path}.reason"),
            exit_code=exit_code,
            finished_at_ms=_timestamp_ms(terminated.get("finishedAt"), where, f"{path}.finishedAt"),
            started_at_ms=_timestamp_ms(terminated.get("startedAt"), where, f"{path}.startedAt"),
        )


ContainerStateKind: TypeAlias = Literal["waiting", "running", "terminated", "unknown"]


@dataclass(frozen=True, slots=True)
class ContainerState:
    """What a container is doing now: ``status.containerStatuses[].state``."""

    kind: ContainerStateKind
    """``waiting``, ``running``, ``terminated``, or ``unknown`` when the state is empty."""
    reason: str | None = None
    """Why it is waiting or terminated, e.g. ``CrashLoopBackOff``, ``ContainerCreating``."""
    started_at_ms: int | None = None
    """When the current (running) or last (terminated) run started, epoch milliseconds."""
    termination: Termination | None = None
    """Details when ``kind`` is ``terminated``."""

    @classmethod
    def _from_api(cls, raw: object, *, where: _Where, path: str) -> ContainerState:
        state = _mapping(raw, where, path)
        # The API sets at most one of the three; if a malformed object sets more, the
        # most final one wins.
        if state.get("terminated") is not None:
            termination = Termination._from_api(
                state["terminated"], where=where, path=f"{path}.terminated"
            )
            return cls(
                kind="terminated",
                reason=termination.reason,
                started_at_ms=termination.started_at_ms,
                termination=termination,
            )
        if state.get("running") is not None:
            running = _mapping(state["running"], where, f"{path}.running")
            return cls(
                kind="running",
                started_at_ms=_timestamp_ms(
                    running.get("startedAt"), where, f"{path}.running.startedAt"
                ),
            )
        if state.get("waiting") is not None:
            waiting = _mapping(state["waiting"], where, f"{path}.waiting")
            return cls(
                kind="waiting",
                reason=_optional_str(waiting.get("reason"), where, f"{path}.waiting.reason"),
            )
        return cls(kind="unknown")


@dataclass(frozen=True, slots=True)
class ContainerStatus:
    """One entry of ``status.containerStatuses`` or ``status.initContainerStatuses``."""

    name: str
    """The container's name, matching a :class:`ContainerSpec`."""
    container_id: str | None
    """The runtime's id without the scheme (``abc…`` of ``containerd://abc…``)."""
    runtime: str | None
    """The scheme of ``containerID``: ``containerd``, ``cri-o``, ``docker``…"""
    ready: bool
    """Whether the container passes its readiness probe."""
    restart_count: int
    """How many times the kubelet restarted the container."""
    state: ContainerState
    """What it is doing now."""
    last_termination: Termination | None = None
    """How the previous run ended (``lastState.terminated``), if it did."""
    image: str | None = None
    """The image the runtime is running."""
    is_init: bool = False
    """True for entries of ``status.initContainerStatuses``."""

    @property
    def was_oom_killed(self) -> bool:
        """True when the current or the previous run was ended by the OOM killer."""
        current = self.state.termination
        return (current is not None and current.is_oom_kill) or (
            self.last_termination is not None and self.last_termination.is_oom_kill
        )

    @classmethod
    def from_api(
        cls, raw: object, *, is_init: bool = False, object_ref: str = "pod", field_path: str = ""
    ) -> ContainerStatus:
        """Build from one entry of ``status.containerStatuses`` (or the init list).

        Raises:
            ObjectError: the name is missing, or ``containerID`` is not
                ``<runtime>://<id>``, or a field is malformed.
        """
        where = _Where(object_ref)
        path = field_path or "status.containerStatuses[?]"
        status = _mapping(raw, where, path)
        name = _required_str(status, "name", where, f"{path}.name")
        runtime, container_id = _split_container_id(
            _optional_str(status.get("containerID"), where, f"{path}.containerID"),
            where,
            f"{path}.containerID",
        )
        last_state = _mapping(status.get("lastState"), where, f"{path}.lastState")
        last_termination = None
        if last_state.get("terminated") is not None:
            last_termination = Termination._from_api(
                last_state["terminated"], where=where, path=f"{path}.lastState.terminated"
            )
        restart_count = _optional_int(status.get("restartCount"), where, f"{path}.restartCount")
        return cls(
            name=name,
            container_id=container_id,
            runtime=runtime,
            ready=_bool(status.get("ready"), where, f"{path}.ready", default=False),
            # The API always sets it; a hand-written status without one has not restarted.
            restart_count=0 if restart_count is None else restart_count,
            state=ContainerState._from_api(status.get("state"), where=where, path=f"{path}.state"),
            last_termination=last_termination,
            image=_optional_str(status.get("image"), where, f"{path}.image"),
            is_init=is_init,
        )


def _split_container_id(
    text: str | None, where: _Where, path: str
) -> tuple[str | None, str | None]:
    if not text:
        # A container that has not been created yet has no id (absent or "").
        return None, None
    runtime, separator, container_id = text.partition("://")
    if not separator or not runtime or not container_id:
        raise where.error(
            path,
            f"{text!r} is not '<runtime>://<id>' (such as 'containerd://3f2a…'); "
            "pass the status as the kubelet reports it",
        )
    return runtime, container_id


# ---------------------------------------------------------------------------- pods


@dataclass(frozen=True, slots=True)
class OwnerReference:
    """One entry of ``metadata.ownerReferences``."""

    kind: str
    """The owner's kind, e.g. ``ReplicaSet``, ``StatefulSet``, ``Node`` (mirror pods)."""
    name: str
    """The owner's name, in the same namespace as the owned object."""
    uid: str
    """The owner's UID."""
    controller: bool = False
    """True for the one owner that manages the object."""
    api_version: str = ""
    """The owner's group/version, e.g. ``apps/v1``."""

    @classmethod
    def _from_api(cls, raw: object, *, where: _Where, path: str) -> OwnerReference:
        owner = _mapping(raw, where, path)
        return cls(
            kind=_required_str(owner, "kind", where, f"{path}.kind"),
            name=_required_str(owner, "name", where, f"{path}.name"),
            uid=_required_str(owner, "uid", where, f"{path}.uid"),
            controller=_bool(owner.get("controller"), where, f"{path}.controller", default=False),
            api_version=_required_str(owner, "apiVersion", where, f"{path}.apiVersion"),
        )


def compute_qos_class(
    containers: Iterable[ContainerSpec],
    *,
    pod_requests: ResourceList = _EMPTY_RESOURCES,
    pod_limits: ResourceList = _EMPTY_RESOURCES,
) -> QosClass:
    """The QoS class the kubelet assigns to a pod with these containers.

    Pass every container of the pod, init containers and sidecars included; requests are
    taken as given, so default them from limits first (as :meth:`ContainerSpec.from_api`
    does). Only positive CPU and memory amounts count. When the pod sets pod-level
    resources (``spec.resources``, 1.32+), those decide instead of the containers.

    - BestEffort: no CPU or memory request or limit anywhere.
    - Guaranteed: every container has positive CPU and memory limits, and the pod's summed
      requests equal its summed limits for both.
    - Burstable: anything else.
    """
    if _sets_pod_level_resources(pod_requests, pod_limits):
        pairs: Iterable[tuple[ResourceList, ResourceList]] = [(pod_requests, pod_limits)]
    else:
        pairs = ((container.requests, container.limits) for container in containers)
    requested: dict[str, Decimal] = {}
    limited: dict[str, Decimal] = {}
    every_container_limited = True
    for requests, limits in pairs:
        for name in _QOS_RESOURCES:
            request = requests.get(name)
            if request is not None and request > 0:
                requested[name] = requested.get(name, Decimal(0)) + request
            limit = limits.get(name)
            if limit is not None and limit > 0:
                limited[name] = limited.get(name, Decimal(0)) + limit
            else:
                every_container_limited = False
    if not requested and not limited:
        return "BestEffort"
    # The kubelet compares the pod's sums, not each container; validation (request <=
    # limit per container) makes the two agree for any object the API server accepted.
    if every_container_limited and requested == limited:
        return "Guaranteed"
    return "Burstable"


def _sets_pod_level_resources(pod_requests: ResourceList, pod_limits: ResourceList) -> bool:
    return any(_is_pod_level_resource(name) for name in (*pod_requests, *pod_limits))


def _is_pod_level_resource(name: str) -> bool:
    return name in _POD_LEVEL_RESOURCES or name.startswith(_HUGEPAGES_PREFIX)


def _aggregate_containers(
    init_containers: Sequence[ContainerSpec],
    containers: Sequence[ContainerSpec],
    amounts_of: Callable[[ContainerSpec], ResourceList],
) -> ResourceList:
    """Sum a pod's containers the way the scheduler does (sidecar KEP-753).

    App containers and sidecars run together, so they add up. A classic init container
    runs alone except for the sidecars started before it, so it needs its own amount plus
    theirs; the pod needs the larger of the two phases, resource by resource.
    """
    steady_state = sum((amounts_of(container) for container in containers), _EMPTY_RESOURCES)
    sidecars_started = _EMPTY_RESOURCES
    init_peak = _EMPTY_RESOURCES
    for container in init_containers:
        amounts = amounts_of(container)
        if container.is_sidecar:
            steady_state += amounts
            sidecars_started += amounts
            during_start = sidecars_started
        else:
            during_start = amounts + sidecars_started
        init_peak = init_peak.max_per_resource(during_start)
    return steady_state.max_per_resource(init_peak)


def _override_pod_level(aggregate: ResourceList, pod_level: ResourceList) -> ResourceList:
    overrides = {name: amount for name, amount in pod_level.items() if _is_pod_level_resource(name)}
    if not overrides:
        return aggregate
    return ResourceList({**dict(aggregate), **overrides})


@dataclass(frozen=True, slots=True)
class Pod:
    """A pod: identity, ownership, containers with their resources, and their statuses."""

    KIND: ClassVar[str] = "Pod"

    namespace: str
    """``metadata.namespace``."""
    name: str
    """``metadata.name``."""
    uid: str | None
    """``metadata.uid``; None only for objects that never reached the API server."""
    qos_class: QosClass
    """``status.qosClass``, or computed by the kubelet's rule when the status lacks it."""
    containers: tuple[ContainerSpec, ...] = ()
    """``spec.containers``, in order."""
    init_containers: tuple[ContainerSpec, ...] = ()
    """``spec.initContainers``, in order, native sidecars included."""
    container_statuses: tuple[ContainerStatus, ...] = ()
    """``status.containerStatuses``."""
    init_container_statuses: tuple[ContainerStatus, ...] = ()
    """``status.initContainerStatuses``."""
    node_name: str | None = None
    """``spec.nodeName``; None while the pod is not scheduled."""
    phase: str | None = None
    """``status.phase``: Pending, Running, Succeeded, Failed or Unknown."""
    labels: Mapping[str, str] = field(default_factory=_empty_strings, hash=False)
    """``metadata.labels``."""
    annotations: Mapping[str, str] = field(default_factory=_empty_strings, hash=False)
    """``metadata.annotations``."""
    owner_references: tuple[OwnerReference, ...] = ()
    """``metadata.ownerReferences``."""
    priority: int | None = None
    """``spec.priority``, resolved by admission from the priority class."""
    priority_class_name: str | None = None
    """``spec.priorityClassName``."""
    creation_ms: int | None = None
    """``metadata.creationTimestamp``, epoch milliseconds."""
    start_ms: int | None = None
    """``status.startTime``: when the kubelet accepted the pod, epoch milliseconds."""
    deletion_ms: int | None = None
    """``metadata.deletionTimestamp``: set once the pod is terminating."""
    overhead: ResourceList = _EMPTY_RESOURCES
    """``spec.overhead``: what the RuntimeClass charges per pod (e.g. a VM sandbox)."""
    pod_requests: ResourceList = _EMPTY_RESOURCES
    """Pod-level ``spec.resources.requests`` (1.32+), defaulted from pod-level limits."""
    pod_limits: ResourceList = _EMPTY_RESOURCES
    """Pod-level ``spec.resources.limits`` (1.32+)."""
    _requests_memo: ResourceList | None = field(
        default=None, init=False, repr=False, compare=False, hash=False
    )
    _limits_memo: ResourceList | None = field(
        default=None, init=False, repr=False, compare=False, hash=False
    )
    _request_amounts_memo: tuple[float, float, float] | None = field(
        default=None, init=False, repr=False, compare=False, hash=False
    )
    _running_names_memo: tuple[str, ...] | None = field(
        default=None, init=False, repr=False, compare=False, hash=False
    )
    _static_memo: bool | None = field(
        default=None, init=False, repr=False, compare=False, hash=False
    )

    @property
    def key(self) -> str:
        """``namespace/name``, the pod's identity in messages and caches."""
        return f"{self.namespace}/{self.name}"

    @property
    def all_containers(self) -> tuple[ContainerSpec, ...]:
        """Init containers (sidecars included) then app containers, in start order."""
        return self.init_containers + self.containers

    @property
    def running_container_names(self) -> tuple[str, ...]:
        """Names of the containers that run alongside the app: app containers and native
        sidecars, in :attr:`all_containers` order (init containers that run to completion
        hold nothing once the pod runs).

        Memoised like :attr:`effective_requests`: the node analysis looks every running
        container of every pod up in the usage history.
        """
        if self._running_names_memo is None:
            object.__setattr__(
                self,
                "_running_names_memo",
                tuple(
                    container.name
                    for container in self.all_containers
                    if not container.is_init or container.is_sidecar
                ),
            )
        assert self._running_names_memo is not None
        return self._running_names_memo

    @property
    def controller_owner(self) -> OwnerReference | None:
        """The owner reference marked ``controller: true`` (a ReplicaSet, Job, Node…)."""
        return next((owner for owner in self.owner_references if owner.controller), None)

    @property
    def mirror_of(self) -> str | None:
        """For a mirror pod, the config hash of the static pod it mirrors; else None."""
        return self.annotations.get(ANNOTATION_CONFIG_MIRROR)

    @property
    def is_static(self) -> bool:
        """True for a static pod (from the kubelet's manifest directory or URL).

        The API server only ever shows static pods through their mirror pods, which
        carry the mirror annotation; the kubelet's own view carries the config source.
        """
        if self._static_memo is None:
            # Memoised: the node analysis asks for every pod of the cluster.
            object.__setattr__(
                self,
                "_static_memo",
                self.mirror_of is not None
                or self.annotations.get(ANNOTATION_CONFIG_SOURCE) in _STATIC_POD_SOURCES,
            )
        assert self._static_memo is not None
        return self._static_memo

    @property
    def cgroup_uid(self) -> str | None:
        """The UID in the pod's cgroup path, to match cgroups to pods.

        The kubelet names a static pod's cgroup after its config hash, not after the
        mirror pod's ``metadata.uid``, which the API server made up.
        """
        if self.is_static:
            config_hash = self.annotations.get(ANNOTATION_CONFIG_HASH) or self.mirror_of
            if config_hash:
                return config_hash
        return self.uid

    @property
    def effective_requests(self) -> ResourceList:
        """What the scheduler reserves for the pod, per resource.

        The larger of (app containers + all sidecars) and, for each init container, its
        own requests plus those of the sidecars started before it; pod-level requests
        replace CPU, memory and hugepages when set; then ``spec.overhead`` is added.
        """
        if self._requests_memo is None:
            aggregate = _aggregate_containers(
                self.init_containers, self.containers, lambda container: container.requests
            )
            # The pod is frozen: computed once, on first use, for every analyzer after.
            object.__setattr__(
                self,
                "_requests_memo",
                _override_pod_level(aggregate, self.pod_requests) + self.overhead,
            )
        assert self._requests_memo is not None
        return self._requests_memo

    @property
    def request_amounts(self) -> tuple[float, float, float]:
        """``(cpu cores, memory bytes, ephemeral-storage bytes)`` of :attr:`effective_requests`.

        As floats, 0 where not requested: what the node and fragmentation analyzers add up
        for every pod of every node, converted once per pod rather than once per use.
        """
        if self._request_amounts_memo is None:
            requests = self.effective_requests._amounts
            cpu = requests.get(CPU)
            memory = requests.get(MEMORY)
            storage = requests.get(EPHEMERAL_STORAGE)
            object.__setattr__(
                self,
                "_request_amounts_memo",
                (
                    0.0 if cpu is None else float(cpu),
                    0.0 if memory is None else float(memory),
                    0.0 if storage is None else float(storage),
                ),
            )
        assert self._request_amounts_memo is not None
        return self._request_amounts_memo

    @property
    def effective_limits(self) -> ResourceList:
        """The pod's limits, summed like :attr:`effective_requests`.

        A container without a limit for a resource adds nothing here, as in the scheduler
        and ``kubectl describe node``, although the pod is then effectively unlimited for
        that resource: check :attr:`has_missing_limits`. Overhead is added only to
        resources that have a non-zero limit.
        """
        if self._limits_memo is None:
            aggregate = _override_pod_level(
                _aggregate_containers(
                    self.init_containers, self.containers, lambda container: container.limits
                ),
                self.pod_limits,
            )
            with_overhead = dict(aggregate)
            for name, amount in self.overhead.items():
                if _is_positive(with_overhead.get(name)):
                    with_overhead[name] = _EXACT.add(with_overhead[name], amount)
            object.__setattr__(self, "_limits_memo", ResourceList(with_overhead))
        assert self._limits_memo is not None
        return self._limits_memo

    def containers_missing_limits(
        self, resources: Iterable[str] = _QOS_RESOURCES
    ) -> tuple[str, ...]:
        """Names of containers (init and sidecars included) without a positive limit.

        A zero limit counts as missing, as in the kubelet's QoS rule. A resource capped by a
        pod-level limit is not missing for any container.
        """
        return self._containers_missing(resources, self.pod_limits, lambda c: c.limits)

    def containers_missing_requests(
        self, resources: Iterable[str] = _QOS_RESOURCES
    ) -> tuple[str, ...]:
        """Names of containers (init and sidecars included) without a positive request.

        Requests defaulted from limits count as set. A resource with a pod-level request is
        not missing for any container.
        """
        return self._containers_missing(resources, self.pod_requests, lambda c: c.requests)

    @property
    def has_missing_limits(self) -> bool:
        """True when some container has no CPU or no memory limit."""
        return bool(self.containers_missing_limits())

    @property
    def has_missing_requests(self) -> bool:
        """True when some container has no CPU or no memory request."""
        return bool(self.containers_missing_requests())

    def _containers_missing(
        self,
        resources: Iterable[str],
        pod_level: ResourceList,
        amounts_of: Callable[[ContainerSpec], ResourceList],
    ) -> tuple[str, ...]:
        uncovered = [name for name in resources if not _is_positive(pod_level.get(name))]
        return tuple(
            container.name
            for container in self.all_containers
            if any(not _is_positive(amounts_of(container).get(name)) for name in uncovered)
        )

    def status_of(self, container_name: str) -> ContainerStatus | None:
        """The status of the named container (app or init), or None if not reported yet."""
        for status in self.container_statuses + self.init_container_statuses:
            if status.name == container_name:
                return status
        return None

    @property
    def restart_count(self) -> int:
        """Restarts of all containers, init containers and sidecars included."""
        return sum(
            status.restart_count
            for status in self.container_statuses + self.init_container_statuses
        )

    @classmethod
    def from_api(cls, obj: Mapping[str, Any]) -> Pod:
        """Build from a Pod object as the API server returns it.

        Raises:
            ObjectError: ``metadata.name`` or ``metadata.namespace`` is missing, ``kind``
                is not Pod, or a field, quantity or timestamp is malformed.
        """
        raw = _top_level(obj, cls.KIND)
        metadata = _mapping(raw.get("metadata"), _Where("pod"), "metadata")
        namespace = _required_namespace(metadata, "pod")
        name = _required_str(
            metadata, "name", _Where(f"pod in namespace {namespace}"), "metadata.name"
        )
        where = _Where(f"pod {namespace}/{name}")
        spec = _mapping(raw.get("spec"), where, "spec")
        status = _mapping(raw.get("status"), where, "status")

        containers = tuple(
            ContainerSpec.from_api(
                item, object_ref=where.object_ref, field_path=f"spec.containers[{index}]"
            )
            for index, item in enumerate(_array(spec.get("containers"), where, "spec.containers"))
        )
        init_containers = tuple(
            ContainerSpec.from_api(
                item,
                is_init=True,
                object_ref=where.object_ref,
                field_path=f"spec.initContainers[{index}]",
            )
            for index, item in enumerate(
                _array(spec.get("initContainers"), where, "spec.initContainers")
            )
        )
        pod_resources = _mapping(spec.get("resources"), where, "spec.resources")
        pod_limits = _resources(pod_resources.get("limits"), where, "spec.resources.limits")
        pod_requests = _with_default_requests(
            _resources(pod_resources.get("requests"), where, "spec.resources.requests"),
            pod_limits,
        )
        reported_qos = _optional_str(status.get("qosClass"), where, "status.qosClass")
        qos_class: QosClass | None
        if reported_qos is None:
            qos_class = compute_qos_class(
                init_containers + containers, pod_requests=pod_requests, pod_limits=pod_limits
            )
        else:
            qos_class = _QOS_CLASSES_BY_NAME.get(reported_qos)
        if qos_class is None:
            raise where.error(
                "status.qosClass",
                f"{reported_qos!r} is not one of Guaranteed, Burstable, BestEffort; "
                "remove the field to have the class computed from the containers",
            )
        return cls(
            namespace=namespace,
            name=name,
            uid=_optional_str(metadata.get("uid"), where, "metadata.uid"),
            qos_class=qos_class,
            containers=containers,
            init_containers=init_containers,
            container_statuses=_statuses(status, "containerStatuses", where, is_init=False),
            init_container_statuses=_statuses(status, "initContainerStatuses", where, is_init=True),
            node_name=_optional_str(spec.get("nodeName"), where, "spec.nodeName"),
            phase=_optional_str(status.get("phase"), where, "status.phase"),
            labels=_string_map(metadata.get("labels"), where, "metadata.labels"),
            annotations=_string_map(metadata.get("annotations"), where, "metadata.annotations"),
            owner_references=_owner_references(metadata, where),
            priority=_optional_int(spec.get("priority"), where, "spec.priority"),
            priority_class_name=_optional_str(
                spec.get("priorityClassName"), where, "spec.priorityClassName"
            ),
            creation_ms=_timestamp_ms(
                metadata.get("creationTimestamp"), where, "metadata.creationTimestamp"
            ),
            start_ms=_timestamp_ms(status.get("startTime"), where, "status.startTime"),
            deletion_ms=_timestamp_ms(
                metadata.get("deletionTimestamp"), where, "metadata.deletionTimestamp"
            ),
            overhead=_resources(spec.get("overhead"), where, "spec.overhead"),
            pod_requests=pod_requests,
            pod_limits=pod_limits,
        )

    @classmethod
    def list_from_api(cls, obj: Mapping[str, Any]) -> tuple[Pod, ...]:
        """Build every item of a ``PodList`` (or a ``List`` of pods).

        Raises:
            ObjectError: the list or one of its items is malformed; the message says which
                item.
        """
        return _parse_items(obj, cls.KIND, cls.from_api)


def _required_namespace(metadata: Mapping[str, Any], kind_label: str) -> str:
    namespace = _optional_str(metadata.get("namespace"), _Where(kind_label), "metadata.namespace")
    if not namespace:
        name = metadata.get("name")
        ref = f"{kind_label} {name}" if isinstance(name, str) and name else kind_label
        raise ObjectError(
            f"{ref}: metadata.namespace: is missing; objects from the API server always carry "
            "it, so for a manifest set metadata.namespace (kubectl would use 'default')"
        )
    return namespace


def _statuses(
    status: Mapping[str, Any], key: str, where: _Where, *, is_init: bool
) -> tuple[ContainerStatus, ...]:
    return tuple(
        ContainerStatus.from_api(
            item, is_init=is_init, object_ref=where.object_ref, field_path=f"status.{key}[{index}]"
        )
        for index, item in enumerate(_array(status.get(key), where, f"status.{key}"))
    )


def _owner_references(metadata: Mapping[str, Any], where: _Where) -> tuple[OwnerReference, ...]:
    return tuple(
        OwnerReference._from_api(item, where=where, path=f"metadata.ownerReferences[{index}]")
        for index, item in enumerate(
            _array(metadata.get("ownerReferences"), where, "metadata.ownerReferences")
        )
    )


# ---------------------------------------------------------------------------- nodes


@dataclass(frozen=True, slots=True)
class NodeCondition:
    """One entry of a node's ``status.conditions``."""

    type: str
    """``Ready``, ``MemoryPressure``, ``DiskPressure``, ``PIDPressure``, ``NetworkUnavailable``…"""
    status: str
    """``True``, ``False`` or ``Unknown`` (a string, as in the API)."""
    reason: str | None = None
    """Machine-readable cause, e.g. ``KubeletHasDiskPressure``."""
    message: str | None = None
    """Human-readable detail."""
    last_heartbeat_ms: int | None = None
    """When the kubelet last reported this condition, epoch milliseconds."""
    last_transition_ms: int | None = None
    """When the status last changed, epoch milliseconds."""

    @property
    def is_true(self) -> bool:
        """True when ``status`` is ``"True"`` (``Unknown`` is not true)."""
        return self.status == "True"

    @classmethod
    def _from_api(cls, raw: object, *, where: _Where, path: str) -> NodeCondition:
        condition = _mapping(raw, where, path)
        return cls(
            type=_required_str(condition, "type", where, f"{path}.type"),
            status=_required_str(condition, "status", where, f"{path}.status"),
            reason=_optional_str(condition.get("reason"), where, f"{path}.reason"),
            message=_optional_str(condition.get("message"), where, f"{path}.message"),
            last_heartbeat_ms=_timestamp_ms(
                condition.get("lastHeartbeatTime"), where, f"{path}.lastHeartbeatTime"
            ),
            last_transition_ms=_timestamp_ms(
                condition.get("lastTransitionTime"), where, f"{path}.lastTransitionTime"
            ),
        )


@dataclass(frozen=True, slots=True)
class Taint:
    """One entry of a node's ``spec.taints``."""

    key: str
    """The taint key, e.g. ``node.kubernetes.io/disk-pressure``."""
    effect: str
    """``NoSchedule``, ``PreferNoSchedule`` or ``NoExecute``."""
    value: str | None = None
    """The taint value, often absent."""
    time_added_ms: int | None = None
    """When a NoExecute taint was added, epoch milliseconds."""

    @classmethod
    def _from_api(cls, raw: object, *, where: _Where, path: str) -> Taint:
        taint = _mapping(raw, where, path)
        return cls(
            key=_required_str(taint, "key", where, f"{path}.key"),
            effect=_required_str(taint, "effect", where, f"{path}.effect"),
            value=_optional_str(taint.get("value"), where, f"{path}.value"),
            time_added_ms=_timestamp_ms(taint.get("timeAdded"), where, f"{path}.timeAdded"),
        )


@dataclass(frozen=True, slots=True)
class Node:
    """A node: its size, what is left for pods, its health and its taints."""

    KIND: ClassVar[str] = "Node"

    name: str
    """``metadata.name``."""
    uid: str | None = None
    """``metadata.uid``."""
    labels: Mapping[str, str] = field(default_factory=_empty_strings, hash=False)
    """``metadata.labels``."""
    capacity: ResourceList = _EMPTY_RESOURCES
    """``status.capacity``: the machine's total."""
    allocatable: ResourceList = _EMPTY_RESOURCES
    """``status.allocatable``: capacity minus system and kube reservations and eviction
    thresholds, i.e. what the scheduler may hand to pods."""
    conditions: tuple[NodeCondition, ...] = ()
    """``status.conditions``."""
    taints: tuple[Taint, ...] = ()
    """``spec.taints``."""
    unschedulable: bool = False
    """``spec.unschedulable``: set by ``kubectl cordon``."""
    creation_ms: int | None = None
    """``metadata.creationTimestamp``, epoch milliseconds."""

    def condition(self, condition_type: str) -> NodeCondition | None:
        """The condition of that type (``Ready``, ``DiskPressure``…), or None."""
        return next((c for c in self.conditions if c.type == condition_type), None)

    @property
    def is_ready(self) -> bool:
        """True when the ``Ready`` condition is ``True``; a missing or Unknown one is not."""
        ready = self.condition("Ready")
        return ready is not None and ready.is_true

    @property
    def pressure_conditions(self) -> tuple[NodeCondition, ...]:
        """The kubelet's eviction conditions (memory, disk, PID pressure) that are True."""
        return tuple(
            condition
            for condition in self.conditions
            if condition.type in _PRESSURE_CONDITION_TYPES and condition.is_true
        )

    @classmethod
    def from_api(cls, obj: Mapping[str, Any]) -> Node:
        """Build from a Node object as the API server returns it.

        Raises:
            ObjectError: ``metadata.name`` is missing, ``kind`` is not Node, or a field,
                quantity or timestamp is malformed.
        """
        raw = _top_level(obj, cls.KIND)
        metadata = _mapping(raw.get("metadata"), _Where("node"), "metadata")
        name = _required_str(metadata, "name", _Where("node"), "metadata.name")
        where = _Where(f"node {name}")
        spec = _mapping(raw.get("spec"), where, "spec")
        status = _mapping(raw.get("status"), where, "status")
        return cls(
            name=name,
            uid=_optional_str(metadata.get("uid"), where, "metadata.uid"),
            labels=_string_map(metadata.get("labels"), where, "metadata.labels"),
            capacity=_resources(status.get("capacity"), where, "status.capacity"),
            allocatable=_resources(status.get("allocatable"), where, "status.allocatable"),
            conditions=tuple(
                NodeCondition._from_api(item, where=where, path=f"status.conditions[{index}]")
                for index, item in enumerate(
                    _array(status.get("conditions"), where, "status.conditions")
                )
            ),
            taints=tuple(
                Taint._from_api(item, where=where, path=f"spec.taints[{index}]")
                for index, item in enumerate(_array(spec.get("taints"), where, "spec.taints"))
            ),
            unschedulable=_bool(
                spec.get("unschedulable"), where, "spec.unschedulable", default=False
            ),
            creation_ms=_timestamp_ms(
                metadata.get("creationTimestamp"), where, "metadata.creationTimestamp"
            ),
        )

    @classmethod
    def list_from_api(cls, obj: Mapping[str, Any]) -> tuple[Node, ...]:
        """Build every item of a ``NodeList`` (or a ``List`` of nodes)."""
        return _parse_items(obj, cls.KIND, cls.from_api)


# ---------------------------------------------------------------------------- namespaces


@dataclass(frozen=True, slots=True)
class Namespace:
    """A namespace."""

    KIND: ClassVar[str] = "Namespace"

    name: str
    """``metadata.name``."""
    uid: str | None = None
    """``metadata.uid``."""
    labels: Mapping[str, str] = field(default_factory=_empty_strings, hash=False)
    """``metadata.labels`` (1.21+ always has ``kubernetes.io/metadata.name``)."""
    annotations: Mapping[str, str] = field(default_factory=_empty_strings, hash=False)
    """``metadata.annotations``."""
    phase: str | None = None
    """``status.phase``: ``Active`` or ``Terminating``."""
    creation_ms: int | None = None
    """``metadata.creationTimestamp``, epoch milliseconds."""

    @property
    def is_terminating(self) -> bool:
        """True while the namespace is being deleted (no new objects are admitted)."""
        return self.phase == "Terminating"

    @classmethod
    def from_api(cls, obj: Mapping[str, Any]) -> Namespace:
        """Build from a Namespace object as the API server returns it.

        Raises:
            ObjectError: ``metadata.name`` is missing, ``kind`` is not Namespace, or a field
                is malformed.
        """
        raw = _top_level(obj, cls.KIND)
        metadata = _mapping(raw.get("metadata"), _Where("namespace"), "metadata")
        name = _required_str(metadata, "name", _Where("namespace"), "metadata.name")
        where = _Where(f"namespace {name}")
        status = _mapping(raw.get("status"), where, "status")
        return cls(
            name=name,
            uid=_optional_str(metadata.get("uid"), where, "metadata.uid"),
            labels=_string_map(metadata.get("labels"), where, "metadata.labels"),
            annotations=_string_map(metadata.get("annotations"), where, "metadata.annotations"),
            phase=_optional_str(status.get("phase"), where, "status.phase"),
            creation_ms=_timestamp_ms(
                metadata.get("creationTimestamp"), where, "metadata.creationTimestamp"
            ),
        )

    @classmethod
    def list_from_api(cls, obj: Mapping[str, Any]) -> tuple[Namespace, ...]:
        """Build every item of a ``NamespaceList`` (or a ``List`` of namespaces)."""
        return _parse_items(obj, cls.KIND, cls.from_api)


# ---------------------------------------------------------------------------- quotas


@dataclass(frozen=True, slots=True)
class ResourceQuota:
    """A namespace's ResourceQuota: its hard limits and what is used against them."""

    KIND: ClassVar[str] = "ResourceQuota"

    namespace: str
    """``metadata.namespace``."""
    name: str
    """``metadata.name``."""
    uid: str | None = None
    """``metadata.uid``."""
    hard: ResourceList = _EMPTY_RESOURCES
    """The enforced limits: ``status.hard``, or ``spec.hard`` before the quota controller
    has synced the status."""
    used: ResourceList = _EMPTY_RESOURCES
    """``status.used``; empty until the quota controller has counted."""
    scopes: tuple[str, ...] = ()
    """``spec.scopes``, e.g. ``NotTerminating``, ``BestEffort``."""
    creation_ms: int | None = None
    """``metadata.creationTimestamp``, epoch milliseconds."""

    def utilisation(self, resource: str) -> Decimal | None:
        """``used / hard`` for a resource, e.g. ``Decimal('0.375')``; above 1 is over quota.

        ``cpu`` and ``requests.cpu`` (likewise memory and ephemeral storage) name the same
        quota entry. None when the quota does not limit the resource, when usage has not
        been counted yet, or when the hard limit is zero (the ratio is undefined; compare
        :attr:`used` directly).
        """
        hard = self._amount(self.hard, resource)
        used = self._amount(self.used, resource)
        if hard is None or used is None or hard == 0:
            return None
        return used / hard

    def remaining(self, resource: str) -> Decimal | None:
        """``hard - used`` for a resource (negative when over quota), or None if unknown."""
        hard = self._amount(self.hard, resource)
        used = self._amount(self.used, resource)
        if hard is None or used is None:
            return None
        return hard - used

    @staticmethod
    def _amount(amounts: ResourceList, resource: str) -> Decimal | None:
        if resource in amounts:
            return amounts[resource]
        alias = _QUOTA_ALIASES.get(resource)
        return None if alias is None else amounts.get(alias)

    @classmethod
    def from_api(cls, obj: Mapping[str, Any]) -> ResourceQuota:
        """Build from a ResourceQuota object as the API server returns it.

        Raises:
            ObjectError: ``metadata.name`` or ``metadata.namespace`` is missing, ``kind`` is
                not ResourceQuota, or a field or quantity is malformed.
        """
        raw = _top_level(obj, cls.KIND)
        metadata = _mapping(raw.get("metadata"), _Where("resourcequota"), "metadata")
        namespace = _required_namespace(metadata, "resourcequota")
        name = _required_str(
            metadata, "name", _Where(f"resourcequota in namespace {namespace}"), "metadata.name"
        )
        where = _Where(f"resourcequota {namespace}/{name}")
        spec = _mapping(raw.get("spec"), where, "spec")
        status = _mapping(raw.get("status"), where, "status")
        status_hard = _resources(status.get("hard"), where, "status.hard")
        spec_hard = _resources(spec.get("hard"), where, "spec.hard")
        scopes = []
        for index, scope in enumerate(_array(spec.get("scopes"), where, "spec.scopes")):
            scope_name = _optional_str(scope, where, f"spec.scopes[{index}]")
            if scope_name:
                scopes.append(scope_name)
        return cls(
            namespace=namespace,
            name=name,
            uid=_optional_str(metadata.get("uid"), where, "metadata.uid"),
            # Admission enforces status.hard; spec.hard is only the wish until synced.
            hard=status_hard if status_hard else spec_hard,
            used=_resources(status.get("used"), where, "status.used"),
            scopes=tuple(scopes),
            creation_ms=_timestamp_ms(
                metadata.get("creationTimestamp"), where, "metadata.creationTimestamp"
            ),
        )

    @classmethod
    def list_from_api(cls, obj: Mapping[str, Any]) -> tuple[ResourceQuota, ...]:
        """Build every item of a ``ResourceQuotaList`` (or a ``List`` of quotas)."""
        return _parse_items(obj, cls.KIND, cls.from_api)


# ---------------------------------------------------------------------------- autoscalers


@dataclass(frozen=True, slots=True)
class MetricTarget:
    """What an HPA metric aims at: ``spec.metrics[].<source>.target``.

    Exactly one of the three amounts is set, as ``type`` says.
    """

    type: str
    """``Utilization`` (percent of request), ``AverageValue`` (per pod) or ``Value``."""
    average_utilization: int | None = None
    """``averageUtilization``: percent of the pods' request, for ``Utilization``."""
    average_value: Decimal | None = None
    """``averageValue``: the metric's value per pod, for ``AverageValue``."""
    value: Decimal | None = None
    """``value``: the metric's total, for ``Value``."""


@dataclass(frozen=True, slots=True)
class HpaMetric:
    """One entry of an HPA's ``spec.metrics``."""

    source: str
    """``Resource``, ``ContainerResource``, ``Pods``, ``Object`` or ``External``."""
    name: str
    """The resource (``cpu``, ``memory``) or the metric's name."""
    target: MetricTarget
    """What the controller aims at."""
    container: str | None = None
    """The container, for ``ContainerResource``."""
    selector: Mapping[str, Any] | None = field(default=None, hash=False)
    """``metric.selector``, as given, for ``Pods``, ``Object`` and ``External``."""
    described_object: Mapping[str, Any] | None = field(default=None, hash=False)
    """``describedObject`` (kind, name, apiVersion), for ``Object``."""


@dataclass(frozen=True, slots=True)
class ScalingPolicy:
    """One of ``behavior.scaleUp.policies`` or ``behavior.scaleDown.policies``."""

    type: str
    """``Pods`` (a number of replicas) or ``Percent`` (of the current replicas)."""
    value: int
    """How many pods, or what percentage, per period."""
    period_seconds: int
    """The period the change is limited over."""


@dataclass(frozen=True, slots=True)
class ScalingRules:
    """``behavior.scaleUp`` or ``behavior.scaleDown`` as written; unset fields are None.

    The controller's defaults (scale up: no stabilization, max of 100 % or 4 pods per
    15 s; scale down: 300 s stabilization, 100 % per 15 s) are applied by whoever
    simulates the controller, not here, so that what the user wrote stays visible.
    """

    stabilization_window_seconds: int | None = None
    """``stabilizationWindowSeconds``."""
    select_policy: str | None = None
    """``selectPolicy``: ``Max``, ``Min`` or ``Disabled``."""
    policies: tuple[ScalingPolicy, ...] | None = None
    """``policies``; None when not written."""
    tolerance: Decimal | None = None
    """``tolerance`` (Kubernetes 1.33+, alpha); None uses the controller's 10 %."""


@dataclass(frozen=True, slots=True)
class HorizontalPodAutoscaler:
    """An ``autoscaling/v2`` HorizontalPodAutoscaler: what it scales, on what, how far."""

    KIND: ClassVar[str] = "HorizontalPodAutoscaler"

    namespace: str
    """``metadata.namespace``."""
    name: str
    """``metadata.name``."""
    target_kind: str
    """``spec.scaleTargetRef.kind``, e.g. ``Deployment``."""
    target_name: str
    """``spec.scaleTargetRef.name``."""
    max_replicas: int
    """``spec.maxReplicas``."""
    min_replicas: int = 1
    """``spec.minReplicas`` (the API's default is 1)."""
    target_api_version: str | None = None
    """``spec.scaleTargetRef.apiVersion``, e.g. ``apps/v1``."""
    metrics: tuple[HpaMetric, ...] = ()
    """``spec.metrics``; empty means the API's default of 80 % CPU utilisation."""
    scale_up: ScalingRules | None = None
    """``spec.behavior.scaleUp``."""
    scale_down: ScalingRules | None = None
    """``spec.behavior.scaleDown``."""
    current_replicas: int | None = None
    """``status.currentReplicas``."""
    desired_replicas: int | None = None
    """``status.desiredReplicas``."""
    uid: str | None = None
    """``metadata.uid``."""

    def scales(self, kind: str, name: str) -> bool:
        """Whether this HPA's target is the ``kind`` object called ``name``."""
        return self.target_kind == kind and self.target_name == name

    @classmethod
    def from_api(cls, obj: Mapping[str, Any]) -> HorizontalPodAutoscaler:
        """Build from an ``autoscaling/v2`` HorizontalPodAutoscaler as the API returns it.

        Older versions (``v2beta2``, ``v1``) are not accepted: the API server converts
        any HPA to ``v2`` when asked for ``/apis/autoscaling/v2``, so ask for that.

        Raises:
            ObjectError: a required field is missing, ``kind`` is wrong, or a field is
                malformed.
        """
        raw = _top_level(obj, cls.KIND)
        api_version = raw.get("apiVersion")
        if api_version is not None and api_version != "autoscaling/v2":
            raise ObjectError(
                f"horizontalpodautoscaler: apiVersion: expected 'autoscaling/v2', got "
                f"{api_version!r}; read HPAs from /apis/autoscaling/v2, which converts any"
            )
        metadata = _mapping(raw.get("metadata"), _Where("horizontalpodautoscaler"), "metadata")
        namespace = _required_namespace(metadata, "horizontalpodautoscaler")
        name = _required_str(
            metadata,
            "name",
            _Where(f"horizontalpodautoscaler in namespace {namespace}"),
            "metadata.name",
        )
        where = _Where(f"horizontalpodautoscaler {namespace}/{name}")
        spec = _mapping(raw.get("spec"), where, "spec")
        status = _mapping(raw.get("status"), where, "status")
        target = _mapping(spec.get("scaleTargetRef"), where, "spec.scaleTargetRef")
        max_replicas = _optional_int(spec.get("maxReplicas"), where, "spec.maxReplicas")
        if max_replicas is None:
            raise ObjectError(f"{where}: spec.maxReplicas: required, got nothing")
        min_replicas = _optional_int(spec.get("minReplicas"), where, "spec.minReplicas")
        behavior = _mapping(spec.get("behavior"), where, "spec.behavior")
        metrics = _array(spec.get("metrics"), where, "spec.metrics")
        return cls(
            namespace=namespace,
            name=name,
            uid=_optional_str(metadata.get("uid"), where, "metadata.uid"),
            target_kind=_required_str(target, "kind", where, "spec.scaleTargetRef.kind"),
            target_name=_required_str(target, "name", where, "spec.scaleTargetRef.name"),
            target_api_version=_optional_str(
                target.get("apiVersion"), where, "spec.scaleTargetRef.apiVersion"
            ),
            min_replicas=1 if min_replicas is None else min_replicas,
            max_replicas=max_replicas,
            metrics=tuple(
                _hpa_metric(item, where, f"spec.metrics[{index}]")
                for index, item in enumerate(metrics)
            ),
            scale_up=_scaling_rules(behavior.get("scaleUp"), where, "spec.behavior.scaleUp"),
            scale_down=_scaling_rules(behavior.get("scaleDown"), where, "spec.behavior.scaleDown"),
            current_replicas=_optional_int(
                status.get("currentReplicas"), where, "status.currentReplicas"
            ),
            desired_replicas=_optional_int(
                status.get("desiredReplicas"), where, "status.desiredReplicas"
            ),
        )

    @classmethod
    def list_from_api(cls, obj: Mapping[str, Any]) -> tuple[HorizontalPodAutoscaler, ...]:
        """Build every item of a ``HorizontalPodAutoscalerList``."""
        return _parse_items(obj, cls.KIND, cls.from_api)


# The key under spec.metrics[] that holds each source's fields.
_METRIC_SOURCE_KEYS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "Resource": "resource",
        "ContainerResource": "containerResource",
        "Pods": "pods",
        "Object": "object",
        "External": "external",
    }
)


def _quantity(value: object, where: _Where, path: str) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ObjectError(f"{where}: {path}: expected a quantity, got {_json_type(value)}")
    try:
        return parse_quantity(str(value))
    except QuantityError as exc:
        raise ObjectError(f"{where}: {path}: {exc}") from exc


def _hpa_metric(value: object, where: _Where, path: str) -> HpaMetric:
    item = _mapping(value, where, path)
    source = _required_str(item, "type", where, f"{path}.type")
    key = _METRIC_SOURCE_KEYS.get(source)
    if key is None:
        raise ObjectError(
            f"{where}: {path}.type: expected one of {', '.join(_METRIC_SOURCE_KEYS)}, "
            f"got {source!r}"
        )
    body = _mapping(item.get(key), where, f"{path}.{key}")
    if source in ("Resource", "ContainerResource"):
        name = _required_str(body, "name", where, f"{path}.{key}.name")
        selector = None
    else:
        metric = _mapping(body.get("metric"), where, f"{path}.{key}.metric")
        name = _required_str(metric, "name", where, f"{path}.{key}.metric.name")
        raw_selector = metric.get("selector")
        selector = (
            None if raw_selector is None else _mapping(raw_selector, where, f"{path}.selector")
        )
    target = _mapping(body.get("target"), where, f"{path}.{key}.target")
    target_path = f"{path}.{key}.target"
    described = body.get("describedObject")
    return HpaMetric(
        source=source,
        name=name,
        container=_optional_str(body.get("container"), where, f"{path}.{key}.container"),
        selector=selector,
        described_object=(
            None
            if described is None
            else _mapping(described, where, f"{path}.{key}.describedObject")
        ),
        target=MetricTarget(
            type=_required_str(target, "type", where, f"{target_path}.type"),
            average_utilization=_optional_int(
                target.get("averageUtilization"), where, f"{target_path}.averageUtilization"
            ),
            average_value=_quantity(
                target.get("averageValue"), where, f"{target_path}.averageValue"
            ),
            value=_quantity(target.get("value"), where, f"{target_path}.value"),
        ),
    )


def _scaling_rules(value: object, where: _Where, path: str) -> ScalingRules | None:
    if value is None:
        return None
    rules = _mapping(value, where, path)
    raw_policies = rules.get("policies")
    policies: tuple[ScalingPolicy, ...] | None = None
    if raw_policies is not None:
        built = []
        for index, raw_policy in enumerate(_array(raw_policies, where, f"{path}.policies")):
            policy_path = f"{path}.policies[{index}]"
            policy = _mapping(raw_policy, where, policy_path)
            amount = _optional_int(policy.get("value"), where, f"{policy_path}.value")
            period = _optional_int(
                policy.get("periodSeconds"), where, f"{policy_path}.periodSeconds"
            )
            if amount is None or period is None:
                raise ObjectError(f"{where}: {policy_path}: value and periodSeconds are required")
            built.append(
                ScalingPolicy(
                    type=_required_str(policy, "type", where, f"{policy_path}.type"),
                    value=amount,
                    period_seconds=period,
                )
            )
        policies = tuple(built)
    return ScalingRules(
        stabilization_window_seconds=_optional_int(
            rules.get("stabilizationWindowSeconds"), where, f"{path}.stabilizationWindowSeconds"
        ),
        select_policy=_optional_str(rules.get("selectPolicy"), where, f"{path}.selectPolicy"),
        policies=policies,
        tolerance=_quantity(rules.get("tolerance"), where, f"{path}.tolerance"),
    )


# ---------------------------------------------------------------------------- dispatch

KubeObject: TypeAlias = Pod | Node | Namespace | ResourceQuota
"""Any object this module models."""

_BUILDERS: Final[Mapping[str, Callable[[Mapping[str, Any]], KubeObject]]] = MappingProxyType(
    {
        Pod.KIND: Pod.from_api,
        Node.KIND: Node.from_api,
        Namespace.KIND: Namespace.from_api,
        ResourceQuota.KIND: ResourceQuota.from_api,
    }
)

_T = TypeVar("_T")


def parse_object(obj: Mapping[str, Any]) -> KubeObject:
    """Build a Pod, Node, Namespace or ResourceQuota, chosen by the object's ``kind``.

    Raises:
        ObjectError: ``kind`` is missing or not one of the four, or the object is malformed.
    """
    if not isinstance(obj, Mapping):
        raise ObjectError(
            f"object: expected a mapping (parsed JSON from the API server), got {_json_type(obj)}"
        )
    kind = obj.get("kind")
    builder = _BUILDERS.get(kind) if isinstance(kind, str) else None
    if builder is None:
        raise ObjectError(
            f"object: kind: {_json_type(kind)} is not one of {', '.join(_BUILDERS)}; "
            "list items from the API server carry no kind, so build them with "
            "parse_list() or Pod.from_api() and the like"
        )
    return builder(obj)


def parse_list(obj: Mapping[str, Any]) -> tuple[KubeObject, ...]:
    """Build every item of a ``PodList``, ``NodeList``, ``NamespaceList``,
    ``ResourceQuotaList``, or of a mixed ``List`` (as ``kubectl get -o json`` prints it,
    whose items each carry their kind).

    Raises:
        ObjectError: the list kind is not one of those, or an item is malformed; the
            message says which item.
    """
    if not isinstance(obj, Mapping):
        raise ObjectError(
            f"list: expected a mapping (parsed JSON from the API server), got {_json_type(obj)}"
        )
    kind = obj.get("kind")
    if kind == "List":
        return _parse_items(obj, None, parse_object)
    item_kind = kind[: -len("List")] if isinstance(kind, str) and kind.endswith("List") else None
    builder = _BUILDERS.get(item_kind) if item_kind else None
    if item_kind is None or builder is None:
        raise ObjectError(
            f"list: kind: {_json_type(kind)} is not one of "
            f"{', '.join(f'{name}List' for name in _BUILDERS)} or List; "
            "pass the list as the API server returns it"
        )
    return _parse_items(obj, item_kind, builder)


def _parse_items(
    obj: Mapping[str, Any],
    item_kind: str | None,
    build: Callable[[Mapping[str, Any]], _T],
) -> tuple[_T, ...]:
    """Build each item of a list object, naming the item's index in any error."""
    list_kind = f"{item_kind}List" if item_kind else "List"
    if not isinstance(obj, Mapping):
        raise ObjectError(
            f"{list_kind}: expected a mapping (parsed JSON from the API server), "
            f"got {_json_type(obj)}"
        )
    kind = obj.get("kind")
    # A typed list (PodList) or kubectl's generic List; a bare {"items": [...]} is accepted.
    if kind is not None and kind not in (list_kind, "List"):
        raise ObjectError(
            f"{list_kind}: kind: expected {list_kind!r} or 'List', got {_json_type(kind)}; "
            "use parse_list() to build whatever kind a list holds"
        )
    items = _array(obj.get("items"), _Where(list_kind), "items")
    built: list[_T] = []
    for index, item in enumerate(items):
        try:
            built.append(build(item))
        except ObjectError as exc:
            raise ObjectError(f"{list_kind} items[{index}]: {exc}") from exc
    return tuple(built)
