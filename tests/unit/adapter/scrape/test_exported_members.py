"""The public surface of ``adapter.scrape`` is pinned: changing it must be deliberate.

The query side (``adapter/sources/embedded.py``) and the adapter's wiring build on these
names; one added or removed fails here until the list below changes in the same commit.
"""

from __future__ import annotations

import importlib

import pytest

import adapter.scrape

PUBLIC_SURFACE: dict[str, set[str]] = {
    "adapter.scrape": {
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
    },
    "adapter.scrape.exposition": {
        "ACCEPT_HEADER",
        "DEFAULT_MAX_BODY_BYTES",
        "BodyTooLargeError",
        "ExpositionFormat",
        "MalformedSeriesError",
        "ParsedExposition",
        "Sample",
        "SampleKind",
        "ScannedExposition",
        "check_body_size",
        "decode_body",
        "format_from_content_type",
        "parse_exposition",
        "parse_series",
        "sample_kind",
        "scan_exposition",
    },
    "adapter.scrape.targets": {
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
    },
    "adapter.scrape.scraper": {
        "FAILURE_REASONS",
        "ScrapeMetrics",
        "ScrapeResult",
        "ScrapeSettings",
        "Scraper",
        "storage_labels",
    },
    "adapter.scrape.checkpointer": {
        "CheckpointMetrics",
        "CheckpointReport",
        "CheckpointSettings",
        "Checkpointer",
        "LockHolds",
        "snapshot_store",
    },
}


@pytest.mark.parametrize("module_name", sorted(PUBLIC_SURFACE))
def test_the_public_surface_is_pinned(module_name: str) -> None:
    module = importlib.import_module(module_name)
    exported = set(module.__all__)
    assert exported == PUBLIC_SURFACE[module_name]
    for name in exported:
        assert hasattr(module, name), f"{module_name}.{name} is exported but missing"
        assert not name.startswith("_")


def test_the_package_re_exports_the_same_objects() -> None:
    for name in adapter.scrape.__all__:
        exported = getattr(adapter.scrape, name)
        home = next(
            importlib.import_module(module)
            for module in PUBLIC_SURFACE
            if module != "adapter.scrape" and name in PUBLIC_SURFACE[module]
        )
        assert getattr(home, name) is exported
