"""Analyzers: pure answers to the questions platform engineers ask every day.

Each analyzer is a function of a :class:`~kubepulse.analysis.inputs.ClusterSnapshot`,
a :class:`~kubepulse.analysis.inputs.UsageHistory` and its parameters, returning typed,
JSON-serialisable dataclasses. Collection (I/O) lives elsewhere.
"""

from __future__ import annotations

from kubepulse.analysis.inputs import (
    ClusterSnapshot,
    ContainerRef,
    QuotaRef,
    TimeSeries,
    UsageHistory,
)
from kubepulse.analysis.serialize import to_json

__all__ = [
    "ClusterSnapshot",
    "ContainerRef",
    "QuotaRef",
    "TimeSeries",
    "UsageHistory",
    "to_json",
]
