"""The pure parts of bench/compare_adapters.py and bench/app_pages.py.

The benchmark's agreement check trusts :func:`app_pages.expected_quantile` and
:func:`compare_adapters.parse_quantity`; a mistake in either would report a wrong
disagreement (or hide a real one), so they are pinned here without any process.
"""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path
from types import ModuleType

import pytest
import yaml

from adapter.config import load_config

BENCH = Path(__file__).resolve().parents[2] / "bench"


def _load(name: str) -> ModuleType:
    """A bench script as a module (bench/ is no package; the scripts import each other)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


app_pages = _load("app_pages")
compare_adapters = _load("compare_adapters")


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1500m", 1.5),
        ("95m", 0.095),
        ("138758370n", 0.13875837),
        ("250u", 0.00025),
        ("2.5", 2.5),
        ("4k", 4000.0),
        ("3Ki", 3072.0),
        ("1e3", 1000.0),
        ("1.5E2", 150.0),
    ],
)
def test_parse_quantity(text: str, value: float) -> None:
    assert compare_adapters.parse_quantity(text) == pytest.approx(value, rel=1e-12)


def test_pod_values_reads_a_metric_value_list() -> None:
    answer = {
        "items": [
            {"describedObject": {"name": "web-0"}, "value": "120m"},
            {"describedObject": {"name": "web-1"}, "value": "966m"},
        ]
    }
    assert compare_adapters.pod_values(answer) == {"web-0": 0.12, "web-1": 0.966}


def _series(page: str) -> dict[str, float]:
    values: dict[str, float] = {}
    for line in page.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            values[name] = float(value)
    return values


def test_page_counters_grow_at_the_pods_rates() -> None:
    pages = app_pages.AppPages({"ns": 3}, page_size=2, epoch_s=1000.0)
    assert pages.paths() == ["/pages/0/metrics", "/pages/1/metrics"]
    early, late = _series(pages.render(1, 1010.0)), _series(pages.render(1, 1070.0))
    total = 'http_requests_total{namespace="ns",pod="web-2",code="200"}'
    assert late[total] - early[total] == pytest.approx(60 * app_pages.rate_of(2), rel=1e-6)
    buckets = [
        late[key] - early[key] for key in late if key.startswith("http_request_duration_seconds_b")
    ]
    assert buckets == sorted(buckets)  # cumulative
    count = 'http_request_duration_seconds_count{namespace="ns",pod="web-2"}'
    assert buckets[-1] == pytest.approx(late[count] - early[count], rel=1e-6)


@pytest.mark.parametrize("index", range(8))
def test_expected_quantile_lies_in_the_bucket_that_crosses_the_rank(index: int) -> None:
    shares = app_pages.shares_of(index)
    bounds = (0.0, *app_pages.BUCKETS, math.inf)
    crossing = next(i for i, share in enumerate(shares) if share >= 0.95)
    p95 = app_pages.expected_quantile(0.95, index)
    assert bounds[crossing] <= p95 <= min(bounds[crossing + 1], app_pages.BUCKETS[-1])
    # Linear inside the bucket: the rank's share of the way between its two bounds.
    below = shares[crossing - 1] if crossing else 0.0
    fraction = (0.95 - below) / (shares[crossing] - below)
    upper = bounds[crossing + 1]
    assert p95 == pytest.approx(bounds[crossing] + (upper - bounds[crossing]) * fraction)


def test_prometheus_config_scrapes_every_page_with_its_labels() -> None:
    text = compare_adapters.prometheus_config(
        "http://127.0.0.1:1", ["/pages/0/metrics"], "http://127.0.0.1:2", ["node-0000"], 5
    )
    config = yaml.safe_load(text)
    assert config["global"]["scrape_interval"] == "5s"
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert all(job["honor_labels"] for job in jobs.values())
    app_target = jobs["apps"]["static_configs"][0]
    assert app_target == {
        "targets": ["127.0.0.1:1"],
        "labels": {"__metrics_path__": "/pages/0/metrics"},
    }
    exporter_labels = jobs["kubepulse-exporter"]["static_configs"][0]["labels"]
    assert exporter_labels == {"__metrics_path__": "/nodes/node-0000/metrics"}


def test_ratios_divide_kubepulse_by_prometheus_adapter() -> None:
    ours = {"p50_ms": 10.0, "p99_ms": 30.0, "requests_per_second": 40.0,
            "cpu_ms_per_request": 2.0, "rss_mib_max": 90.0,
            "others": {"prometheus": {"cpu_ms_per_request": 1.0}}}  # fmt: skip
    theirs = {"p50_ms": 20.0, "p99_ms": 60.0, "requests_per_second": 10.0,
              "cpu_ms_per_request": 0.0, "rss_mib_max": 45.0,
              "others": {"prometheus": {"cpu_ms_per_request": 4.0}}}  # fmt: skip
    assert compare_adapters.ratios(ours, theirs) == {
        "p50_ms": 0.5,
        "p99_ms": 0.5,
        "requests_per_second": 4.0,
        "cpu_ms_per_request": None,  # nothing to divide by
        "rss_mib_max": 2.0,
        "prometheus_cpu_ms_per_request": 0.25,
    }


def test_kubepulse_source_flags_are_a_valid_adapter_configuration() -> None:
    """Both source spellings pass the adapter's own configuration checks."""
    pages = ["http://127.0.0.1:1/pages/0/metrics", "http://127.0.0.1:1/pages/1/metrics"]
    security_off = ["--no-authentication", "--no-authorization"]
    embedded = load_config(
        [*compare_adapters.kubepulse_source_args(None, pages, 5), *security_off], {}
    )
    assert embedded.source.kind == "embedded"
    assert embedded.source.embedded.static_targets == tuple(pages)
    assert not embedded.source.embedded.discovery
    assert embedded.source.embedded.scrape_interval_ms == 5_000
    assert embedded.source.embedded.scrape_timeout_ms == 4_000
    prometheus = load_config(
        [
            *compare_adapters.kubepulse_source_args("http://127.0.0.1:9090", pages, 5),
            *security_off,
        ],
        {},
    )
    assert prometheus.source.kind == "prometheus"
    assert prometheus.source.prometheus.url == "http://127.0.0.1:9090"
    assert prometheus.source.prometheus.scrape_interval_ms == 5_000
    assert not prometheus.source.embedded.static_targets
