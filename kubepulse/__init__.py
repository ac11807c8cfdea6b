"""kubepulse: container-aware resource metrics and HPA-ready statistics for Kubernetes."""

from __future__ import annotations

__version__ = "0.1.0"
