"""Scrape targets from recorded pods and watch streams (no API server involved)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from adapter.scrape.targets import (
    DEFAULT_EXPORTER_PORT,
    DiscoverySettings,
    InvalidTargetError,
    MergedTargets,
    PodTargetCache,
    StaticTargets,
    Target,
    TargetRole,
    parse_static_target,
    target_from_pod,
)
from kubepulse.errors import KubepulseValueError

FIXTURES = Path(__file__).parent / "fixtures"
SHARED_WATCH_FIXTURES = Path(__file__).parents[3] / "fixtures" / "watch"
SETTINGS = DiscoverySettings()


def recorded_pods() -> dict[str, dict[str, Any]]:
    """The recorded pods by name (see fixtures/README.md)."""
    pod_list = json.loads((FIXTURES / "pods.json").read_text())
    return {item["metadata"]["name"]: item for item in pod_list["items"]}


def watch_events(name: str, directory: Path = FIXTURES) -> list[Any]:
    return [json.loads(line) for line in (directory / name).read_text().splitlines() if line]


@pytest.fixture
def pods() -> dict[str, dict[str, Any]]:
    return recorded_pods()


# ---------------------------------------------------------------------------- pod → target


def test_an_annotated_pod(pods: dict[str, dict[str, Any]]) -> None:
    target = target_from_pod(pods["web-0"], SETTINGS)
    assert target == Target(
        url="http://10.244.0.1:8080/stats",
        role=TargetRole.POD,
        namespace="default",
        pod="web-0",
        node="kwok-node-0",
        pod_uid="8aeadac1-b288-4767-ac61-d34f5125e363",
    )
    assert target is not None
    assert dict(target.pod_labels) == {"app": "web", "tier": "backend"}
    assert target.instance == "10.244.0.1:8080"


def test_an_exporter_pod(pods: dict[str, dict[str, Any]]) -> None:
    target = target_from_pod(pods["kubepulse-exporter-x7k2p"], SETTINGS)
    assert target is not None
    assert target.role is TargetRole.EXPORTER
    assert target.url == f"http://10.244.0.4:{DEFAULT_EXPORTER_PORT}/metrics"
    assert (target.namespace, target.pod, target.node) == (
        "kubepulse",
        "kubepulse-exporter-x7k2p",
        "kwok-node-0",
    )


def test_exporter_discovery_follows_its_settings(pods: dict[str, dict[str, Any]]) -> None:
    exporter = pods["kubepulse-exporter-x7k2p"]
    settings = DiscoverySettings(exporter_port=9100, exporter_path="/x", exporter_scheme="https")
    target = target_from_pod(exporter, settings)
    assert target is not None
    assert target.url == "https://10.244.0.4:9100/x"
    assert target_from_pod(exporter, DiscoverySettings(exporter_selector="")) is None
    other = DiscoverySettings(exporter_selector="app.kubernetes.io/name in (other)")
    assert target_from_pod(exporter, other) is None


def test_annotations_adjust_an_exporter_and_never_make_it_a_pod_target(
    pods: dict[str, dict[str, Any]],
) -> None:
    exporter = copy.deepcopy(pods["kubepulse-exporter-x7k2p"])
    exporter["metadata"]["annotations"].update(
        {"prometheus.io/scrape": "true", "prometheus.io/port": "9999"}
    )
    target = target_from_pod(exporter, SETTINGS)
    assert target is not None
    assert target.role is TargetRole.EXPORTER
    assert target.url == "http://10.244.0.4:9999/metrics"


def test_pods_that_are_no_targets(pods: dict[str, dict[str, Any]]) -> None:
    assert target_from_pod(pods["batch-0"], SETTINGS) is None  # not annotated
    assert target_from_pod(pods["queue-0"], SETTINGS) is None  # Pending, no IP
    running_without_ip = copy.deepcopy(pods["web-0"])
    del running_without_ip["status"]["podIP"]
    assert target_from_pod(running_without_ip, SETTINGS) is None
    succeeded = copy.deepcopy(pods["web-0"])
    succeeded["status"]["phase"] = "Succeeded"
    assert target_from_pod(succeeded, SETTINGS) is None
    opted_out = copy.deepcopy(pods["web-0"])
    opted_out["metadata"]["annotations"]["prometheus.io/scrape"] = "false"
    assert target_from_pod(opted_out, SETTINGS) is None
    assert target_from_pod(pods["web-0"], DiscoverySettings(annotated_pods=False)) is None


def test_the_port_is_taken_from_a_container_port_named_for_metrics(
    pods: dict[str, dict[str, Any]],
) -> None:
    api = copy.deepcopy(pods["api-0"])
    del api["metadata"]["annotations"]["prometheus.io/port"]
    target = target_from_pod(api, SETTINGS)
    assert target is not None
    assert target.url == "http://10.244.0.2:9090/metrics"  # http-metrics, not http


def test_the_only_declared_port_is_used(pods: dict[str, dict[str, Any]]) -> None:
    web = copy.deepcopy(pods["web-0"])
    del web["metadata"]["annotations"]["prometheus.io/port"]
    target = target_from_pod(web, SETTINGS)
    assert target is not None
    assert target.url == "http://10.244.0.1:8080/stats"


def test_no_port_to_choose_is_an_error_that_says_what_to_add(
    pods: dict[str, dict[str, Any]],
) -> None:
    api = copy.deepcopy(pods["api-0"])
    del api["metadata"]["annotations"]["prometheus.io/port"]
    api["spec"]["containers"][0]["ports"][1]["name"] = "grpc"
    with pytest.raises(
        InvalidTargetError, match=r"pod default/api-0: .*add the prometheus.io/port"
    ):
        target_from_pod(api, SETTINGS)


@pytest.mark.parametrize(
    ("annotation", "value", "complaint"),
    [
        ("prometheus.io/port", "not-a-port", "is not a port number"),
        ("prometheus.io/port", "70000", "from 1 to 65535"),
        ("prometheus.io/port", "0", "from 1 to 65535"),
        ("prometheus.io/path", "metrics", "must be an absolute path"),
        ("prometheus.io/path", "/with space", "must be an absolute path"),
        ("prometheus.io/scheme", "ftp", "must be http or https"),
    ],
)
def test_unusable_annotations(
    pods: dict[str, dict[str, Any]], annotation: str, value: str, complaint: str
) -> None:
    web = copy.deepcopy(pods["web-0"])
    web["metadata"]["annotations"][annotation] = value
    with pytest.raises(InvalidTargetError, match=f"pod default/web-0: .*{complaint}"):
        target_from_pod(web, SETTINGS)


def test_https_and_ipv6(pods: dict[str, dict[str, Any]]) -> None:
    web = copy.deepcopy(pods["web-0"])
    web["metadata"]["annotations"]["prometheus.io/scheme"] = "HTTPS"
    web["status"]["podIP"] = "fd00:10:244::7"
    target = target_from_pod(web, SETTINGS)
    assert target is not None
    assert target.url == "https://[fd00:10:244::7]:8080/stats"
    assert target.instance == "[fd00:10:244::7]:8080"


def test_targets_are_equal_regardless_of_pod_labels(pods: dict[str, dict[str, Any]]) -> None:
    relabelled = copy.deepcopy(pods["web-0"])
    relabelled["metadata"]["labels"]["tier"] = "frontend"
    first = target_from_pod(pods["web-0"], SETTINGS)
    second = target_from_pod(relabelled, SETTINGS)
    assert first == second
    assert first is not None
    assert second is not None
    assert hash(first) == hash(second)
    assert first.pod_labels != second.pod_labels


@pytest.mark.parametrize(
    ("kwargs", "complaint"),
    [
        ({"exporter_selector": "app in (a"}, "exporter_selector"),
        ({"exporter_port": 0}, "port number"),
        ({"exporter_path": "metrics"}, "absolute path"),
        ({"exporter_scheme": "gopher"}, "http or https"),
        ({"max_requests_per_second": 0}, "max_requests_per_second"),
        ({"page_size": 0}, "page_size"),
        ({"request_timeout_seconds": 0}, "request_timeout_seconds"),
    ],
)
def test_discovery_settings_are_checked(kwargs: dict[str, Any], complaint: str) -> None:
    with pytest.raises(KubepulseValueError, match=complaint):
        DiscoverySettings(**kwargs)


# ---------------------------------------------------------------------------- static targets


def test_static_targets() -> None:
    assert parse_static_target("http://127.0.0.1:9847/metrics") == Target(
        url="http://127.0.0.1:9847/metrics", role=TargetRole.EXPORTER
    )
    assert parse_static_target("http://127.0.0.1:9847").url == "http://127.0.0.1:9847/metrics"
    target = parse_static_target(
        "http://127.0.0.1:8080/metrics;role=pod;namespace=demo;pod=web-0;node=local"
    )
    assert target == Target(
        url="http://127.0.0.1:8080/metrics",
        role=TargetRole.POD,
        namespace="demo",
        pod="web-0",
        node="local",
    )
    assert str(target) == "pod target http://127.0.0.1:8080/metrics (pod demo/web-0)"
    assert target.instance == "127.0.0.1:8080"
    assert parse_static_target("https://localhost/m").instance == "localhost:443"


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("127.0.0.1:9847/metrics", "expected an http or https URL"),
        ("ftp://127.0.0.1/metrics", "expected an http or https URL"),
        ("http://127.0.0.1:99999/metrics", "expected an http or https URL"),
        ("http://127.0.0.1:9847/metrics;colour=blue", "is not one of role="),
        ("http://127.0.0.1:9847/metrics;pod=a;pod=b", "each at most once"),
        ("http://127.0.0.1:9847/metrics;role=sidecar", "role must be exporter or pod"),
    ],
)
def test_bad_static_targets(text: str, complaint: str) -> None:
    with pytest.raises(InvalidTargetError, match=complaint):
        parse_static_target(text)


def test_merged_sources_drop_duplicates() -> None:
    first = StaticTargets(["http://127.0.0.1:1/metrics", "http://127.0.0.1:2/metrics"])
    second = StaticTargets(["http://127.0.0.1:2/metrics", "http://127.0.0.1:3/metrics"])
    urls = [target.url for target in MergedTargets([first, second]).targets()]
    assert urls == [f"http://127.0.0.1:{port}/metrics" for port in (1, 2, 3)]


# ---------------------------------------------------------------------------- the watch cache


def test_a_list_installs_targets_and_remembers_rejected_pods() -> None:
    pod_list = json.loads((FIXTURES / "pods.json").read_text())
    cache = PodTargetCache(SETTINGS)
    assert cache.needs_relist
    assert cache.replace(pod_list["items"], "300") == 1
    assert not cache.needs_relist
    assert cache.resource_version == "300"
    assert [target.pod for target in cache.targets()] == ["web-0", "kubepulse-exporter-x7k2p"]
    assert list(cache.rejected.values()) == [
        "pod default/api-0: annotation prometheus.io/port 'not-a-port' is not a port number; "
        "write a number from 1 to 65535 (named ports are not supported)"
    ]


def test_a_recorded_watch_stream() -> None:
    cache = PodTargetCache(SETTINGS)
    cache.replace([], "244")
    outcomes = [cache.apply(event) for event in watch_events("watch-running.ndjson")]
    # ADDED web-0, batch-0 (no target), api-0 (its http-metrics port), the exporter;
    # MODIFIED web-0 (a label), api-0 (a bad port annotation: no longer a target), web-0
    # twice (deletion in progress: the same target); DELETED web-0; a BOOKMARK.
    assert outcomes == [
        "changed",
        "unchanged",
        "changed",
        "changed",
        "changed",
        "changed",
        "unchanged",
        "unchanged",
        "changed",
        "unchanged",
    ]
    assert cache.resource_version == "264"
    assert [target.pod for target in cache.targets()] == ["kubepulse-exporter-x7k2p"]
    assert "api-0" in next(iter(cache.rejected.values()))


def test_the_target_snapshot_follows_label_changes() -> None:
    events = watch_events("watch-running.ndjson")
    cache = PodTargetCache(SETTINGS)
    cache.replace([], "244")
    cache.apply(events[0])
    before = cache.targets()
    assert dict(before[0].pod_labels) == {"app": "web", "tier": "frontend"}
    assert cache.apply(events[4]) == "changed"
    after = cache.targets()
    assert after is not before
    assert dict(after[0].pod_labels) == {"app": "web", "tier": "backend"}
    assert cache.targets() is after  # unchanged snapshots are reused


def test_an_expired_resource_version_asks_for_a_new_list() -> None:
    cache = PodTargetCache(SETTINGS)
    cache.replace(json.loads((FIXTURES / "pods.json").read_text())["items"], "300")
    (event,) = watch_events("expired.ndjson", SHARED_WATCH_FIXTURES)
    assert cache.apply(event) == "expired"
    assert cache.needs_relist
    assert "410" in (cache.last_problem or "")
    assert len(cache.targets()) == 2  # kept until the next list replaces them


@pytest.mark.parametrize(
    ("event", "outcome"),
    [
        ({"type": "ERROR", "object": {"code": 500, "message": "boom"}}, "error"),
        ({"type": "ADDED"}, "invalid"),
        ("not an event", "invalid"),
        ({"type": "RENAMED", "object": {"metadata": {"uid": "u"}}}, "invalid"),
        ({"type": "ADDED", "object": {"metadata": {"name": "no-uid"}}}, "invalid"),
        ({"type": "DELETED", "object": {"metadata": {"uid": "unknown"}}}, "unchanged"),
    ],
)
def test_odd_events(event: object, outcome: str) -> None:
    cache = PodTargetCache(SETTINGS)
    cache.replace([], "1")
    assert cache.apply(event) == outcome
    assert cache.targets() == ()


def test_a_newly_rejected_pod_is_a_change_and_the_targets_stay_right(
    pods: dict[str, dict[str, Any]],
) -> None:
    cache = PodTargetCache(SETTINGS)
    cache.replace([], "1")
    bad = copy.deepcopy(pods["web-0"])
    bad["metadata"]["annotations"]["prometheus.io/port"] = "eighty"
    assert cache.apply({"type": "ADDED", "object": bad}) == "changed"
    assert cache.targets() == ()
    assert "eighty" in next(iter(cache.rejected.values()))
    assert cache.apply({"type": "MODIFIED", "object": pods["web-0"]}) == "changed"
    assert [target.pod for target in cache.targets()] == ["web-0"]
    assert cache.rejected == {}
    assert cache.apply({"type": "MODIFIED", "object": bad}) == "changed"
    assert cache.targets() == ()  # a target that became invalid is gone from the snapshot


def test_a_list_page_is_a_pod_list() -> None:
    page = json.loads((FIXTURES / "podlist-page.json").read_text())
    assert page["metadata"]["continue"]
    cache = PodTargetCache(SETTINGS)
    cache.replace(page["items"], page["metadata"]["resourceVersion"])
    assert cache.rejected  # api-0 is on the first page, with its bad port
