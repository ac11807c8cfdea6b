"""An informer's in-memory index: objects of one kind by UID, kept current by watch events.

Pure: it takes the API server's parsed JSON and a function that builds the typed object,
and says what each event did; :mod:`kubepulse.collect.informer` does the I/O. The rules
are client-go's reflector's and the API conventions':

- :meth:`ObjectIndex.replace` installs a list wholesale (objects gone from the list are
  dropped) and takes the list's resourceVersion;
- :meth:`ObjectIndex.apply` applies one watch event and follows the resourceVersion of
  events and bookmarks, never moving it backwards;
- an ``ERROR`` event with code 410 (or :meth:`ObjectIndex.mark_expired`, for a 410 answer
  to the watch request itself) sets :attr:`ObjectIndex.needs_relist`; the objects stay
  until the next list replaces them, so readers keep a complete, if ageing, picture;
- with kube-apiserver's integer resourceVersions, an event no newer than what the index
  holds for that object is a duplicate or arrived out of order and is ignored, and a
  deleted object's UID is remembered so that a late event cannot resurrect it;
- an object that cannot be built is skipped and reported, never raised: one bad object
  must not stop the watch.

The exporter's ``PodCache`` follows the same rules for its node's pods; it predates this
generic index and could be rebuilt on it.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from enum import Enum
from types import MappingProxyType
from typing import Any, Final, Generic, TypeVar

from kubepulse.errors import KubepulseValueError

__all__ = ["ObjectIndex", "WatchOutcome", "numeric_resource_version"]

_HTTP_GONE: Final = 410
# Deleted UIDs remembered against late events; beyond this the oldest are forgotten.
_TOMBSTONES: Final = 4096

_T = TypeVar("_T")


class WatchOutcome(Enum):
    """What applying one watch event did to an :class:`ObjectIndex`."""

    CHANGED = "changed"
    """An object was added, replaced or removed."""
    VERSION = "version"
    """Only the resourceVersion moved: a bookmark, or the deletion of an unknown object."""
    IGNORED = "ignored"
    """A duplicate, or an event older than what the index holds for that object."""
    INVALID_EVENT = "invalid-event"
    """Not JSON, not an object, no ``object``, an unknown event type, or a bookmark
    without a resourceVersion; the event was skipped."""
    INVALID_OBJECT = "invalid-object"
    """The object has no UID or cannot be built; the event was skipped (an object that
    was readable before keeps its last good version)."""
    EXPIRED = "expired"
    """``ERROR`` with code 410: the resourceVersion is gone; the kind must be listed again."""
    ERROR = "error"
    """``ERROR`` with any other code: the watch must be restarted."""

    @property
    def ends_watch(self) -> bool:
        """Whether the watch cannot go on after this event."""
        return self in (WatchOutcome.EXPIRED, WatchOutcome.ERROR)


def numeric_resource_version(resource_version: object) -> int | None:
    """A resourceVersion as an integer, when it is one.

    Kubernetes calls resourceVersions opaque; kube-apiserver's are etcd revisions, plain
    decimal integers that grow, which is what makes stale events detectable. Anything
    else is never compared, only stored.
    """
    if isinstance(resource_version, str) and resource_version.isdigit():
        return int(resource_version)
    return None


def _metadata(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    metadata = obj.get("metadata")
    return metadata if isinstance(metadata, Mapping) else MappingProxyType({})


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


class ObjectIndex(Generic[_T]):
    """Objects of one kind by UID, built by ``build`` from the API's JSON.

    Args:
        kind: the kind's name, for messages (``pods``).
        build: turns one object dict into what the index holds (``Pod.from_api``); it
            raises :class:`ValueError` (such as ``ObjectError``) for an unreadable object.

    Not thread-safe: one watch loop writes it; readers take :attr:`items`, an immutable
    copy made at most once per change.
    """

    def __init__(self, kind: str, build: Callable[[Mapping[str, Any]], _T]) -> None:
        self.kind = kind
        self._build = build
        self._objects: dict[str, _T] = {}
        self._versions: dict[str, int | None] = {}
        self._tombstones: OrderedDict[str, int] = OrderedDict()
        self._resource_version: str | None = None
        self._synced = False
        self._needs_relist = True
        self._items: Mapping[str, _T] | None = None
        self.generation = 0
        """Counts changes to the objects; equal generations mean equal contents."""
        self.last_problem: str | None = None
        """Why the most recent invalid, expired or error event was one, for logs."""

    @property
    def items(self) -> Mapping[str, _T]:
        """An immutable copy of the objects by UID; later events never change it."""
        if self._items is None:
            self._items = MappingProxyType(dict(self._objects))
        return self._items

    @property
    def resource_version(self) -> str | None:
        """The resourceVersion to watch from; ``None`` before the first list."""
        return self._resource_version

    @property
    def synced(self) -> bool:
        """True once a list has been installed."""
        return self._synced

    @property
    def needs_relist(self) -> bool:
        """True before the first list and after the resourceVersion expired."""
        return self._needs_relist

    def __len__(self) -> int:
        return len(self._objects)

    def mark_expired(self) -> None:
        """Record that the server no longer has :attr:`resource_version` (410 Gone)."""
        self._needs_relist = True

    def replace(self, items: Iterable[object], resource_version: str) -> tuple[str, ...]:
        """Install a whole list (its items and ``metadata.resourceVersion``).

        Returns why each skipped item was skipped (no UID, or ``build`` rejected it).

        Raises:
            KubepulseValueError: ``resource_version`` is empty: a watch cannot start
                without it. The index is left as it was.
        """
        if not resource_version:
            raise KubepulseValueError(
                f"the {self.kind} list has no metadata.resourceVersion; a watch cannot start "
                "without it (is something between kubepulse and kube-apiserver rewriting "
                "responses?)"
            )
        objects: dict[str, _T] = {}
        versions: dict[str, int | None] = {}
        rejected: list[str] = []
        for index, item in enumerate(items):
            problem = None
            if not isinstance(item, Mapping):
                problem = "not a JSON object"
            else:
                uid = _text(_metadata(item).get("uid"))
                if uid is None:
                    problem = "metadata.uid is missing"
                else:
                    try:
                        objects[uid] = self._build(item)
                    except ValueError as exc:
                        problem = str(exc)
                    else:
                        versions[uid] = numeric_resource_version(
                            _metadata(item).get("resourceVersion")
                        )
            if problem is not None:
                rejected.append(f"{self.kind} list items[{index}]: {problem}")
        self._objects = objects
        self._versions = versions
        self._tombstones.clear()
        self._resource_version = resource_version
        self._synced = True
        self._needs_relist = False
        self._changed()
        return tuple(rejected)

    def apply_line(self, line: bytes | str) -> WatchOutcome:
        """Decode one line of a watch stream and :meth:`apply` it."""
        try:
            event = json.loads(line)
        except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError alike
            self.last_problem = f"a {self.kind} watch line is not JSON: {exc}"
            return WatchOutcome.INVALID_EVENT
        return self.apply(event)

    def apply(self, event: object) -> WatchOutcome:
        """Apply one watch event (``{"type": ..., "object": {...}}``, parsed JSON)."""
        if not isinstance(event, Mapping):
            self.last_problem = f"a {self.kind} watch event is not a JSON object"
            return WatchOutcome.INVALID_EVENT
        event_type = event.get("type")
        obj = event.get("object")
        if not isinstance(obj, Mapping):
            self.last_problem = f"a {event_type!r} {self.kind} watch event carries no object"
            return WatchOutcome.INVALID_EVENT
        if event_type == "ERROR":
            return self._apply_error(obj)
        resource_version = _text(_metadata(obj).get("resourceVersion"))
        if event_type == "BOOKMARK":
            if resource_version is None:
                self.last_problem = f"a {self.kind} BOOKMARK carries no resourceVersion"
                return WatchOutcome.INVALID_EVENT
            self._advance(resource_version)
            return WatchOutcome.VERSION
        if event_type not in ("ADDED", "MODIFIED", "DELETED"):
            self.last_problem = f"unknown {self.kind} watch event type {event_type!r}"
            return WatchOutcome.INVALID_EVENT
        uid = _text(_metadata(obj).get("uid"))
        if uid is None:
            self._advance(resource_version)
            self.last_problem = f"a {event_type} {self.kind} object has no metadata.uid"
            return WatchOutcome.INVALID_OBJECT
        version = numeric_resource_version(resource_version)
        if self._is_stale(uid, version):
            return WatchOutcome.IGNORED
        self._advance(resource_version)
        if event_type == "DELETED":
            return self._apply_deleted(uid, version)
        try:
            built = self._build(obj)
        except ValueError as exc:
            # The last good version stays: better ageing than missing.
            self.last_problem = str(exc)
            return WatchOutcome.INVALID_OBJECT
        self._versions[uid] = version
        self._objects[uid] = built
        self._changed()
        return WatchOutcome.CHANGED

    def _apply_error(self, status: Mapping[str, Any]) -> WatchOutcome:
        code = status.get("code")
        reason = status.get("reason")
        message = status.get("message") or reason or "no message"
        self.last_problem = f"{code} {reason or ''}: {message}".replace("  ", " ")
        # kube-apiserver sends code 410 with reason Expired; Gone is the older spelling.
        if code == _HTTP_GONE or (code is None and reason in ("Expired", "Gone")):
            self._needs_relist = True
            return WatchOutcome.EXPIRED
        return WatchOutcome.ERROR

    def _apply_deleted(self, uid: str, version: int | None) -> WatchOutcome:
        self._versions.pop(uid, None)
        if version is not None:
            self._tombstones[uid] = version
            self._tombstones.move_to_end(uid)
            while len(self._tombstones) > _TOMBSTONES:
                self._tombstones.popitem(last=False)
        if self._objects.pop(uid, None) is None:
            return WatchOutcome.VERSION
        self._changed()
        return WatchOutcome.CHANGED

    def _is_stale(self, uid: str, version: int | None) -> bool:
        if version is None:
            return False
        held = self._versions.get(uid)
        if held is not None and version <= held:
            return True
        deleted_at = self._tombstones.get(uid)
        return deleted_at is not None and version <= deleted_at

    def _advance(self, resource_version: str | None) -> None:
        """Move the index's resourceVersion forward, never back."""
        if resource_version is None:
            return
        new = numeric_resource_version(resource_version)
        held = numeric_resource_version(self._resource_version)
        if new is not None and held is not None and new < held:
            return
        self._resource_version = resource_version

    def _changed(self) -> None:
        self._items = None
        self.generation += 1
