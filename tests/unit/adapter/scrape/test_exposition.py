"""The exposition parser: both formats, kinds, escapes, bad input, and equality with
prometheus_client's own parsers on a corpus of pages."""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Iterator

import pytest
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Enum,
    Gauge,
    Histogram,
    Info,
    Summary,
)
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeHistogramMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
    StateSetMetricFamily,
    UnknownMetricFamily,
)
from prometheus_client.exposition import generate_latest
from prometheus_client.openmetrics import exposition as openmetrics_exposition
from prometheus_client.openmetrics import parser as openmetrics_parser
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from adapter.scrape.exposition import (
    ACCEPT_HEADER,
    BodyTooLargeError,
    ExpositionFormat,
    MalformedSeriesError,
    ParsedExposition,
    Sample,
    SampleKind,
    check_body_size,
    decode_body,
    format_from_content_type,
    parse_exposition,
    parse_series,
    sample_kind,
    scan_exposition,
)
from kubepulse.catalog import CATALOG, MetricType
from kubepulse.stats.summary import SeriesKind

TEXT = ExpositionFormat.PROMETHEUS_TEXT
OPENMETRICS = ExpositionFormat.OPENMETRICS


def by_name(parsed: ParsedExposition) -> dict[str, list[Sample]]:
    grouped: dict[str, list[Sample]] = {}
    for sample in parsed.samples:
        grouped.setdefault(sample.name, []).append(sample)
    return grouped


# ---------------------------------------------------------------------------- the formats


def test_a_prometheus_text_page_with_every_type() -> None:
    page = """\
# HELP http_requests_total Requests answered.
# TYPE http_requests_total counter
http_requests_total{code="200",method="get"} 1027 1395066363000
http_requests_total{code="400",method="post"} 3 1395066363000
# TYPE queue_depth gauge
queue_depth 7
# TYPE latency_seconds histogram
latency_seconds_bucket{le="0.05"} 24054
latency_seconds_bucket{le="0.1"} 33444
latency_seconds_bucket{le="+Inf"} 144320
latency_seconds_sum 53423
latency_seconds_count 144320
# TYPE rpc_duration_seconds summary
rpc_duration_seconds{quantile="0.5"} 4773
rpc_duration_seconds{quantile="0.99"} 76656
rpc_duration_seconds_sum 1.7560473e+07
rpc_duration_seconds_count 2693
no_type_at_all 1.5
"""
    parsed = parse_exposition(page)
    assert parsed.malformed_lines == 0
    assert parsed.problems == ()
    assert [(s.name, dict(s.labels), s.value, s.kind) for s in parsed.samples] == [
        ("http_requests_total", {"code": "200", "method": "get"}, 1027.0, SampleKind.COUNTER),
        ("http_requests_total", {"code": "400", "method": "post"}, 3.0, SampleKind.COUNTER),
        ("queue_depth", {}, 7.0, SampleKind.GAUGE),
        ("latency_seconds_bucket", {"le": "0.05"}, 24054.0, SampleKind.HISTOGRAM_BUCKET),
        ("latency_seconds_bucket", {"le": "0.1"}, 33444.0, SampleKind.HISTOGRAM_BUCKET),
        ("latency_seconds_bucket", {"le": "+Inf"}, 144320.0, SampleKind.HISTOGRAM_BUCKET),
        ("latency_seconds_sum", {}, 53423.0, SampleKind.HISTOGRAM_SUM),
        ("latency_seconds_count", {}, 144320.0, SampleKind.HISTOGRAM_COUNT),
        ("rpc_duration_seconds", {"quantile": "0.5"}, 4773.0, SampleKind.SUMMARY_QUANTILE),
        ("rpc_duration_seconds", {"quantile": "0.99"}, 76656.0, SampleKind.SUMMARY_QUANTILE),
        ("rpc_duration_seconds_sum", {}, 1.7560473e7, SampleKind.SUMMARY_SUM),
        ("rpc_duration_seconds_count", {}, 2693.0, SampleKind.SUMMARY_COUNT),
        ("no_type_at_all", {}, 1.5, SampleKind.UNTYPED),
    ]
    # 0.0.4 timestamps are milliseconds.
    assert [s.timestamp_ms for s in parsed.samples[:3]] == [1395066363000, 1395066363000, None]
    assert parsed.types["latency_seconds"] == "histogram"


def test_an_openmetrics_page_with_created_exemplars_and_eof() -> None:
    page = """\
# TYPE http_requests counter
# HELP http_requests Requests answered.
http_requests_total{code="200"} 1027 1712345678.5 # {trace_id="a b}c"} 1 1712345678.25
http_requests_created{code="200"} 1.712e+09
# TYPE latency_seconds histogram
# UNIT latency_seconds seconds
latency_seconds_bucket{le="0.1"} 3 # {trace_id="x"} 0.05
latency_seconds_bucket{le="+Inf"} 5
latency_seconds_count 5
latency_seconds_sum 1.25
latency_seconds_created 1.712e+09
# TYPE build info
build_info{version="1.2.3"} 1
# TYPE state stateset
state{state="ready"} 1
state{state="busy"} 0
# TYPE pool gaugehistogram
pool_bucket{le="10"} 4
pool_bucket{le="+Inf"} 6
pool_gcount 6
pool_gsum 31
# TYPE mystery unknown
mystery 2
# EOF
ignored_after_eof 1
"""
    parsed = parse_exposition(page, OPENMETRICS)
    assert parsed.malformed_lines == 0, parsed.problems
    assert parsed.saw_eof
    kinds = [(s.name, s.kind) for s in parsed.samples]
    assert kinds == [
        ("http_requests_total", SampleKind.COUNTER),
        ("http_requests_created", SampleKind.CREATED),
        ("latency_seconds_bucket", SampleKind.HISTOGRAM_BUCKET),
        ("latency_seconds_bucket", SampleKind.HISTOGRAM_BUCKET),
        ("latency_seconds_count", SampleKind.HISTOGRAM_COUNT),
        ("latency_seconds_sum", SampleKind.HISTOGRAM_SUM),
        ("latency_seconds_created", SampleKind.CREATED),
        ("build_info", SampleKind.INFO),
        ("state", SampleKind.STATESET),
        ("state", SampleKind.STATESET),
        ("pool_bucket", SampleKind.GAUGE_HISTOGRAM),
        ("pool_bucket", SampleKind.GAUGE_HISTOGRAM),
        ("pool_gcount", SampleKind.GAUGE_HISTOGRAM),
        ("pool_gsum", SampleKind.GAUGE_HISTOGRAM),
        ("mystery", SampleKind.UNTYPED),
    ]
    first = parsed.samples[0]
    assert dict(first.labels) == {"code": "200"}  # the exemplar's labels are not the sample's
    assert first.value == 1027.0
    assert first.timestamp_ms == 1712345678500  # OpenMetrics timestamps are seconds


def test_a_missing_eof_is_counted_but_the_samples_are_kept() -> None:
    parsed = parse_exposition("# TYPE a gauge\na 1\n", OPENMETRICS)
    assert [s.value for s in parsed.samples] == [1.0]
    assert not parsed.saw_eof
    assert parsed.malformed_lines == 1
    assert "does not end with '# EOF'" in parsed.problems[0]


def test_prometheus_clients_created_gauges_in_the_text_format() -> None:
    # prometheus_client's 0.0.4 output adds a separate "<name>_created" gauge family per
    # counter, histogram and summary; it is recognised and not stored.
    registry = CollectorRegistry()
    Counter("jobs", "Jobs.", registry=registry).inc()
    Histogram("wait_seconds", "Wait.", registry=registry).observe(1)
    Gauge("lonely_created", "A gauge that only looks like one.", registry=registry).set(4)
    parsed = parse_exposition(generate_latest(registry))
    kinds = {s.name: s.kind for s in parsed.samples}
    assert kinds["jobs_total"] is SampleKind.COUNTER
    assert kinds["jobs_created"] is SampleKind.CREATED
    assert kinds["wait_seconds_created"] is SampleKind.CREATED
    assert kinds["lonely_created"] is SampleKind.GAUGE


@pytest.mark.parametrize(
    ("kind", "series_kind"),
    [
        (SampleKind.COUNTER, SeriesKind.COUNTER),
        (SampleKind.HISTOGRAM_BUCKET, SeriesKind.COUNTER),
        (SampleKind.HISTOGRAM_SUM, SeriesKind.COUNTER),
        (SampleKind.HISTOGRAM_COUNT, SeriesKind.COUNTER),
        (SampleKind.SUMMARY_SUM, SeriesKind.COUNTER),
        (SampleKind.SUMMARY_COUNT, SeriesKind.COUNTER),
        (SampleKind.GAUGE, SeriesKind.GAUGE),
        (SampleKind.UNTYPED, SeriesKind.GAUGE),
        (SampleKind.SUMMARY_QUANTILE, SeriesKind.GAUGE),
        (SampleKind.GAUGE_HISTOGRAM, SeriesKind.GAUGE),
        (SampleKind.INFO, SeriesKind.GAUGE),
        (SampleKind.STATESET, SeriesKind.GAUGE),
        (SampleKind.CREATED, None),
    ],
)
def test_how_each_kind_is_stored(kind: SampleKind, series_kind: SeriesKind | None) -> None:
    assert kind.series_kind is series_kind


def test_sample_kind_rules() -> None:
    types = {"a": "counter", "b_total": "counter", "h": "histogram", "s": "summary"}
    assert sample_kind("a", types) is SampleKind.COUNTER  # 0.0.4 may name the sample as the family
    assert sample_kind("a_total", types) is SampleKind.COUNTER
    assert sample_kind("b_total", types) is SampleKind.COUNTER
    assert sample_kind("h", types) is SampleKind.UNTYPED  # a histogram has no bare sample
    assert sample_kind("h_gsum", types) is SampleKind.UNTYPED
    assert sample_kind("s_created", types) is SampleKind.CREATED
    assert sample_kind("other_sum", types) is SampleKind.UNTYPED


@pytest.mark.parametrize(
    ("content_type", "expected"),
    [
        (None, TEXT),
        ("", TEXT),
        ("text/plain; version=0.0.4; charset=utf-8", TEXT),
        ("application/openmetrics-text; version=1.0.0; charset=utf-8", OPENMETRICS),
        ("Application/OpenMetrics-Text", OPENMETRICS),
        ("application/json", TEXT),
    ],
)
def test_format_from_content_type(content_type: str | None, expected: ExpositionFormat) -> None:
    assert format_from_content_type(content_type) is expected


def test_the_accept_header_prefers_the_text_format() -> None:
    assert ACCEPT_HEADER.startswith("text/plain;version=0.0.4")
    assert "application/openmetrics-text" in ACCEPT_HEADER


# ---------------------------------------------------------------------------- values, labels


def test_nan_and_infinities() -> None:
    parsed = parse_exposition("a NaN\nb +Inf\nc -Inf\nd Inf\ne 1e-3\nf -0\ng 0x0\n")
    values = {s.name: s.value for s in parsed.samples}
    assert math.isnan(values["a"])
    assert values["b"] == math.inf
    assert values["c"] == -math.inf
    assert values["d"] == math.inf
    assert values["e"] == 0.001
    assert values["f"] == 0.0
    assert math.copysign(1.0, values["f"]) == -1.0
    assert "g" not in values  # hexadecimal is not a number in this format
    assert parsed.malformed_lines == 1


@pytest.mark.parametrize(
    ("series_text", "labels"),
    [
        ('m{a="plain"}', {"a": "plain"}),
        ('m{a="back\\\\slash"}', {"a": "back\\slash"}),
        ('m{a="a \\"quote\\""}', {"a": 'a "quote"'}),
        ('m{a="new\\nline"}', {"a": "new\nline"}),
        ('m{a="unknown \\t escape"}', {"a": "unknown \\t escape"}),
        ('m{a="brace } and , comma = sign"}', {"a": "brace } and , comma = sign"}),
        ('m{a="x",b="y",}', {"a": "x", "b": "y"}),  # a trailing comma is allowed
        ("m{}", {}),
        ('m{ a = "spaced" , b="y" }', {"a": "spaced", "b": "y"}),
        ('m{a=""}', {"a": ""}),
        ('m{a="ünïcödé ✓"}', {"a": "ünïcödé ✓"}),
        ('m{a="ends with backslash \\\\"}', {"a": "ends with backslash \\"}),
    ],
)
def test_label_values(series_text: str, labels: dict[str, str]) -> None:
    assert parse_series(series_text) == ("m", labels)
    parsed = parse_exposition(f"{series_text} 1\n")
    assert parsed.malformed_lines == 0, parsed.problems
    assert [dict(s.labels) for s in parsed.samples] == [labels]


@pytest.mark.parametrize(
    ("series_text", "complaint"),
    [
        ("1abc", "is not a metric name"),
        ('m{a="x"', "not closed"),
        ("m{a=x}", "cannot read the labels"),
        ('m{a="x" b="y"}', "cannot read the labels"),
        ('m{a="x",a="y"}', "repeats"),
        ('m{1a="x"}', "cannot read the labels"),
        ('m{a="x\\"}', "cannot read the labels"),
    ],
)
def test_malformed_series_texts(series_text: str, complaint: str) -> None:
    with pytest.raises(MalformedSeriesError, match=complaint):
        parse_series(series_text)


def test_malformed_lines_are_counted_and_the_rest_is_read() -> None:
    page = """\
# TYPE good gauge
good{a="1"} 1
broken{a="1" 2
no_value{a="1"}
bad_value{a="1"} twelve
# TYPE weird nonsense
too_many{a="1"} 1 2 3
bad_timestamp 1 yesterday
dup{a="1",a="2"} 3
9starts_with_digit 4
good{a="2"} 2
"""
    parsed = parse_exposition(page)
    assert [dict(s.labels) for s in parsed.samples] == [{"a": "1"}, {"a": "2"}]
    assert parsed.malformed_lines == 8
    assert any(problem.startswith("line 3:") for problem in parsed.problems)
    assert any("twelve" in problem for problem in parsed.problems)
    assert any("nonsense" in problem for problem in parsed.problems)
    assert any("repeats" in problem for problem in parsed.problems)


def test_only_the_first_problems_are_described() -> None:
    parsed = parse_exposition("x\n" * 100)
    assert parsed.malformed_lines == 100
    assert len(parsed.problems) == 10


def test_blank_lines_comments_and_carriage_returns() -> None:
    parsed = parse_exposition('\n   \n# just a comment\n#\na 1\r\nb{c="d"} 2\r\n')
    assert [(s.name, s.value) for s in parsed.samples] == [("a", 1.0), ("b", 2.0)]
    assert parsed.malformed_lines == 0


def test_an_oversized_body_is_refused_before_parsing() -> None:
    body = b"a 1\n" * 100
    assert len(parse_exposition(body, max_bytes=len(body)).samples) == 100
    with pytest.raises(BodyTooLargeError, match="over the limit of 399"):
        parse_exposition(body, max_bytes=399)
    with pytest.raises(BodyTooLargeError, match="max_body_bytes"):
        check_body_size(2, 1)


def test_undecodable_bytes_spoil_only_their_value() -> None:
    body = b'a{x="caf\xe9"} 1\nb 2\n'
    assert decode_body(body) == 'a{x="caf\ufffd"} 1\nb 2\n'
    parsed = parse_exposition(body)
    assert [s.name for s in parsed.samples] == ["a", "b"]


def test_the_scanner_keeps_series_texts_as_written() -> None:
    scanned = scan_exposition('a{x="1"} 1\na{x="1"} 2 1700000000000\nb 3\n')
    assert scanned.series == ['a{x="1"}', 'a{x="1"}', "b"]
    assert scanned.values == [1.0, 2.0, 3.0]
    assert scanned.timestamps_ms == {1: 1700000000000}


def test_a_brace_inside_a_value_before_an_exemplar() -> None:
    page = 'c_total{path="/{id}"} 4 # {trace_id="}"} 1\n# EOF\n'
    scanned = scan_exposition(page, OPENMETRICS)
    assert scanned.series == ['c_total{path="/{id}"}']
    assert scanned.malformed_lines == 0
    scanned = scan_exposition('c_total 4 # {trace_id="t"} 1\n# EOF\n', OPENMETRICS)
    assert scanned.series == ["c_total"]
    assert scanned.values == [4.0]


def test_an_exemplar_is_not_accepted_in_the_text_format() -> None:
    parsed = parse_exposition('c_total 4 # {trace_id="t"} 1\nd 1\n')
    assert [s.name for s in parsed.samples] == ["d"]
    assert parsed.malformed_lines == 1


# ---------------------------------------------------------------------------- the corpus


class _CustomFamilies(Collector):
    """Families prometheus_client's metric classes do not make: quantiles, gauge
    histograms, state sets, unknown types, timestamps."""

    def collect(self) -> Iterator[Metric]:
        counter = CounterMetricFamily("batches", "Batches.", labels=["queue"])
        counter.add_metric(["a"], 12, timestamp=1712345678.25)
        counter.add_metric(["b"], 0)
        yield counter
        gauge = GaugeMetricFamily("temperature_celsius", "Temperature.", labels=["room"])
        gauge.add_metric(["cold"], -3.5)
        gauge.add_metric(["unknown"], math.nan)
        gauge.add_metric(["hot"], math.inf)
        gauge.add_metric(["very cold"], -math.inf)
        yield gauge
        histogram = HistogramMetricFamily("size_bytes", "Sizes.", labels=["kind"])
        histogram.add_metric(["x"], [("1024", 3), ("4096", 7), ("+Inf", 9)], sum_value=20480)
        yield histogram
        gauge_histogram = GaugeHistogramMetricFamily("in_flight", "In flight.")
        gauge_histogram.add_metric([], [("1", 2), ("+Inf", 3)], gsum_value=4)
        yield gauge_histogram
        yield StateSetMetricFamily("phase", "Phase.", value={"up": True, "down": False})
        yield UnknownMetricFamily("mystery", "Unknown.", value=42)


def _corpus_registry(seed: int) -> CollectorRegistry:
    generator = random.Random(seed)
    registry = CollectorRegistry()
    nasty = 'q"uote \\back\\slash\nnew line {brace} , comma = ünï ✓'
    requests = Counter("http_requests", "Requests.", ["code", "path"], registry=registry)
    for code in ("200", "404", "500"):
        for path in ("/", "/api/v1/items", nasty):
            requests.labels(code, path).inc(generator.randint(0, 10_000))
    latency = Histogram(
        "http_request_duration_seconds",
        "Latency.",
        ["method"],
        buckets=(0.005, 0.05, 0.5, 5.0),
        registry=registry,
    )
    for method in ("GET", "POST"):
        for _ in range(50):
            latency.labels(method).observe(generator.expovariate(10))
    Summary("payload_bytes", "Payloads.", registry=registry).observe(512)
    Gauge("queue_depth", "Queue.", ["queue"], registry=registry).labels(nasty).set(-7.25)
    Info("build", "Build.", registry=registry).info({"version": "1.2.3", "commit": 'a"b'})
    Enum("service_state", "State.", states=["starting", "running"], registry=registry).state(
        "running"
    )
    registry.register(_CustomFamilies())
    return registry


def _catalog_page(pods: int) -> str:
    """An exporter-shaped page from the metric catalog, as prometheus_client writes it."""

    class CatalogCollector(Collector):
        def collect(self) -> Iterator[Metric]:
            for spec in CATALOG:
                values = [[f"{label}-{index}" for label in spec.labels] for index in range(pods)]
                if spec.type is MetricType.COUNTER:
                    family: Metric = CounterMetricFamily(
                        spec.family_name, spec.help, labels=spec.labels
                    )
                    for index, labels in enumerate(values):
                        family.add_metric(labels, index * 1.5)  # type: ignore[attr-defined]
                elif spec.type is MetricType.GAUGE:
                    family = GaugeMetricFamily(spec.name, spec.help, labels=spec.labels)
                    for index, labels in enumerate(values):
                        family.add_metric(labels, index * 1024.0)  # type: ignore[attr-defined]
                else:
                    family = HistogramMetricFamily(spec.name, spec.help, labels=spec.labels)
                    for index, labels in enumerate(values):
                        buckets = [(str(bound), index) for bound in spec.buckets]
                        family.add_metric(  # type: ignore[attr-defined]
                            labels, [*buckets, ("+Inf", index + 1)], sum_value=index * 0.5
                        )
                yield family

    registry = CollectorRegistry()
    registry.register(CatalogCollector())
    return generate_latest(registry).decode()


_HANDWRITTEN_PAGE = """\
# HELP go_gc_duration_seconds A summary of the pause duration of garbage collection cycles.
# TYPE go_gc_duration_seconds summary
go_gc_duration_seconds{quantile="0"} 2.3412e-05
go_gc_duration_seconds{quantile="0.25"} 3.1011e-05
go_gc_duration_seconds{quantile="1"} NaN
go_gc_duration_seconds_sum 0.081873153
go_gc_duration_seconds_count 1862
# TYPE node_filesystem_avail_bytes gauge
node_filesystem_avail_bytes{device="/dev/sda1",fstype="ext4",mountpoint="/"} 3.5034468352e+10
node_filesystem_avail_bytes{device="tmpfs",fstype="tmpfs",mountpoint="/run/user/1000"} 1.6780288e+09
# TYPE process_start_time_seconds gauge
process_start_time_seconds 1.71234567889e+09
untyped_metric{a="x",b="y",} 1 1712345678901
"""


def _text_pages() -> Iterator[tuple[str, str]]:
    for seed in range(3):
        yield f"registry-{seed}", generate_latest(_corpus_registry(seed)).decode()
    yield "catalog", _catalog_page(pods=3)
    yield "handwritten", _HANDWRITTEN_PAGE


def _openmetrics_pages() -> Iterator[tuple[str, str]]:
    for seed in range(3):
        page = openmetrics_exposition.generate_latest(_corpus_registry(seed)).decode()
        yield f"registry-{seed}", page


def _expected_kind(family: Metric, sample_name: str, created_names: set[str]) -> SampleKind:
    """The kind prometheus_client's family type and the sample name imply."""
    suffix = sample_name[len(family.name) :]
    if family.type == "counter":
        return SampleKind.CREATED if suffix == "_created" else SampleKind.COUNTER
    if family.type == "gauge":
        return SampleKind.CREATED if sample_name in created_names else SampleKind.GAUGE
    if family.type in ("histogram", "summary"):
        if suffix == "_created":
            return SampleKind.CREATED
        prefix = "HISTOGRAM" if family.type == "histogram" else "SUMMARY"
        if not suffix:
            return SampleKind.SUMMARY_QUANTILE
        return SampleKind[f"{prefix}_{suffix[1:].upper()}"]
    return {
        "gaugehistogram": SampleKind.GAUGE_HISTOGRAM,
        "info": SampleKind.INFO,
        "stateset": SampleKind.STATESET,
        "unknown": SampleKind.UNTYPED,
        "untyped": SampleKind.UNTYPED,
    }[family.type]


Row = tuple[str, dict[str, str], float, SampleKind, int | None]


def _reference(families: Iterable[Metric]) -> list[Row]:
    families = list(families)
    created_names = {
        f"{family.name}_created"
        for family in families
        if family.type in ("counter", "histogram", "summary")
    }
    return [
        (
            sample.name,
            dict(sample.labels),
            float(sample.value),
            _expected_kind(family, sample.name, created_names),
            None if sample.timestamp is None else round(float(sample.timestamp) * 1000),
        )
        for family in families
        for sample in family.samples
    ]


def _ours(parsed: ParsedExposition) -> list[Row]:
    return [(s.name, dict(s.labels), s.value, s.kind, s.timestamp_ms) for s in parsed.samples]


def _without_nan(row: Row) -> Row:
    """NaN is not equal to itself; compare it as a marker."""
    name, labels, value, kind, timestamp_ms = row
    return name, labels, -12345.678 if math.isnan(value) else value, kind, timestamp_ms


def _assert_same(ours: list[Row], reference: list[Row]) -> None:
    assert len(ours) == len(reference)
    for mine, theirs in zip(ours, reference, strict=True):
        assert _without_nan(mine) == _without_nan(theirs)


@pytest.mark.parametrize(("name", "page"), list(_text_pages()), ids=lambda value: str(value)[:20])
def test_the_text_format_agrees_with_prometheus_client(name: str, page: str) -> None:
    parsed = parse_exposition(page, TEXT)
    assert parsed.malformed_lines == 0, parsed.problems
    assert len(parsed.samples) > 5
    _assert_same(_ours(parsed), _reference(text_string_to_metric_families(page)))


@pytest.mark.parametrize(
    ("name", "page"), list(_openmetrics_pages()), ids=lambda value: str(value)[:20]
)
def test_openmetrics_agrees_with_prometheus_client(name: str, page: str) -> None:
    parsed = parse_exposition(page, OPENMETRICS)
    assert parsed.malformed_lines == 0, parsed.problems
    assert parsed.saw_eof
    reference = openmetrics_parser.text_string_to_metric_families(page)
    _assert_same(_ours(parsed), _reference(reference))


def test_random_label_values_round_trip() -> None:
    generator = random.Random(7)
    alphabet = 'ab \\"\n{},=#\t✓'
    registry = CollectorRegistry()
    gauge = Gauge("fuzz", "Fuzz.", ["value"], registry=registry)
    expected = set()
    for _ in range(300):
        text = "".join(generator.choice(alphabet) for _ in range(generator.randint(1, 12)))
        gauge.labels(text).set(1)
        expected.add(text)
    page = generate_latest(registry).decode()
    parsed = parse_exposition(page)
    assert parsed.malformed_lines == 0, parsed.problems
    assert {s.labels["value"] for s in parsed.samples} == expected
    _assert_same(_ours(parsed), _reference(text_string_to_metric_families(page)))


# ---------------------------------------------------------------------- the fast path

# Lines on which the one-split fast path and the general path could disagree: blanks and
# tabs in and around the fields, braces and '#' inside values, timestamps, exemplars.
TRICKY_LINES = [
    'a{b="c"} 1',
    'a{b="c"} 1 1700000000000',
    'a{b="c"}\t1',
    'a{b="c"} \t1',
    'a{b="c"} 1\t',
    'a{b="c"} 1\r',
    'a{b="c"} 1 ',
    'a{b="c"}  1',
    'a{b="c d"} 1',
    'a{b="c} 1"} 2',
    'a{b="c} 1"}',
    'a{b="} 1',
    'a{b="x"} 1 # {t="1"} 2',
    'a{b="x"} 1 # {t="1"} 2 3',
    'a{b="x # y"} 1',
    'a{b="x"} NaN',
    'a{b="x"} +Inf',
    'a{b="x"} -Inf',
    'a{b="x"} 1e3',
    'a{b="x"} 1_000',
    'a{b="x"} one',
    'a{b="x"} 1"}',
    "a 1",
    "a{} 1",
    "a {} 1",
    'a{b="\\"}"} 1',
    'a{b="x"}1',
    "}",
    " }",
    "} 1",
    'a{b="x"} 1 } 2',
]


def _general_path(
    text: str, exposition_format: ExpositionFormat
) -> tuple[list[str], list[float], dict[int, int], int]:
    """What the scanner finds when every line takes the general path (no fast path)."""
    from adapter.scrape.exposition import ScannedExposition, _scan_line  # noqa: PLC0415

    scanned = ScannedExposition()
    for line_number, line in enumerate(text.split("\n"), 1):
        if not line or line[0] == "#":
            continue
        read = _scan_line(
            line, line_number, len(scanned.series), exposition_format is OPENMETRICS, scanned
        )
        if read is not None:
            scanned.series.append(read[0])
            scanned.values.append(read[1])
    return scanned.series, scanned.values, scanned.timestamps_ms, scanned.malformed_lines


def _scanned(
    text: str, exposition_format: ExpositionFormat
) -> tuple[list[str], list[float], dict[int, int], int]:
    scanned = scan_exposition(
        text + ("\n# EOF" if exposition_format is OPENMETRICS else ""), exposition_format
    )
    return scanned.series, scanned.values, scanned.timestamps_ms, scanned.malformed_lines


def _same(
    left: tuple[list[str], list[float], dict[int, int], int],
    right: tuple[list[str], list[float], dict[int, int], int],
) -> bool:
    # NaN != NaN: compare the values' reprs
    return (left[0], [repr(v) for v in left[1]], left[2], left[3]) == (
        right[0],
        [repr(v) for v in right[1]],
        right[2],
        right[3],
    )


@pytest.mark.parametrize("exposition_format", [TEXT, OPENMETRICS], ids=["text", "openmetrics"])
@pytest.mark.parametrize("line", TRICKY_LINES)
def test_the_fast_path_reads_a_line_as_the_general_path_does(
    line: str, exposition_format: ExpositionFormat
) -> None:
    assert _same(_scanned(line, exposition_format), _general_path(line, exposition_format))


@pytest.mark.parametrize("exposition_format", [TEXT, OPENMETRICS], ids=["text", "openmetrics"])
def test_the_fast_path_agrees_on_random_lines(exposition_format: ExpositionFormat) -> None:
    generator = random.Random(8)
    pieces = ["a", "{", "}", '"', "=", ",", " ", "\t", "#", "1", ".5", "e3", "NaN", "\\", "b"]
    lines = [
        "".join(generator.choice(pieces) for _ in range(generator.randint(1, 14)))
        for _ in range(20_000)
    ]
    text = "\n".join(lines)
    assert _same(_scanned(text, exposition_format), _general_path(text, exposition_format))
