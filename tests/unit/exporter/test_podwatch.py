"""The pod watch's pure parts on recorded API objects and watch streams.

`PodCache` gets the byte-for-byte streams under tests/fixtures/watch (recorded from the
e2e control plane; see the README there) and the recorded objects under
tests/fixtures/objects. The token bucket and the backoff run on a fake clock and a fake
random source. `load_api_client` reads kubeconfigs and a fake ServiceAccount directory
written to tmp_path; nothing here opens a connection.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from exporter.metadata import ClusterView, MetadataMode
from exporter.podwatch import (
    ERROR_DECODE,
    ERROR_GONE,
    ERROR_OBJECT,
    ERROR_WATCH,
    ApiClientConfigError,
    EventOutcome,
    NodePodWatcher,
    PodCache,
    load_api_client,
    outcome_error_reason,
)
from kubepulse.errors import KubepulseValueError
from kubepulse.model import ObjectError
from kubepulse.watchloop import ExponentialBackoff, TokenBucket, iter_lines

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
WATCH = FIXTURES / "watch"
OBJECTS = FIXTURES / "objects"

WEB_UID = "21bd9e1b-c6a6-4c45-a159-a738f1c72a2a"
API_UID = "63477c53-37f7-4fd9-b009-f4c8fa0ca51b"
BATCH_UID = "5e2baae0-96f2-41eb-a929-e5ebfc5224d0"
# What the API server answered to the list just before the recorded watch.
EMPTY_LIST_AT_241 = {"kind": "PodList", "apiVersion": "v1", "metadata": {"resourceVersion": "241"}}


def recorded_lines(name: str) -> list[bytes]:
    return (WATCH / name).read_bytes().splitlines()


def recorded_events(name: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in recorded_lines(name)]


def recorded_podlist() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((WATCH / "podlist.json").read_text())
    return loaded


def load_object(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((OBJECTS / name).read_text())
    return loaded


def event(event_type: str, obj: Mapping[str, Any]) -> dict[str, Any]:
    return {"type": event_type, "object": copy.deepcopy(dict(obj))}


def with_version(obj: Mapping[str, Any], resource_version: str) -> dict[str, Any]:
    changed = copy.deepcopy(dict(obj))
    changed["metadata"]["resourceVersion"] = resource_version
    return changed


@pytest.fixture
def lifecycle() -> list[dict[str, Any]]:
    """ADDED 242, MODIFIED 244 (Running), 246 (label), 247 (terminating), DELETED 248,
    then three BOOKMARKs at 268."""
    return recorded_events("pod-lifecycle.ndjson")


@pytest.fixture
def synced_at_241() -> PodCache:
    cache = PodCache()
    cache.replace(EMPTY_LIST_AT_241)
    return cache


# ---------------------------------------------------------------------------- lists


def test_a_new_cache_is_empty_unsynced_and_asks_for_a_list() -> None:
    cache = PodCache()
    assert cache.pods == {}
    assert cache.resource_version is None
    assert not cache.synced
    assert cache.needs_relist


def test_replace_installs_a_recorded_list_keyed_by_uid() -> None:
    cache = PodCache()
    result = cache.replace(recorded_podlist())

    assert result.pods == 2
    assert result.rejected == ()
    assert cache.synced
    assert not cache.needs_relist
    assert cache.resource_version == "309"
    assert set(cache.pods) == {API_UID, BATCH_UID}
    api = cache.pods[API_UID]
    assert api.key == "default/api-0"
    assert api.node_name == "kwok-node-0"
    assert api.qos_class == "Guaranteed"
    assert api.effective_requests.cpu_cores == Decimal("0.25")
    assert api.effective_limits.memory_bytes == 256 * 1024**2
    assert cache.pods[BATCH_UID].qos_class == "BestEffort"


def test_replace_drops_pods_that_are_no_longer_listed(
    synced_at_241: PodCache, lifecycle: list[dict[str, Any]]
) -> None:
    synced_at_241.apply(lifecycle[0])
    assert WEB_UID in synced_at_241.pods

    synced_at_241.replace(recorded_podlist())

    assert set(synced_at_241.pods) == {API_UID, BATCH_UID}


def test_replace_skips_an_item_the_model_rejects_and_keeps_the_rest() -> None:
    pod_list = recorded_podlist()
    pod_list["items"][0]["spec"]["containers"][0]["resources"]["requests"]["cpu"] = "lots"
    del pod_list["items"][1]["metadata"]["uid"]
    pod_list["items"].append(load_object("pod-guaranteed.json"))

    result = PodCache().replace(pod_list)

    assert result.pods == 1
    assert len(result.rejected) == 2
    assert "items[0]" in result.rejected[0]
    assert "requests.cpu" in result.rejected[0]
    assert "items[1]: metadata.uid is missing" in result.rejected[1]


@pytest.mark.parametrize(
    "bad_list",
    [
        {"kind": "PodList", "metadata": {}, "items": []},
        {"kind": "PodList", "metadata": {"resourceVersion": "5"}, "items": {"not": "an array"}},
        ["not", "an", "object"],
    ],
)
def test_a_malformed_list_raises_and_leaves_the_cache_alone(bad_list: object) -> None:
    cache = PodCache()
    cache.replace(recorded_podlist())
    with pytest.raises(ObjectError, match="PodList"):
        cache.replace(bad_list)
    assert cache.resource_version == "309"
    assert len(cache) == 2


def test_a_list_without_items_is_an_empty_node() -> None:
    cache = PodCache()
    assert cache.replace(EMPTY_LIST_AT_241).pods == 0
    assert cache.synced
    assert cache.resource_version == "241"


# ---------------------------------------------------------------------------- events


def test_a_recorded_pod_lifecycle_is_followed_event_by_event(
    synced_at_241: PodCache, lifecycle: list[dict[str, Any]]
) -> None:
    cache = synced_at_241

    assert cache.apply(lifecycle[0]) is EventOutcome.CHANGED
    assert cache.pods[WEB_UID].phase == "Pending"
    assert cache.resource_version == "242"

    assert cache.apply(lifecycle[1]) is EventOutcome.CHANGED
    assert cache.pods[WEB_UID].phase == "Running"
    assert cache.pods[WEB_UID].container_statuses[0].ready

    assert cache.apply(lifecycle[2]) is EventOutcome.CHANGED
    assert cache.pods[WEB_UID].labels == {"app": "web", "tier": "frontend"}

    assert cache.apply(lifecycle[3]) is EventOutcome.CHANGED
    assert cache.pods[WEB_UID].deletion_ms is not None

    assert cache.apply(lifecycle[4]) is EventOutcome.CHANGED
    assert WEB_UID not in cache.pods
    assert cache.resource_version == "248"


def test_the_raw_recorded_stream_applies_line_by_line(synced_at_241: PodCache) -> None:
    outcomes = [synced_at_241.apply_line(line) for line in recorded_lines("pod-lifecycle.ndjson")]
    assert outcomes == [EventOutcome.CHANGED] * 5 + [EventOutcome.VERSION] * 3
    assert synced_at_241.pods == {}
    assert synced_at_241.resource_version == "268"


def test_a_bookmark_advances_the_resource_version_and_leaves_the_pods(
    synced_at_241: PodCache, lifecycle: list[dict[str, Any]]
) -> None:
    synced_at_241.apply(lifecycle[0])
    before = synced_at_241.pods

    assert synced_at_241.apply(lifecycle[5]) is EventOutcome.VERSION

    assert synced_at_241.resource_version == "268"
    assert synced_at_241.pods is before  # no change, no new snapshot
    # A repeated bookmark (the server sent three) changes nothing either.
    assert synced_at_241.apply(lifecycle[6]) is EventOutcome.VERSION
    assert synced_at_241.resource_version == "268"


def test_the_recorded_410_asks_for_a_relist_and_keeps_the_pods_until_then() -> None:
    cache = PodCache()
    cache.replace(recorded_podlist())

    (line,) = recorded_lines("expired.ndjson")
    outcome = cache.apply_line(line)

    assert outcome is EventOutcome.EXPIRED
    assert outcome.ends_watch
    assert outcome_error_reason(outcome) == ERROR_GONE
    assert cache.needs_relist
    assert cache.last_problem is not None
    assert "too old" in cache.last_problem
    # Readers keep the whole (ageing) picture until the new list replaces it.
    assert len(cache) == 2
    assert cache.synced

    cache.replace(with_version(recorded_podlist(), "900"))
    assert (cache.needs_relist, cache.resource_version) == (False, "900")


def test_a_410_answer_to_the_watch_request_asks_for_a_relist_too() -> None:
    cache = PodCache()
    cache.replace(recorded_podlist())
    cache.mark_expired()
    assert cache.needs_relist
    assert len(cache) == 2


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ({"kind": "Status", "code": 410, "reason": "Gone", "message": "too old"}, "expired"),
        ({"kind": "Status", "reason": "Expired", "message": "no code"}, "expired"),
        ({"kind": "Status", "code": 500, "reason": "InternalError", "message": "etcd"}, "error"),
        ({"kind": "Status", "code": 429, "reason": "TooManyRequests"}, "error"),
    ],
)
def test_error_events_expire_only_on_410(status: dict[str, Any], expected: str) -> None:
    cache = PodCache()
    cache.replace(recorded_podlist())
    outcome = cache.apply({"type": "ERROR", "object": status})
    assert outcome.value == expected
    assert outcome.ends_watch
    assert cache.needs_relist is (expected == "expired")
    if expected == "error":
        assert outcome_error_reason(outcome) == ERROR_WATCH


def test_a_duplicate_event_is_ignored(
    synced_at_241: PodCache, lifecycle: list[dict[str, Any]]
) -> None:
    assert synced_at_241.apply(lifecycle[1]) is EventOutcome.CHANGED
    snapshot = synced_at_241.pods

    assert synced_at_241.apply(lifecycle[1]) is EventOutcome.IGNORED
    assert synced_at_241.pods is snapshot


def test_an_older_event_arriving_late_does_not_undo_a_newer_one(
    synced_at_241: PodCache, lifecycle: list[dict[str, Any]]
) -> None:
    synced_at_241.apply(lifecycle[2])  # 246: labelled tier=frontend

    assert synced_at_241.apply(lifecycle[1]) is EventOutcome.IGNORED  # 244, before the label

    assert synced_at_241.pods[WEB_UID].labels["tier"] == "frontend"
    assert synced_at_241.resource_version == "246"


def test_a_late_event_cannot_bring_a_deleted_pod_back(
    synced_at_241: PodCache, lifecycle: list[dict[str, Any]]
) -> None:
    synced_at_241.apply(lifecycle[0])
    synced_at_241.apply(lifecycle[4])  # DELETED 248

    assert synced_at_241.apply(lifecycle[3]) is EventOutcome.IGNORED  # MODIFIED 247
    assert synced_at_241.apply(lifecycle[4]) is EventOutcome.IGNORED  # DELETED again
    assert WEB_UID not in synced_at_241.pods
    assert synced_at_241.resource_version == "248"


def test_deleting_a_pod_the_cache_never_saw_only_moves_the_version(
    synced_at_241: PodCache, lifecycle: list[dict[str, Any]]
) -> None:
    assert synced_at_241.apply(lifecycle[4]) is EventOutcome.VERSION
    assert synced_at_241.pods == {}
    assert synced_at_241.resource_version == "248"


def test_non_numeric_resource_versions_are_applied_in_arrival_order(
    synced_at_241: PodCache, lifecycle: list[dict[str, Any]]
) -> None:
    # Other API servers may use opaque resourceVersions: nothing is compared then.
    newer = event("MODIFIED", with_version(lifecycle[2]["object"], "b"))
    older = event("MODIFIED", with_version(lifecycle[1]["object"], "a"))
    assert synced_at_241.apply(newer) is EventOutcome.CHANGED
    assert synced_at_241.apply(older) is EventOutcome.CHANGED
    assert "tier" not in synced_at_241.pods[WEB_UID].labels
    assert synced_at_241.resource_version == "a"


def test_a_pod_the_model_rejects_is_counted_and_skipped_and_the_watch_goes_on(
    synced_at_241: PodCache, lifecycle: list[dict[str, Any]]
) -> None:
    cache = synced_at_241
    cache.apply(lifecycle[1])  # 244: Running, labels {app: web}
    broken = copy.deepcopy(lifecycle[2])  # 246 with the label...
    broken["object"]["spec"]["containers"][0]["resources"]["limits"]["memory"] = "128 MiB"

    outcome = cache.apply(broken)

    assert outcome is EventOutcome.INVALID_OBJECT
    assert outcome_error_reason(outcome) == ERROR_OBJECT
    assert not outcome.ends_watch
    assert cache.last_problem is not None
    assert "pod default/web-0" in cache.last_problem
    assert "limits.memory" in cache.last_problem
    # The last good version stays; the version moves on past the bad event.
    assert cache.pods[WEB_UID].labels == {"app": "web"}
    assert cache.resource_version == "246"
    # The next good event applies as usual.
    assert cache.apply(lifecycle[3]) is EventOutcome.CHANGED
    assert cache.pods[WEB_UID].labels["tier"] == "frontend"


def test_an_added_pod_without_uid_is_skipped(
    synced_at_241: PodCache, lifecycle: list[dict[str, Any]]
) -> None:
    anonymous = copy.deepcopy(lifecycle[0])
    del anonymous["object"]["metadata"]["uid"]
    assert synced_at_241.apply(anonymous) is EventOutcome.INVALID_OBJECT
    assert synced_at_241.pods == {}
    assert synced_at_241.resource_version == "242"


@pytest.mark.parametrize(
    "line",
    [
        b'{"type":"ADDED","object":{"kind":"Pod"',  # cut off
        b"\xff\xfe not utf-8",
        b'["ADDED"]',
        b'{"type":"ADDED"}',
        b'{"type":"RENAMED","object":{"metadata":{"uid":"x","resourceVersion":"300"}}}',
        b'{"type":"BOOKMARK","object":{"metadata":{}}}',
    ],
)
def test_an_undecodable_line_is_counted_and_changes_nothing(
    synced_at_241: PodCache, line: bytes
) -> None:
    outcome = synced_at_241.apply_line(line)
    assert outcome is EventOutcome.INVALID_EVENT
    assert outcome_error_reason(outcome) == ERROR_DECODE
    assert not outcome.ends_watch
    assert synced_at_241.resource_version == "241"
    assert synced_at_241.pods == {}
    assert synced_at_241.last_problem


def test_a_snapshot_never_changes_under_its_reader(
    synced_at_241: PodCache, lifecycle: list[dict[str, Any]]
) -> None:
    synced_at_241.apply(lifecycle[0])
    held = synced_at_241.pods

    synced_at_241.apply(lifecycle[4])

    assert WEB_UID in held
    assert WEB_UID not in synced_at_241.pods
    with pytest.raises(TypeError):
        held[WEB_UID] = held[WEB_UID]  # type: ignore[index]


# ---------------------------------------------------------------------------- lines


def test_iter_lines_reassembles_lines_split_across_chunks() -> None:
    stream = b"".join(line + b"\n" for line in recorded_lines("pod-lifecycle.ndjson"))
    chunks = [stream[index : index + 1000] for index in range(0, len(stream), 1000)]
    assert list(iter_lines(chunks)) == recorded_lines("pod-lifecycle.ndjson")


def test_iter_lines_splits_many_lines_in_one_chunk_and_keeps_an_unterminated_last_line() -> None:
    chunks = [b'{"a":1}\n\n{"b":2}\r\n{"c"', b"", b":3}"]
    assert list(iter_lines(chunks)) == [b'{"a":1}', b'{"b":2}', b'{"c":3}']


def test_iter_lines_of_nothing_is_nothing() -> None:
    assert list(iter_lines([])) == []
    assert list(iter_lines([b"\n", b"  \n"])) == []


# ---------------------------------------------------------------------------- limits


class FakeClock:
    """Monotonic seconds that only move when told to."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def test_the_token_bucket_allows_a_burst_then_the_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(5.0, clock=clock)

    assert [bucket.try_acquire() for _ in range(5)] == [0.0] * 5
    assert bucket.try_acquire() == pytest.approx(0.2)
    clock.advance(0.1)
    assert bucket.try_acquire() == pytest.approx(0.1)
    clock.advance(0.1)
    assert bucket.try_acquire() == 0.0
    assert bucket.try_acquire() == pytest.approx(0.2)


def test_the_token_bucket_never_saves_more_than_its_burst() -> None:
    clock = FakeClock()
    bucket = TokenBucket(2.0, burst=3, clock=clock)
    clock.advance(3600)
    assert [bucket.try_acquire() for _ in range(4)] == [0.0, 0.0, 0.0, pytest.approx(0.5)]


def test_a_slow_token_bucket_still_lets_one_request_through() -> None:
    clock = FakeClock()
    bucket = TokenBucket(0.1, clock=clock)
    assert bucket.try_acquire() == 0.0
    assert bucket.try_acquire() == pytest.approx(10.0)
    clock.advance(10.0)
    assert bucket.try_acquire() == 0.0


def test_a_token_bucket_over_time_holds_its_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(5.0, clock=clock)
    granted = 0
    for _ in range(10_500):  # 10.5 s in 1 ms steps, asking every step
        if bucket.try_acquire() == 0.0:
            granted += 1
        clock.advance(0.001)
    # The initial burst, then 5 per second: 52 whole tokens accrue by t = 10.499 s.
    assert granted == 5 + 52


def test_a_clock_that_steps_back_does_not_mint_tokens() -> None:
    clock = FakeClock()
    bucket = TokenBucket(1.0, clock=clock)
    bucket.try_acquire()
    clock.advance(-50)
    assert bucket.try_acquire() == pytest.approx(1.0)


@pytest.mark.parametrize(("rate", "burst"), [(0, None), (-1, None), (float("inf"), None), (1, 0.5)])
def test_a_token_bucket_rejects_nonsense(rate: float, burst: float | None) -> None:
    with pytest.raises(KubepulseValueError):
        TokenBucket(rate, burst=burst, clock=FakeClock())


def fixed(value: float) -> Iterator[float]:
    while True:
        yield value


def test_backoff_doubles_up_to_its_cap_without_jitter() -> None:
    backoff = ExponentialBackoff(initial_seconds=0.5, max_seconds=30, jitter=0)
    delays = [backoff.next_delay() for _ in range(10)]
    assert delays == [0.5, 1, 2, 4, 8, 16, 30, 30, 30, 30]
    assert backoff.failures == 10


def test_backoff_jitter_stays_within_its_band_and_under_the_cap() -> None:
    highest = ExponentialBackoff(max_seconds=30, jitter=0.5, random_fraction=fixed(0.0).__next__)
    lowest = ExponentialBackoff(
        max_seconds=30, jitter=0.5, random_fraction=fixed(0.999999).__next__
    )
    for _ in range(12):
        top, bottom = highest.next_delay(), lowest.next_delay()
        assert top <= 30
        assert bottom == pytest.approx(top / 2, rel=1e-5)


def test_backoff_starts_over_after_a_reset() -> None:
    backoff = ExponentialBackoff(initial_seconds=1, max_seconds=60, jitter=0)
    for _ in range(5):
        backoff.next_delay()
    backoff.reset()
    assert backoff.failures == 0
    assert backoff.next_delay() == 1


def test_backoff_survives_a_very_long_outage() -> None:
    backoff = ExponentialBackoff(initial_seconds=0.5, max_seconds=30, jitter=0)
    for _ in range(5000):
        delay = backoff.next_delay()
    assert delay == 30


@pytest.mark.parametrize(
    "settings",
    [
        {"initial_seconds": 0},
        {"initial_seconds": 10, "max_seconds": 5},
        {"factor": 0.5},
        {"jitter": 1.5},
    ],
)
def test_backoff_rejects_nonsense(settings: dict[str, Any]) -> None:
    with pytest.raises(KubepulseValueError):
        ExponentialBackoff(**settings)


# ---------------------------------------------------------------------------- the client


KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters:
- name: test
  cluster:
    server: https://127.0.0.1:6443
    insecure-skip-tls-verify: true
users:
- name: exporter
  user:
    token: kubeconfig-token
contexts:
- name: test
  context: {cluster: test, user: exporter}
current-context: test
"""


@pytest.fixture
def no_cluster_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No in-cluster variables, no KUBECONFIG, an empty home: no credentials anywhere."""
    for name in ("KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT", "KUBECONFIG"):
        monkeypatch.delenv(name, raising=False)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    return home


@pytest.fixture
def service_account_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "serviceaccount"
    directory.mkdir()
    (directory / "token").write_text("in-cluster-token")
    # Any non-empty file will do: no connection is made.
    (directory / "ca.crt").write_text("-----BEGIN CERTIFICATE-----\n")
    return directory


def test_an_explicit_kubeconfig_is_used(no_cluster_environment: Path, tmp_path: Path) -> None:
    path = tmp_path / "kubeconfig"
    path.write_text(KUBECONFIG)
    client = load_api_client(str(path))
    assert client.configuration.host == "https://127.0.0.1:6443"
    assert client.configuration.api_key["BearerToken"] == "Bearer kubeconfig-token"
    # urllib3's own retries are cut down: the watcher retries and counts failures itself.
    retries = client.configuration.retries
    assert retries.read == 0
    assert retries.connect == 1


def test_in_a_pod_the_service_account_is_used(
    no_cluster_environment: Path, service_account_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    client = load_api_client(service_account_dir=str(service_account_dir))
    assert client.configuration.host == "https://10.0.0.1:443"
    assert client.configuration.ssl_ca_cert == str(service_account_dir / "ca.crt")
    assert client.configuration.api_key["BearerToken"] == "bearer in-cluster-token"
    # The kubelet rotates the token; the client re-reads it.
    assert client.configuration.refresh_api_key_hook is not None


def test_an_explicit_kubeconfig_wins_over_the_pod(
    no_cluster_environment: Path,
    service_account_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    path = tmp_path / "kubeconfig"
    path.write_text(KUBECONFIG)
    client = load_api_client(str(path), service_account_dir=str(service_account_dir))
    assert client.configuration.host == "https://127.0.0.1:6443"


def test_outside_a_pod_kubeconfig_from_the_environment_is_used(
    no_cluster_environment: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = tmp_path / "from-env"
    path.write_text(KUBECONFIG)
    monkeypatch.setenv("KUBECONFIG", str(path))
    assert load_api_client().configuration.host == "https://127.0.0.1:6443"


def test_outside_a_pod_the_home_kubeconfig_is_used(no_cluster_environment: Path) -> None:
    (no_cluster_environment / ".kube").mkdir()
    (no_cluster_environment / ".kube" / "config").write_text(KUBECONFIG)
    assert load_api_client().configuration.host == "https://127.0.0.1:6443"


def test_without_any_credentials_the_error_says_what_to_do(no_cluster_environment: Path) -> None:
    with pytest.raises(ApiClientConfigError) as raised:
        load_api_client()
    message = str(raised.value)
    assert "not running in a pod" in message
    assert "KUBECONFIG is unset" in message
    assert str(no_cluster_environment / ".kube" / "config") in message
    assert "pass a kubeconfig path" in message


def test_a_pod_without_its_token_says_so(
    no_cluster_environment: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    with pytest.raises(ApiClientConfigError, match="automountServiceAccountToken"):
        load_api_client(service_account_dir=str(tmp_path / "missing"))


@pytest.mark.parametrize(
    "content", [None, "apiVersion: v1\nkind: Config\n", "clusters: [\n  - {{{\n"]
)
def test_an_unusable_kubeconfig_is_named(
    no_cluster_environment: Path, tmp_path: Path, content: str | None
) -> None:
    path = tmp_path / "kubeconfig"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ApiClientConfigError, match=f"kubeconfig {path}"):
        load_api_client(str(path))


# ---------------------------------------------------------------------------- the watcher


def unused_client(tmp_path: Path) -> Any:
    """A client for a server nobody dials: these tests never start the watcher."""
    path = tmp_path / "kubeconfig"
    path.write_text(KUBECONFIG)
    return load_api_client(str(path))


def test_before_start_the_view_is_cluster_mode_and_unsynced(
    no_cluster_environment: Path, tmp_path: Path
) -> None:
    watcher = NodePodWatcher(node_name="node-a", api_client=unused_client(tmp_path))
    view = watcher.current()
    assert view == ClusterView(mode=MetadataMode.CLUSTER)
    assert not view.synced
    assert view.errors == {}
    assert not watcher.running
    watcher.stop()  # stopping a watcher that never started is harmless


@pytest.mark.parametrize(
    "settings",
    [
        {"node_name": ""},
        {"max_requests_per_second": 0},
        {"node_refresh_seconds": 0},
        {"watch_timeout_seconds": 0},
        {"request_timeout_seconds": -1},
    ],
)
def test_the_watcher_rejects_nonsense_settings(
    no_cluster_environment: Path, tmp_path: Path, settings: dict[str, Any]
) -> None:
    arguments: dict[str, Any] = {
        "node_name": "node-a",
        "api_client": unused_client(tmp_path),
        **settings,
    }
    with pytest.raises(KubepulseValueError):
        NodePodWatcher(**arguments)
