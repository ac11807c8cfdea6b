"""The kubepulse node exporter: cgroup and /proc readers and process-to-pod mapping.

The package's public surface is small; the readers live in :mod:`exporter.cgroupfs` and
:mod:`exporter.procfs`.
"""

from __future__ import annotations

from exporter.cgroup_path import (
    CgroupIdentity,
    MalformedFileError,
    RuntimeHelper,
    classify_runtime_helper,
    identify_cgroup,
)

__all__ = [
    "CgroupIdentity",
    "MalformedFileError",
    "RuntimeHelper",
    "classify_runtime_helper",
    "identify_cgroup",
]
