"""The adapter's embedded data path: discover targets, scrape them, store and keep the data.

- :mod:`~adapter.scrape.targets`: which endpoints to scrape: kubepulse exporter pods and
  pods annotated ``prometheus.io/scrape``, from a list and watch of pods; static targets.
- :mod:`~adapter.scrape.exposition`: the Prometheus text and OpenMetrics formats, read
  fast and tolerantly.
- :mod:`~adapter.scrape.scraper`: the scrape loop and the storage schema the query side
  relies on.
- :mod:`~adapter.scrape.checkpointer`: restore at start, checkpoints and compaction on a
  schedule, without holding the store lock for long.

Wiring, in the order the adapter does it::

    lock = threading.Lock()
    checkpointer = Checkpointer.open(path, lock=lock, factory=TimeSeriesStore)
    discovery = KubernetesTargetDiscovery(api_client, DiscoverySettings())
    scraper = Scraper(checkpointer.store, lock, discovery, ScrapeSettings())
    discovery.start(); scraper.start(); checkpointer.start()
    ...
    scraper.stop(); discovery.stop(); checkpointer.stop()   # the last writes a checkpoint
"""

from __future__ import annotations

from adapter.scrape.checkpointer import (
    Checkpointer,
    CheckpointMetrics,
    CheckpointReport,
    CheckpointSettings,
    LockHolds,
    snapshot_store,
)
from adapter.scrape.exposition import (
    BodyTooLargeError,
    ExpositionFormat,
    MalformedSeriesError,
    ParsedExposition,
    Sample,
    SampleKind,
    parse_exposition,
)
from adapter.scrape.scraper import (
    FAILURE_REASONS,
    ScrapeMetrics,
    Scraper,
    ScrapeResult,
    ScrapeSettings,
    storage_labels,
)
from adapter.scrape.targets import (
    DiscoverySettings,
    InvalidTargetError,
    KubernetesTargetDiscovery,
    MergedTargets,
    StaticTargets,
    Target,
    TargetRole,
    TargetSource,
    parse_static_target,
    target_from_pod,
)

__all__ = [
    "FAILURE_REASONS",
    "BodyTooLargeError",
    "CheckpointMetrics",
    "CheckpointReport",
    "CheckpointSettings",
    "Checkpointer",
    "DiscoverySettings",
    "ExpositionFormat",
    "InvalidTargetError",
    "KubernetesTargetDiscovery",
    "LockHolds",
    "MalformedSeriesError",
    "MergedTargets",
    "ParsedExposition",
    "Sample",
    "SampleKind",
    "ScrapeMetrics",
    "ScrapeResult",
    "ScrapeSettings",
    "Scraper",
    "StaticTargets",
    "Target",
    "TargetRole",
    "TargetSource",
    "parse_exposition",
    "parse_static_target",
    "snapshot_store",
    "storage_labels",
    "target_from_pod",
]
