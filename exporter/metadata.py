"""What the exporter knows about the cluster: this node's pods and its Node object.

The collector reads a :class:`ClusterView` on every scan through the
:class:`MetadataSource` protocol, so it never waits on the API server. Two sources
implement it: :class:`LocalMetadata` (no cluster: everything found is reported by its
cgroup identity alone) and the pod watch in :mod:`exporter.podwatch`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from types import MappingProxyType
from typing import Protocol

from kubepulse.model import Node, Pod


class MetadataMode(str, Enum):
    """Where pod metadata comes from."""

    LOCAL = "local"
    """No cluster: containers are reported by pod UID and container ID only."""
    CLUSTER = "cluster"
    """A watch on this node's pods and a read of its Node object."""


def _no_pods() -> Mapping[str, Pod]:
    return MappingProxyType({})


def _no_errors() -> Mapping[str, int]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True)
class ClusterView:
    """An immutable snapshot of this node's pods and Node object.

    A source replaces its view wholesale on every change, so a reader holding one view
    sees a consistent picture for the whole of a scan.
    """

    mode: MetadataMode
    """Whether a cluster backs this view."""
    pods: Mapping[str, Pod] = field(default_factory=_no_pods)
    """This node's pods by ``metadata.uid``."""
    node: Node | None = None
    """This node's Node object, once read."""
    synced: bool = False
    """True once the first list of pods has arrived; before that ``pods`` is incomplete
    and a missing pod proves nothing."""
    resource_version: str | None = None
    """The resourceVersion the pod cache is at."""
    errors: Mapping[str, int] = field(default_factory=_no_errors)
    """Cumulative failures of the source by reason (``list``, ``watch``, ``gone``,
    ``node``, ...), published as ``kubepulse_exporter_errors_total{collector="pods"}``."""


class MetadataSource(Protocol):
    """Anything that can hand the collector the current :class:`ClusterView`."""

    def current(self) -> ClusterView:
        """The newest view; must return at once, without I/O."""
        ...


class LocalMetadata:
    """The source used without a cluster: no pods, no Node object, always synced."""

    _VIEW = ClusterView(mode=MetadataMode.LOCAL, synced=True)

    def current(self) -> ClusterView:
        """The empty local view."""
        return self._VIEW
