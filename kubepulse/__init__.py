"""kubepulse: container-aware resource metrics and HPA-ready statistics for Kubernetes.

The library's facade is :class:`K8sResourceMonitor` (``from kubepulse import
K8sResourceMonitor``); it is imported on first use, so that the exporter, which needs
none of it, does not pay for the Kubernetes and HTTP clients at start-up.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kubepulse.monitor import K8sResourceMonitor

__all__ = ["K8sResourceMonitor"]

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name == "K8sResourceMonitor":
        from kubepulse.monitor import K8sResourceMonitor  # noqa: PLC0415 - lazy by design

        return K8sResourceMonitor
    raise AttributeError(f"module 'kubepulse' has no attribute {name!r}")
