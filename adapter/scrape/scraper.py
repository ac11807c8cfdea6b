"""The embedded scraper: every target's page, on a schedule, into the time-series store.

Storage schema
==============

The query side (``adapter/sources/embedded.py``) reads what this module writes; this is
the contract between them.

- **Series name**: the sample's metric name exactly as exposed: ``http_requests_total``,
  ``http_request_duration_seconds_bucket``, ``kubepulse_container_cpu_usage_seconds_total``.
- **Labels**: the exposed labels, minus labels with an empty value (absent, as in
  Prometheus) and names starting with ``__`` (reserved), plus the target's labels:

  - exporter targets (:attr:`~adapter.scrape.targets.TargetRole.EXPORTER`): the exposed
    labels as they are (their ``namespace``, ``pod``, ``container``, ``node`` name the
    containers and pods they describe, not the exporter pod), plus ``instance``
    (``<pod IP>:<port>`` of the exporter, like Prometheus' ``instance``);
  - application pods (:attr:`~adapter.scrape.targets.TargetRole.POD`): plus
    ``namespace``, ``pod`` and ``node`` of the scraped pod. An exposed label with one of
    those names is kept as ``exported_<name>`` (``exported_exported_<name>`` if that is
    taken too), as Prometheus does with ``honor_labels: false``. There is no
    ``instance`` label: namespace and pod identify the target.
- **Kind** (:class:`~kubepulse.stats.summary.SeriesKind`), from the page's ``# TYPE``:
  counters, and the ``_bucket`` (with its ``le`` label), ``_sum`` and ``_count`` of
  histograms and summaries are ``COUNTER``; gauges, summary quantiles (with
  ``quantile``), untyped samples, OpenMetrics info, state sets and gauge histograms are
  ``GAUGE``. ``_created`` samples are not stored. A series keeps the kind it was created
  with: samples of another kind for the same series (another target that types the
  metric differently) are refused and counted as ``kind_conflict``. A target that
  changes a metric's ``# TYPE`` without changing its series keeps writing into the
  series of the first kind (the series cache does not read types again); its series
  get the new kind once they have been deleted (absent for the grace period).
- **Timestamps**: the scrape's time in milliseconds, never a timestamp the target
  wrote. Each target is scraped at a fixed phase of the interval (derived from its URL
  and pod UID, so targets spread over the interval and keep their phase across
  restarts); when a scrape starts within ``timestamp_tolerance_ms`` of its slot the
  slot's time is used, so timestamps are regular and compress to almost nothing.
- **Values**: as exposed. NaN is stored (it is Prometheus' staleness marker and reads
  as absent); infinities are refused by the store.
- **Staleness**: nothing is written for a series that a scrape no longer shows, or for
  a target that failed or went away; readers treat samples older than their staleness
  window as absent. Series that vanished from a successful scrape, and every series of
  a target gone from discovery, are **deleted** once they have been absent for
  ``series_grace_seconds`` (default 10 minutes), so memory follows the cluster. Series
  restored from a checkpoint that no target writes again within that grace after start
  are deleted the same way. A target that is still discovered but failing keeps its
  series (its history is still wanted when it comes back).

How a scrape runs
=================

One asyncio loop (in its own thread after :meth:`Scraper.start`, or inside the caller's
loop with :meth:`Scraper.run`) keeps one task per target. Every
``target_refresh_seconds`` it reads the target source and starts or stops tasks. A task
sleeps until its slot, takes a slot of the ``max_concurrent_scrapes`` semaphore, GETs
the page with :class:`httpx.AsyncClient` (gzip accepted, plain text format preferred,
whole scrape bounded by ``timeout_seconds`` < the interval, body bounded by
``max_body_bytes`` after decompression) and then, outside any lock:

1. :func:`~adapter.scrape.exposition.scan_exposition` splits the page into series texts
   and values;
2. each series text is looked up in the target's *series cache* (series text → store
   handle). Only texts not seen before are parsed (:func:`parse_series`) and labelled
   as above;

and then, under the lock shared with the query side: the series seen for the first
time are created with ``store.series(...)``, 256 per hold of the lock (a first scrape of
an exporter brings thousands, and queries must not wait for all of them), and the whole
page is written with one ``store.append_many(...)`` in one short hold (about half a
millisecond for 1,000 samples, 7 ms for a 110-pod node's exporter page of 13,000, on
the project's machine; ``bench/scrape_bench.py`` prints the figures).

Failures never stop the loop: each is counted by reason (``timeout``, ``connection``,
``http_status``, ``too_large``, ``sample_limit``, ``decode``, ``error``) and kept in the
target's last :class:`ScrapeResult` (:meth:`Scraper.health`).

Own metrics (:class:`ScrapeMetrics`, prometheus_client, for the adapter's ``/metrics``):
``kubepulse_adapter_scrapes_total``, ``kubepulse_adapter_scrape_failures_total{reason}``,
``kubepulse_adapter_scrape_duration_seconds``, ``kubepulse_adapter_scrape_lock_hold_seconds``,
``kubepulse_adapter_scrape_samples_appended_total``,
``kubepulse_adapter_scrape_samples_rejected_total{reason}``,
``kubepulse_adapter_scrape_malformed_lines_total``, ``kubepulse_adapter_scrape_targets{health}``,
``kubepulse_adapter_store_series``, ``kubepulse_adapter_store_bytes`` and
``kubepulse_adapter_store_deleted_series_total``.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import logging
import math
import re
import ssl
import sys
import threading
import time
import zlib
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

import httpx
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from adapter.scrape.exposition import (
    ACCEPT_HEADER,
    DEFAULT_MAX_BODY_BYTES,
    BodyTooLargeError,
    MalformedSeriesError,
    ScannedExposition,
    check_body_size,
    decode_body,
    format_from_content_type,
    parse_series,
    sample_kind,
    scan_exposition,
)
from adapter.scrape.targets import Target, TargetRole, TargetSource
from kubepulse import __version__
from kubepulse.errors import KubepulseValueError
from kubepulse.stats.summary import SeriesKind
from kubepulse.store import METRIC_NAME_LABEL, AppendOutcome, Series, TimeSeriesStore

__all__ = [
    "FAILURE_REASONS",
    "ScrapeMetrics",
    "ScrapeResult",
    "ScrapeSettings",
    "Scraper",
    "storage_labels",
]

LOGGER: Final = logging.getLogger("kubepulse.adapter.scrape.scraper")

FAILURE_REASONS: Final = (
    "timeout",
    "connection",
    "http_status",
    "too_large",
    "sample_limit",
    "decode",
    "error",
)
"""Why a scrape failed, as counted in ``kubepulse_adapter_scrape_failures_total``."""

_EXPORTED_PREFIX: Final = "exported_"
_POD_TARGET_LABELS: Final = ("namespace", "pod", "node")
_INSTANCE_LABEL: Final = "instance"
_DURATION_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_LOCK_BUCKETS: Final = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1)
_DELETE_BATCH: Final = 256
# How often a shutdown cancels again the target loops that outlived a cancellation.
_RECANCEL_SECONDS: Final = 0.5
# New series created per hold of the lock: about 15 ms on the project's machine.
_NEW_SERIES_PER_HOLD: Final = 256
_REJECTION_REASONS: Final = {
    AppendOutcome.OUT_OF_ORDER: "out_of_order",
    AppendOutcome.DUPLICATE: "duplicate",
    AppendOutcome.CONFLICTING_DUPLICATE: "conflicting_duplicate",
    AppendOutcome.TOO_FREQUENT: "too_frequent",
    AppendOutcome.INFINITE: "infinite",
}


def _remember_that_sniffio_is_absent() -> None:
    """Let ``import sniffio`` fail at once when sniffio is not installed.

    httpcore asks ``import sniffio`` whenever it sets up a lock or an event (several
    times per request) and falls back to asyncio when the import fails. A failed import
    is not cached: each one searches every ``sys.path`` entry again. For the scale rig's
    node pages that was about half of the CPU of a GET (``bench/scrape_bench.py
    --rig-pods`` measures it). ``None`` in ``sys.modules`` is Python's own "this module
    is absent" mark (``import`` then fails at once); where sniffio is installed nothing
    changes.
    """
    if "sniffio" not in sys.modules and importlib.util.find_spec("sniffio") is None:
        sys.modules["sniffio"] = None  # type: ignore[assignment]


_remember_that_sniffio_is_absent()

# Series-cache entry states besides "stored".
_STORED: Final = 0
_NOT_STORED: Final = 1  # a _created sample
_MALFORMED: Final = 2
_KIND_CONFLICT: Final = 3


def _compile(pattern: str | None, what: str) -> re.Pattern[str] | None:
    try:
        return None if pattern is None else re.compile(pattern)
    except re.error as error:
        raise KubepulseValueError(
            f"{what} {pattern!r} is not a regular expression: {error}; write one such as "
            "'kubepulse_(container|pod)_.*'"
        ) from error


@dataclass(frozen=True, slots=True)
class ScrapeSettings:
    """How often, how fast and how much the scraper takes from each target.

    Attributes:
        interval_seconds: time between two scrapes of a target (default 15).
        timeout_seconds: bound on one whole scrape, connection to last byte (default
            10; must be below the interval).
        max_concurrent_scrapes: scrapes in flight at once (default 32).
        max_body_bytes: largest page read, after decompression (default 32 MiB); a
            larger one fails the scrape as ``too_large``.
        sample_limit: most sample lines taken from one target (default 100,000); a page
            with more fails the scrape as ``sample_limit`` (Prometheus' ``sample_limit``).
        series_grace_seconds: how long a series may be absent (vanished from its
            target's page, or its target gone) before it is deleted (default 600).
        timestamp_tolerance_ms: a scrape that starts this close to its slot is stamped
            with the slot's time (default 50; 0 stamps the actual start).
        target_refresh_seconds: how often the target source is read (default 1).
        housekeeping_seconds: how often absent series are deleted and gauges updated
            (default 60).
        store_bytes_seconds: how often ``kubepulse_adapter_store_bytes`` is measured
            (default 600). ``memory_bytes()`` walks every chunk under the lock: about
            2 ms per 1,000 series on the project's machine (0.2 s at 100,000), so not
            often.
        tls_ca_file: CA bundle for ``https`` targets (default: the system's).
        tls_insecure_skip_verify: do not verify ``https`` targets' certificates (pod IPs
            rarely appear in certificates; off by default).
        keep_metrics: a regular expression; when set, only samples whose metric name
            matches it entirely are stored (default: all). An exporter page of a 110-pod
            node has some 13,000 series; keeping only the metrics queries use is how a
            large cluster stays within the store's memory.
        drop_metrics: a regular expression; samples whose metric name matches it
            entirely are not stored (default: none). Applied after ``keep_metrics``.
    """

    interval_seconds: float = 15.0
    timeout_seconds: float = 10.0
    max_concurrent_scrapes: int = 32
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    sample_limit: int = 100_000
    series_grace_seconds: float = 600.0
    timestamp_tolerance_ms: int = 50
    target_refresh_seconds: float = 1.0
    housekeeping_seconds: float = 60.0
    store_bytes_seconds: float = 600.0
    tls_ca_file: str | None = None
    tls_insecure_skip_verify: bool = False
    keep_metrics: str | None = None
    drop_metrics: str | None = None
    _keep: re.Pattern[str] | None = field(init=False, repr=False, compare=False, default=None)
    _drop: re.Pattern[str] | None = field(init=False, repr=False, compare=False, default=None)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_keep", _compile(self.keep_metrics, "keep_metrics"))
        object.__setattr__(self, "_drop", _compile(self.drop_metrics, "drop_metrics"))
        if not 0 < self.timeout_seconds < self.interval_seconds < math.inf:
            raise KubepulseValueError(
                f"scrape timeout ({self.timeout_seconds!r} s) must be positive and below the "
                f"interval ({self.interval_seconds!r} s), e.g. 10 s for 15 s, so that one "
                "target's scrapes never overlap"
            )
        for name in ("max_concurrent_scrapes", "max_body_bytes", "sample_limit"):
            if getattr(self, name) < 1:
                raise KubepulseValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in (
            "series_grace_seconds",
            "target_refresh_seconds",
            "housekeeping_seconds",
            "store_bytes_seconds",
        ):
            if not getattr(self, name) > 0:
                raise KubepulseValueError(
                    f"{name} must be a positive number of seconds, got {getattr(self, name)!r}"
                )
        if self.timestamp_tolerance_ms < 0:
            raise KubepulseValueError(
                f"timestamp_tolerance_ms must be 0 or more, got {self.timestamp_tolerance_ms}"
            )

    def keeps(self, metric_name: str) -> bool:
        """Whether samples of ``metric_name`` are stored (``keep_metrics``, ``drop_metrics``)."""
        if self._keep is not None and not self._keep.fullmatch(metric_name):
            return False
        return self._drop is None or not self._drop.fullmatch(metric_name)


@dataclass(frozen=True, slots=True)
class ScrapeResult:
    """What one scrape of one target did.

    Attributes:
        target: the target.
        timestamp_ms: the time its samples were stamped with.
        duration_seconds: from sending the request to the end of ingestion.
        samples: sample lines read from the page.
        appended: samples the store kept.
        new_series: series texts seen for the first time.
        malformed_lines: lines (or series texts) that could not be read.
        failure_reason: one of :data:`FAILURE_REASONS`, or ``None`` when it worked.
        error: what went wrong, for people; ``None`` when it worked.
    """

    target: Target
    timestamp_ms: int
    duration_seconds: float
    samples: int = 0
    appended: int = 0
    new_series: int = 0
    malformed_lines: int = 0
    failure_reason: str | None = None
    error: str | None = None

    @property
    def up(self) -> bool:
        """Whether the scrape worked (Prometheus' ``up``)."""
        return self.failure_reason is None


class ScrapeMetrics:
    """The scraper's own metrics, registered in ``registry``.

    Pass the adapter's registry so they appear on its ``/metrics``; every
    :class:`Scraper` without one gets a registry of its own (:attr:`registry`).
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        registry = self.registry
        self.scrapes = Counter(
            "kubepulse_adapter_scrapes",
            "Scrapes attempted, by target role.",
            ["role"],
            registry=registry,
        )
        self.failures = Counter(
            "kubepulse_adapter_scrape_failures",
            "Scrapes that failed, by target role and reason.",
            ["role", "reason"],
            registry=registry,
        )
        self.duration = Histogram(
            "kubepulse_adapter_scrape_duration_seconds",
            "Time from sending a scrape request to the end of ingesting its page.",
            ["role"],
            buckets=_DURATION_BUCKETS,
            registry=registry,
        )
        self.lock_hold = Histogram(
            "kubepulse_adapter_scrape_lock_hold_seconds",
            "Time one scrape held the store lock (creating series and appending its page).",
            buckets=_LOCK_BUCKETS,
            registry=registry,
        )
        self.appended = Counter(
            "kubepulse_adapter_scrape_samples_appended",
            "Samples the store kept.",
            registry=registry,
        )
        self.rejected = Counter(
            "kubepulse_adapter_scrape_samples_rejected",
            "Samples not stored, by reason (store outcome or kind_conflict).",
            ["reason"],
            registry=registry,
        )
        self.malformed = Counter(
            "kubepulse_adapter_scrape_malformed_lines",
            "Exposition lines skipped because they could not be read.",
            registry=registry,
        )
        self.targets = Gauge(
            "kubepulse_adapter_scrape_targets",
            "Targets being scraped, by role and health of the last scrape (up, down, unknown).",
            ["role", "health"],
            registry=registry,
        )
        self.series = Gauge(
            "kubepulse_adapter_store_series", "Series in the store.", registry=registry
        )
        self.store_bytes = Gauge(
            "kubepulse_adapter_store_bytes",
            "Estimated bytes the store holds (TimeSeriesStore.memory_bytes).",
            registry=registry,
        )
        self.deleted = Counter(
            "kubepulse_adapter_store_deleted_series",
            "Series deleted because they were absent longer than the grace period.",
            registry=registry,
        )


class _Cached:
    """One series text of one target: its store handle and when it was last seen."""

    __slots__ = ("last_seen_ms", "series", "state")

    def __init__(self, series: Series | None, state: int, last_seen_ms: int) -> None:
        self.series = series
        self.state = state
        self.last_seen_ms = last_seen_ms


class _TargetState:
    """Everything the scraper keeps about one target."""

    __slots__ = (
        "cache",
        "last_result",
        "last_success_ms",
        "phase_ms",
        "retired_at_ms",
        "target",
        "task",
    )

    def __init__(self, target: Target, interval_ms: int) -> None:
        self.target = target
        identity = f"{target.url}|{target.pod_uid or ''}".encode()
        self.phase_ms = zlib.crc32(identity) % interval_ms
        self.cache: dict[str, _Cached] = {}
        self.task: asyncio.Task[None] | None = None
        self.last_result: ScrapeResult | None = None
        self.last_success_ms: int | None = None
        self.retired_at_ms: int | None = None


@dataclass(slots=True)
class _PageTally:
    """What one page had besides good samples."""

    malformed: int = 0
    kind_conflicts: int = 0


# A series text seen for the first time: key, name, storage labels, kind, value.
_NewSeries = tuple[str, str, dict[str, str], SeriesKind, float]


def _cached_samples(
    cache: dict[str, _Cached], scanned: ScannedExposition, timestamp_ms: int, tally: _PageTally
) -> tuple[list[tuple[Series, int, float]], list[tuple[str, float]]]:
    """The page's samples of known series, ready to append, and the series texts not
    seen before (with their values). The hot loop: a dict lookup per line."""
    batch: list[tuple[Series, int, float]] = []
    add = batch.append
    misses: list[tuple[str, float]] = []
    for key, value in zip(scanned.series, scanned.values, strict=True):
        entry = cache.get(key)
        if entry is None:
            misses.append((key, value))
            continue
        entry.last_seen_ms = timestamp_ms
        series = entry.series
        if series is not None:
            add((series, timestamp_ms, value))
        elif entry.state == _MALFORMED:
            tally.malformed += 1
        elif entry.state == _KIND_CONFLICT:
            tally.kind_conflicts += 1
    return batch, misses


def _new_series(
    state: _TargetState,
    misses: Sequence[tuple[str, float]],
    types: Mapping[str, str],
    timestamp_ms: int,
    tally: _PageTally,
    *,
    keeps: Callable[[str], bool],
) -> list[_NewSeries]:
    """Parse and label series texts seen for the first time (outside the lock).

    Texts that will never be stored (malformed, ``_created``, metrics not kept) are
    cached as such at once.
    """
    cache = state.cache
    pending: list[_NewSeries] = []
    for key, value in misses:
        try:
            name, exposed = parse_series(key)
        except MalformedSeriesError:
            cache[key] = _Cached(None, _MALFORMED, timestamp_ms)
            tally.malformed += 1
            continue
        kind = sample_kind(name, types).series_kind
        if kind is None or not keeps(name):
            cache[key] = _Cached(None, _NOT_STORED, timestamp_ms)
            continue
        pending.append((key, name, storage_labels(exposed, state.target), kind, value))
    return pending


async def _cancel_all(tasks: Sequence[asyncio.Task[None]]) -> None:
    """Cancel ``tasks`` and wait until every one has ended.

    Once is not always enough: on Python before 3.12, ``asyncio.wait_for`` swallows a
    cancellation that arrives as the awaited scrape completes, and that target's loop
    then sleeps on to its next slot. A shutdown that waited for it once hung for ever
    (seen at the scale rig's 1,000 targets), so what is still running is cancelled
    again every :data:`_RECANCEL_SECONDS`.
    """
    pending = set(tasks)
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=_RECANCEL_SECONDS)


class _ScrapeFailedError(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def storage_labels(exposed: dict[str, str], target: Target) -> dict[str, str]:
    """The labels a sample is stored with (see the storage schema above).

    ``exposed`` is consumed (the result may be the same dict).
    """
    labels = exposed
    if any(not value or name.startswith("__") for name, value in labels.items()):
        labels = {
            name: value for name, value in labels.items() if value and not name.startswith("__")
        }
    if target.role is TargetRole.EXPORTER:
        _attach(labels, _INSTANCE_LABEL, target.instance)
    else:
        for name, value in zip(
            _POD_TARGET_LABELS, (target.namespace, target.pod, target.node), strict=True
        ):
            if value:
                _attach(labels, name, value)
    return labels


def _attach(labels: dict[str, str], name: str, value: str) -> None:
    """Set a target label; an exposed label of that name moves to ``exported_<name>``."""
    if name in labels:
        exported = _EXPORTED_PREFIX + name
        while exported in labels:
            exported = _EXPORTED_PREFIX + exported
        labels[exported] = labels[name]
    labels[name] = value


class Scraper:
    """Scrapes every target of ``targets`` into ``store`` (see the module docstring).

    Args:
        store: the store the query side reads.
        lock: the lock the query side holds while it reads ``store``; the scraper holds
            it only to create series, append a page and delete absent series.
        targets: where targets come from (``KubernetesTargetDiscovery``,
            ``StaticTargets``... from :mod:`adapter.scrape.targets`).
        settings: schedule and limits.
        metrics: where to count; by default a :class:`ScrapeMetrics` with its own registry.
        wall_clock: seconds since the epoch (injected by tests).
        transport: the HTTP transport (tests pass an ``httpx.MockTransport``); by
            default httpx's own.
    """

    def __init__(
        self,
        store: TimeSeriesStore,
        lock: threading.Lock,
        targets: TargetSource,
        settings: ScrapeSettings | None = None,
        *,
        metrics: ScrapeMetrics | None = None,
        wall_clock: Callable[[], float] = time.time,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.store = store
        self.settings = settings or ScrapeSettings()
        self.metrics = metrics or ScrapeMetrics()
        self._lock = lock
        self._source = targets
        self._wall_clock = wall_clock
        self._transport = transport
        self._interval_ms = max(1, round(self.settings.interval_seconds * 1000))
        self._grace_ms = round(self.settings.series_grace_seconds * 1000)
        self._active: dict[Target, _TargetState] = {}
        self._retired: dict[Target, _TargetState] = {}
        self._started_ms = self._now_ms()
        self._orphans_swept = False
        self._next_store_bytes_ms = self._started_ms
        self._client: httpx.AsyncClient | None = None
        self._semaphore: asyncio.Semaphore | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._last_targets: tuple[Target, ...] | None = None
        self.lock_hold_seconds_total = 0.0
        """Seconds the scraper has held the lock, in all (for benchmarks)."""
        self.lock_hold_seconds_max = 0.0
        """The longest single hold of the lock, in seconds."""

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Run :meth:`run` in a daemon thread with its own event loop.

        Raises:
            RuntimeError: already started; make a new scraper instead.
        """
        if self._thread is not None:
            raise RuntimeError("the scraper was already started; create a new Scraper")
        ready = threading.Event()
        self._thread = threading.Thread(
            target=self._thread_main, args=(ready,), name="kubepulse-scraper", daemon=True
        )
        self._thread.start()
        ready.wait(timeout=10.0)

    def _thread_main(self, ready: threading.Event) -> None:
        async def main() -> None:
            self._prepare_loop()
            ready.set()
            await self.run()

        try:
            asyncio.run(main())
        except Exception:  # the thread must not end silently
            LOGGER.exception("the scraper stopped on an unexpected error")
        finally:
            ready.set()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop scraping: cancel every scrape in flight and wait for the thread.

        Nothing is half-written: a page is appended in one synchronous step, which a
        cancellation cannot interrupt.
        """
        loop, stop_event = self._loop, self._stop_event
        if loop is not None and stop_event is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(stop_event.set)
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                LOGGER.warning("the scraper thread did not stop within %.0f s", timeout)

    def __enter__(self) -> Scraper:
        self.start()
        return self

    def __exit__(self, *_exc_info: object) -> None:
        self.stop()

    def _prepare_loop(self) -> None:
        """Bind the stop event to the running loop (once per loop, so a stop() that
        comes while run() is starting is not lost)."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop or self._stop_event is None:
            self._loop = loop
            self._stop_event = asyncio.Event()

    async def run(self) -> None:
        """Scrape until :meth:`stop` (or until the task running this is cancelled)."""
        self._prepare_loop()
        stop_event = self._stop_event
        assert stop_event is not None
        next_housekeeping_ms = self._now_ms() + round(self.settings.housekeeping_seconds * 1000)
        async with self._http_client() as client:
            self._client = client
            try:
                while not stop_event.is_set():
                    self._reconcile(start_tasks=True)
                    if self._now_ms() >= next_housekeeping_ms:
                        self.housekeeping()
                        next_housekeeping_ms = self._now_ms() + round(
                            self.settings.housekeeping_seconds * 1000
                        )
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(
                            stop_event.wait(), self.settings.target_refresh_seconds
                        )
            finally:
                await _cancel_all([state.task for state in self._active.values() if state.task])
                for state in self._active.values():
                    state.task = None
                self._client = None

    # ------------------------------------------------------------------ reading

    def health(self) -> tuple[ScrapeResult, ...]:
        """The last scrape of every current target that has been scraped."""
        return tuple(
            state.last_result
            for state in list(self._active.values())
            if state.last_result is not None
        )

    def active_targets(self) -> tuple[Target, ...]:
        """The targets being scraped now."""
        return tuple(self._active)

    # ------------------------------------------------------------------ one round

    async def scrape_once(self) -> tuple[ScrapeResult, ...]:
        """Scrape every current target once, now, and wait for all of them.

        For tests, benchmarks and a first fill at start-up; samples are stamped with the
        actual time. Safe to call while :meth:`run` is not running.
        """
        self._reconcile(start_tasks=False)
        states = list(self._active.values())
        async with contextlib.AsyncExitStack() as stack:
            client = self._client
            if client is None:
                client = await stack.enter_async_context(self._http_client())
            results = await asyncio.gather(*(self._scrape(state, client, None) for state in states))
        self._update_target_gauges()
        return tuple(results)

    @contextlib.asynccontextmanager
    async def _http_client(self) -> AsyncIterator[httpx.AsyncClient]:
        settings = self.settings
        verify: ssl.SSLContext | bool
        if settings.tls_insecure_skip_verify:
            verify = False
        else:
            verify = ssl.create_default_context(cafile=settings.tls_ca_file)
        self._semaphore = asyncio.Semaphore(settings.max_concurrent_scrapes)
        async with httpx.AsyncClient(
            headers={
                "Accept": ACCEPT_HEADER,
                "Accept-Encoding": "gzip",
                "User-Agent": f"kubepulse-adapter/{__version__}",
                "X-Prometheus-Scrape-Timeout-Seconds": f"{settings.timeout_seconds:g}",
            },
            timeout=httpx.Timeout(settings.timeout_seconds),
            limits=httpx.Limits(
                max_connections=settings.max_concurrent_scrapes,
                max_keepalive_connections=settings.max_concurrent_scrapes,
                keepalive_expiry=settings.interval_seconds * 2,
            ),
            verify=verify,
            # A pod must not be able to send the adapter elsewhere (the API server, a
            # cloud metadata endpoint): redirects fail the scrape as http_status.
            follow_redirects=False,
            trust_env=False,  # pod IPs never go through a proxy from the environment
            transport=self._transport,
        ) as client:
            yield client

    # ------------------------------------------------------------------ targets

    def _reconcile(self, *, start_tasks: bool) -> None:
        """Follow the target source: start new targets, retire those gone."""
        try:
            current = self._source.targets()
        except Exception:  # a broken source must not stop scraping of known targets
            LOGGER.exception("reading the scrape targets failed; keeping the current ones")
            return
        if current is self._last_targets:  # sources hand out the same tuple until a change
            if start_tasks:
                for known in self._active.values():
                    self._start_task(known)
            self._update_target_gauges()
            return
        self._last_targets = current
        now_ms = self._now_ms()
        wanted = dict.fromkeys(current)
        for target in wanted:
            state = self._active.get(target)
            if state is None:
                state = self._retired.pop(target, None) or _TargetState(target, self._interval_ms)
                state.retired_at_ms = None
                self._active[target] = state
                LOGGER.debug("scraping %s", target)
            state.target = target  # the same target, perhaps with new pod labels
            if start_tasks:
                self._start_task(state)
        for target in [target for target in self._active if target not in wanted]:
            state = self._active.pop(target)
            if state.task is not None:
                state.task.cancel()
                state.task = None
            state.retired_at_ms = now_ms
            self._retired[target] = state
            LOGGER.debug("stopped scraping %s", target)
        self._update_target_gauges()

    def _start_task(self, state: _TargetState) -> None:
        if state.task is None:
            state.task = asyncio.get_running_loop().create_task(
                self._target_loop(state), name=f"scrape {state.target.url}"
            )

    def _update_target_gauges(self) -> None:
        counts = {
            (role.value, health): 0 for role in TargetRole for health in ("up", "down", "unknown")
        }
        for target, state in self._active.items():
            result = state.last_result
            health = "unknown" if result is None else ("up" if result.up else "down")
            counts[(target.role.value, health)] += 1
        for (role, health), count in counts.items():
            self.metrics.targets.labels(role, health).set(count)

    async def _target_loop(self, state: _TargetState) -> None:
        interval_ms = self._interval_ms
        client = self._client
        assert client is not None
        while True:
            now_ms = self._now_ms()
            slot_ms = now_ms + (state.phase_ms - now_ms) % interval_ms
            await asyncio.sleep(max(0.0, (slot_ms - self._now_ms()) / 1000))
            try:
                await self._scrape(state, client, slot_ms)
            except asyncio.CancelledError:
                raise
            except Exception:  # the loop must outlive any bug
                LOGGER.exception("scraping %s failed unexpectedly", state.target)

    # ------------------------------------------------------------------ one scrape

    async def _scrape(
        self, state: _TargetState, client: httpx.AsyncClient, slot_ms: int | None
    ) -> ScrapeResult:
        target = state.target
        role = target.role.value
        semaphore = self._semaphore
        assert semaphore is not None
        async with semaphore:
            started = time.perf_counter()
            started_ms = self._now_ms()
            timestamp_ms = started_ms
            if (
                slot_ms is not None
                and abs(started_ms - slot_ms) <= self.settings.timestamp_tolerance_ms
            ):
                timestamp_ms = slot_ms
            self.metrics.scrapes.labels(role).inc()
            try:
                body, content_type = await asyncio.wait_for(
                    self._fetch(client, target), self.settings.timeout_seconds
                )
            except _ScrapeFailedError as failure:
                return self._failed(state, timestamp_ms, started, failure.reason, str(failure))
            except asyncio.TimeoutError:
                return self._failed(
                    state,
                    timestamp_ms,
                    started,
                    "timeout",
                    f"no complete answer within {self.settings.timeout_seconds:g} s; check "
                    "that the target is up, or raise the scrape timeout",
                )
        try:
            result = self._ingest(state, body, content_type, timestamp_ms, started)
        except _ScrapeFailedError as failure:
            return self._failed(state, timestamp_ms, started, failure.reason, str(failure))
        state.last_result = result
        state.last_success_ms = timestamp_ms
        self.metrics.duration.labels(role).observe(result.duration_seconds)
        return result

    async def _fetch(self, client: httpx.AsyncClient, target: Target) -> tuple[bytes, str | None]:
        max_bytes = self.settings.max_body_bytes
        try:
            async with client.stream("GET", target.url) as response:
                if response.status_code != httpx.codes.OK:
                    raise _ScrapeFailedError(
                        "http_status",
                        f"HTTP {response.status_code} from {target.url}; the target must "
                        "answer 200 with an exposition page (redirects are not followed: "
                        "point the prometheus.io/path annotation at the page itself)",
                    )
                declared = response.headers.get("content-length", "")
                if declared.isdigit():
                    check_body_size(int(declared), max_bytes)
                pieces: list[bytes] = []
                size = 0
                async for piece in response.aiter_bytes():
                    size += len(piece)
                    check_body_size(size, max_bytes)
                    pieces.append(piece)
                return b"".join(pieces), response.headers.get("content-type")
        except BodyTooLargeError as error:
            raise _ScrapeFailedError("too_large", str(error)) from error
        except httpx.TimeoutException as error:
            raise _ScrapeFailedError("timeout", f"{type(error).__name__}: {error}") from error
        except httpx.DecodingError as error:
            raise _ScrapeFailedError(
                "decode", f"the body cannot be decompressed: {error}"
            ) from error
        except (httpx.TransportError, OSError) as error:
            raise _ScrapeFailedError(
                "connection", f"{type(error).__name__}: {error or 'connection failed'}"
            ) from error
        except (httpx.HTTPError, httpx.InvalidURL) as error:
            raise _ScrapeFailedError("error", f"{type(error).__name__}: {error}") from error

    def _failed(
        self, state: _TargetState, timestamp_ms: int, started: float, reason: str, message: str
    ) -> ScrapeResult:
        target = state.target
        duration = time.perf_counter() - started
        self.metrics.failures.labels(target.role.value, reason).inc()
        self.metrics.duration.labels(target.role.value).observe(duration)
        previous = state.last_result
        if previous is None or previous.up or previous.failure_reason != reason:
            LOGGER.warning("scraping %s failed (%s): %s", target, reason, message)
        result = ScrapeResult(
            target=target,
            timestamp_ms=timestamp_ms,
            duration_seconds=duration,
            failure_reason=reason,
            error=message,
        )
        state.last_result = result
        return result

    def _ingest(
        self,
        state: _TargetState,
        body: bytes,
        content_type: str | None,
        timestamp_ms: int,
        started: float,
    ) -> ScrapeResult:
        """Parse a page outside the lock, then store it (see :meth:`_store_page`)."""
        scanned = scan_exposition(decode_body(body), format_from_content_type(content_type))
        if len(scanned.series) > self.settings.sample_limit:
            raise _ScrapeFailedError(
                "sample_limit",
                f"{len(scanned.series)} samples, over the limit of "
                f"{self.settings.sample_limit}; reduce the target's cardinality or raise "
                "the scraper's sample_limit",
            )
        tally = _PageTally(malformed=scanned.malformed_lines)
        batch, misses = _cached_samples(state.cache, scanned, timestamp_ms, tally)
        pending = _new_series(
            state, misses, scanned.types, timestamp_ms, tally, keeps=self.settings.keeps
        )
        appended = self._store_page(state.cache, pending, batch, timestamp_ms, tally)
        if state.last_result is not None and not state.last_result.up:
            LOGGER.info("scraping %s works again", state.target)
        return ScrapeResult(
            target=state.target,
            timestamp_ms=timestamp_ms,
            duration_seconds=time.perf_counter() - started,
            samples=len(scanned.series),
            appended=appended,
            new_series=len(misses),
            malformed_lines=tally.malformed,
        )

    def _store_page(
        self,
        cache: dict[str, _Cached],
        pending: Sequence[_NewSeries],
        batch: list[tuple[Series, int, float]],
        timestamp_ms: int,
        tally: _PageTally,
    ) -> int:
        """The critical sections: create the new series a few hundred per hold (a first
        scrape of an exporter brings thousands), then append the page in one; count it."""
        store = self.store
        for start in range(0, len(pending), _NEW_SERIES_PER_HOLD):
            held = time.perf_counter()
            with self._lock:
                for key, name, labels, kind, value in pending[start : start + _NEW_SERIES_PER_HOLD]:
                    try:
                        series = store.series(name, labels, kind)
                    except KubepulseValueError:
                        cache[key] = _Cached(None, _KIND_CONFLICT, timestamp_ms)
                        tally.kind_conflicts += 1
                        continue
                    cache[key] = _Cached(series, _STORED, timestamp_ms)
                    batch.append((series, timestamp_ms, value))
            self._count_lock_hold(time.perf_counter() - held)
        held = time.perf_counter()
        with self._lock:
            outcomes_before = store.outcome_counts
            appended = store.append_many(batch)
            outcomes_after = store.outcome_counts
        self._count_lock_hold(time.perf_counter() - held)
        metrics = self.metrics
        metrics.appended.inc(appended)
        if tally.malformed:
            metrics.malformed.inc(tally.malformed)
        if tally.kind_conflicts:
            metrics.rejected.labels("kind_conflict").inc(tally.kind_conflicts)
        for outcome, reason in _REJECTION_REASONS.items():
            rejected = outcomes_after[outcome] - outcomes_before[outcome]
            if rejected:
                metrics.rejected.labels(reason).inc(rejected)
        return appended

    def _count_lock_hold(self, seconds: float) -> None:
        self.metrics.lock_hold.observe(seconds)
        self.lock_hold_seconds_total += seconds
        self.lock_hold_seconds_max = max(self.lock_hold_seconds_max, seconds)

    # ------------------------------------------------------------------ housekeeping

    def housekeeping(self) -> int:
        """Delete series absent longer than the grace period; update the gauges.

        Called by :meth:`run` every ``housekeeping_seconds`` (call it yourself only when
        :meth:`run` is not running); returns how many series were deleted. Deletions
        happen under the lock in batches of a few hundred, so the query side waits at
        most one batch.
        """
        now_ms = self._now_ms()
        cutoff_ms = now_ms - self._grace_ms
        doomed: list[Series] = []
        # Series that vanished from a live target's page: a later successful scrape did
        # not show them. A target that fails keeps them all.
        for state in self._active.values():
            last_success_ms = state.last_success_ms
            if last_success_ms is None:
                continue
            cutoff = min(cutoff_ms, last_success_ms)
            gone = [key for key, entry in state.cache.items() if entry.last_seen_ms < cutoff]
            for key in gone:
                series = state.cache.pop(key).series
                if series is not None:
                    doomed.append(series)
        # Every series of targets gone from discovery for longer than the grace period,
        # unless a current target writes the same series (a pod recreated with its name).
        expired = [
            target
            for target, state in self._retired.items()
            if state.retired_at_ms is not None and state.retired_at_ms < cutoff_ms
        ]
        if expired:
            in_use = {
                id(entry.series)
                for state in self._active.values()
                for entry in state.cache.values()
                if entry.series is not None
            }
            for target in expired:
                state = self._retired.pop(target)
                doomed.extend(
                    entry.series
                    for entry in state.cache.values()
                    if entry.series is not None and id(entry.series) not in in_use
                )
        if not self._orphans_swept and now_ms - self._started_ms >= self._grace_ms:
            doomed.extend(self._orphans(cutoff_ms))
            self._orphans_swept = True
        deleted = self._delete(doomed)
        with self._lock:
            series_count = self.store.series_count
        self.metrics.series.set(series_count)
        if now_ms >= self._next_store_bytes_ms:
            self._next_store_bytes_ms = now_ms + round(self.settings.store_bytes_seconds * 1000)
            held = time.perf_counter()
            with self._lock:
                store_bytes = self.store.memory_bytes()
            self._count_lock_hold(time.perf_counter() - held)
            self.metrics.store_bytes.set(store_bytes)
        self._update_target_gauges()
        if deleted:
            LOGGER.info("deleted %d series absent for over %.0f s", deleted, self._grace_ms / 1000)
        return deleted

    def _orphans(self, cutoff_ms: int) -> list[Series]:
        """Series no target has written since start (restored from a checkpoint) and
        whose newest sample is older than the grace period."""
        with self._lock:
            every_series = list(self.store)
        claimed = {
            id(entry.series)
            for states in (self._active, self._retired)
            for state in states.values()
            for entry in state.cache.values()
            if entry.series is not None
        }
        return [
            series
            for series in every_series
            if id(series) not in claimed
            and (series.last_timestamp_ms is None or series.last_timestamp_ms < cutoff_ms)
        ]

    def _delete(self, doomed: Sequence[Series]) -> int:
        deleted = 0
        for start in range(0, len(doomed), _DELETE_BATCH):
            held = time.perf_counter()
            with self._lock:
                for series in doomed[start : start + _DELETE_BATCH]:
                    if not series.deleted:
                        deleted += _delete_exactly(self.store, series)
            self._count_lock_hold(time.perf_counter() - held)
        if deleted:
            self.metrics.deleted.inc(deleted)
        return deleted

    def _now_ms(self) -> int:
        return int(self._wall_clock() * 1000)


def _delete_exactly(store: TimeSeriesStore, series: Series) -> int:
    """Delete this one series (not the ones whose labels merely include its labels)."""
    labels = series.labels
    return store.delete_series(
        lambda found: found == labels, **{METRIC_NAME_LABEL: series.name}, **labels
    )
