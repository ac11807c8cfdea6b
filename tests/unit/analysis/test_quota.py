"""The quota analyzer and the namespace report: recorded objects in, hand-computed results out.

Objects are the recorded API objects of ``tests/fixtures/objects`` (the ``shop``
namespace, its ResourceQuota ``compute``, a pod with native sidecars and a pod that was
OOM-killed), parsed with ``from_api`` as collection does; variants are edited copies of
the recorded JSON. Histories are built by hand so that every expected figure can be
worked out in the comment next to it. Nothing is mocked.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from kubepulse.analysis.inputs import (
    ClusterSnapshot,
    ContainerRef,
    QuotaRef,
    TimeSeries,
    UsageHistory,
)
from kubepulse.analysis.quota import (
    AlertReason,
    AlertSeverity,
    ConsumerBasis,
    ForecastStatus,
    QuotaReport,
    QuotaResourceAnalysis,
    QuotaStatus,
    TrendDirection,
    analyze_quotas,
    namespace_report,
)
from kubepulse.analysis.serialize import to_json
from kubepulse.errors import KubepulseValueError
from kubepulse.model import Namespace, Pod, ResourceQuota

OBJECTS = Path(__file__).parents[2] / "fixtures" / "objects"
DAY_MS = 86_400_000
# Day 0 of every hand-made history; the snapshot is taken on day 3 unless said otherwise.
T0 = 1_790_000_000_000
MI = 2**20
GI = 2**30


def recorded(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((OBJECTS / name).read_text())
    return data


def quota_object(
    *,
    hard: Mapping[str, str] | None = None,
    used: Mapping[str, str] | None = None,
    name: str = "compute",
    namespace: str = "shop",
) -> ResourceQuota:
    """The recorded ``shop/compute`` quota, with ``status.hard``/``status.used`` replaced."""
    raw = recorded("resourcequota.json")
    raw["metadata"]["name"] = name
    raw["metadata"]["namespace"] = namespace
    if hard is not None:
        raw["spec"]["hard"] = dict(hard)
        raw["status"]["hard"] = dict(hard)
    if used is not None:
        raw["status"]["used"] = dict(used)
    return ResourceQuota.from_api(raw)


def snapshot_of(
    *quotas: ResourceQuota,
    pods: Sequence[Pod] = (),
    namespaces: Sequence[Namespace] = (),
    taken_at_ms: int = T0 + 3 * DAY_MS,
) -> ClusterSnapshot:
    return ClusterSnapshot(
        taken_at_ms=taken_at_ms, pods=tuple(pods), namespaces=tuple(namespaces), quotas=quotas
    )


def daily(*values: float, start_day: int = 0) -> TimeSeries:
    """One sample a day from ``start_day`` on."""
    return TimeSeries.of(
        (T0 + (start_day + day) * DAY_MS, value) for day, value in enumerate(values)
    )


def history_of(
    quota_used: Mapping[QuotaRef, TimeSeries] | None = None,
    *,
    cpu: Mapping[ContainerRef, TimeSeries] | None = None,
    memory: Mapping[ContainerRef, TimeSeries] | None = None,
    end_ms: int = T0 + 3 * DAY_MS,
) -> UsageHistory:
    return UsageHistory(
        start_ms=T0,
        end_ms=end_ms,
        cpu_cores=cpu or {},
        memory_working_set_bytes=memory or {},
        quota_used=quota_used or {},
    )


CPU_REF = QuotaRef("shop", "compute", "requests.cpu")


def resource(report: QuotaReport, ref: QuotaRef) -> QuotaResourceAnalysis:
    return next(item for item in report.resources if item.ref == ref)


# ------------------------------------------------------------------------ status now


@pytest.mark.parametrize(
    ("hard", "used", "expected_status", "expected_percent"),
    [
        # 3750m of 10 cores = 37.5 %: below the 80 % warning threshold.
        ("10", "3750m", QuotaStatus.OK, 37.5),
        # 8 of 10 = 80 %: the warning threshold is inclusive.
        ("10", "8", QuotaStatus.WARNING, 80.0),
        # 9.5 of 10 = 95 %: the critical threshold is inclusive.
        ("10", "9500m", QuotaStatus.CRITICAL, 95.0),
        # 10 of 10: admission refuses anything more.
        ("10", "10", QuotaStatus.EXHAUSTED, 100.0),
        # 12 of 10 (hard lowered below use): still exhausted, 120 %.
        ("10", "12", QuotaStatus.EXHAUSTED, 120.0),
        # hard 0 forbids the resource on purpose: no percentage.
        ("0", "0", QuotaStatus.DISALLOWED, None),
        # the controller has not counted it: unknown, not zero.
        ("10", None, QuotaStatus.UNCOUNTED, None),
    ],
)
def test_status_and_utilisation_from_the_snapshot(
    hard: str, used: str | None, expected_status: QuotaStatus, expected_percent: float | None
) -> None:
    quota = quota_object(
        hard={"requests.cpu": hard}, used={} if used is None else {"requests.cpu": used}
    )
    report = analyze_quotas(snapshot_of(quota), history_of())
    (item,) = report.resources
    assert item.ref == CPU_REF
    assert item.hard == Decimal(hard)
    assert item.status is expected_status
    if expected_percent is None:
        assert item.utilisation_percent is None
    else:
        assert item.utilisation_percent == pytest.approx(expected_percent)
    assert item.remaining == (None if used is None else Decimal(hard) - item.used)  # type: ignore[operator]


def test_the_recorded_quota_yields_one_entry_per_resource_in_base_units() -> None:
    report = analyze_quotas(snapshot_of(quota_object()), history_of())
    by_resource = {item.ref.resource: item for item in report.resources}
    assert list(by_resource) == sorted(
        [
            "count/deployments.apps",
            "limits.cpu",
            "limits.memory",
            "pods",
            "requests.cpu",
            "requests.memory",
        ]
    )
    # requests.memory: 3232Mi of 20Gi = 3232 / 20480 = 15.78125 %
    memory = by_resource["requests.memory"]
    assert memory.used == 3232 * MI
    assert memory.hard == 20 * GI
    assert memory.utilisation_percent == pytest.approx(15.78125)
    # limits.cpu: 3200m of 20 = 16 %
    assert by_resource["limits.cpu"].utilisation_percent == pytest.approx(16.0)
    # No history at all: every resource is listed as missing, never as idle.
    assert set(report.missing_history) == {item.ref for item in report.resources}
    assert all(item.forecast.status is ForecastStatus.NO_HISTORY for item in report.resources)


# ------------------------------------------------------------------------ trend and forecast


def test_trend_and_forecast_match_the_hand_computed_line_and_band() -> None:
    """requests.cpu used 2, 4, 5, 7 cores on days 0-3, hard 10, snapshot on day 3.

    In days: x = 0,1,2,3, mean x = 1.5, Sxx = 2.25+0.25+0.25+2.25 = 5;
    mean y = 4.5, Sxy = 3.75+0.25+0.25+3.75 = 8, slope = 8/5 = 1.6 cores/day.
    Fitted 2.1, 3.7, 5.3, 6.9; residuals -0.1, 0.3, -0.3, 0.1; SSE = 0.2; s² = 0.2/2 = 0.1.
    t(0.975, 2) = 4.302653; slope interval 1.6 ± 4.302653·0.316228/√5 = 1.6 ± 0.608487.
    Point: 4.5 + 1.6 z = 10 at z = 3.4375 days past the mean = day 4.9375 = 1.9375 days
    after day 3.
    Band: (5.5 - 1.6 z)² = (t s)² (1 + 1/4 + z²/5), (t s)² = 1.851282:
    2.189744 z² - 17.6 z + 27.935897 = 0, z = (17.6 ∓ √65.070191) / 4.379487
    = 2.176828 (upper edge: 5.5 - 1.6·2.18 > 0) and 5.860643 (lower edge);
    from day 3: 2.176828 + 1.5 - 3 = 0.676828 and 5.860643 - 1.5 = 4.360643 days.
    """
    quota = quota_object(hard={"requests.cpu": "10"}, used={"requests.cpu": "7"})
    report = analyze_quotas(snapshot_of(quota), history_of({CPU_REF: daily(2, 4, 5, 7)}))
    item = resource(report, CPU_REF)

    trend = item.trend
    assert trend is not None
    assert (trend.sample_count, trend.first_value, trend.last_value) == (4, 2.0, 7.0)
    assert (trend.min_value, trend.max_value) == (2.0, 7.0)
    assert (trend.first_ms, trend.last_ms) == (T0, T0 + 3 * DAY_MS)
    assert trend.slope_per_day == pytest.approx(1.6)
    assert trend.slope_lower_per_day == pytest.approx(1.6 - 0.608487, abs=1e-6)
    assert trend.slope_upper_per_day == pytest.approx(1.6 + 0.608487, abs=1e-6)
    assert trend.direction is TrendDirection.RISING

    forecast = item.forecast
    assert forecast.status is ForecastStatus.PROJECTED
    assert forecast.as_of_ms == T0 + 3 * DAY_MS
    assert forecast.sample_count == 4
    assert forecast.residual_stddev == pytest.approx(math.sqrt(0.1))
    assert forecast.days_until == pytest.approx(1.9375)
    assert forecast.exhaustion_ms == T0 + round(4.9375 * DAY_MS)
    assert forecast.earliest_days == pytest.approx(0.676828, abs=1e-6)
    assert forecast.latest_days == pytest.approx(4.360643, abs=1e-6)
    assert forecast.confidence == 0.95

    # 70 % now, but the forecast reaches hard in 1.94 days (< 7): a forecast alert. It is
    # critical because even the optimistic end (4.36 days) falls within the 7 days.
    (alert,) = report.alerts
    assert alert.reasons == (AlertReason.FORECAST,)
    assert alert.severity is AlertSeverity.CRITICAL
    assert alert.days_until == pytest.approx(1.9375)
    assert "1.9 days" in alert.message
    assert "shop" in alert.message


def test_a_narrower_confidence_narrows_the_interval_around_the_same_point() -> None:
    quota = quota_object(hard={"requests.cpu": "10"}, used={"requests.cpu": "7"})
    history = history_of({CPU_REF: daily(2, 4, 5, 7)})
    wide = resource(analyze_quotas(snapshot_of(quota), history), CPU_REF).forecast
    narrow = resource(analyze_quotas(snapshot_of(quota), history, confidence=0.5), CPU_REF).forecast
    assert narrow.days_until == pytest.approx(wide.days_until)
    assert wide.earliest_days is not None
    assert narrow.earliest_days is not None
    assert wide.latest_days is not None
    assert narrow.latest_days is not None
    assert (
        wide.earliest_days < narrow.earliest_days < 1.9375 < narrow.latest_days < wide.latest_days
    )


def test_a_perfect_line_has_a_zero_width_interval() -> None:
    # 1, 2, 3, 4 on days 0-3: slope 1/day, no residuals; hard 10 is reached at day 9,
    # 6 days after day 3, and the interval collapses onto it.
    quota = quota_object(hard={"requests.cpu": "10"}, used={"requests.cpu": "4"})
    item = resource(
        analyze_quotas(snapshot_of(quota), history_of({CPU_REF: daily(1, 2, 3, 4)})), CPU_REF
    )
    forecast = item.forecast
    assert forecast.residual_stddev == 0.0
    assert forecast.days_until == pytest.approx(6.0)
    assert forecast.earliest_days == pytest.approx(6.0)
    assert forecast.latest_days == pytest.approx(6.0)
    assert item.trend is not None
    assert item.trend.direction is TrendDirection.RISING


@pytest.mark.parametrize(
    ("hard", "used", "series", "expected_status", "expected_direction"),
    [
        # Falling 8, 6, 5, 3: slope -1.6/day, interval -1.6 ± 0.61 < 0. The line never
        # reaches 10, so no point estimate.
        ("10", "3", daily(8, 6, 5, 3), ForecastStatus.NOT_RISING, TrendDirection.FALLING),
        # Flat-ish 5, 5.1, 4.9, 5: slope -0.01/day, its interval contains 0.
        ("10", "5", daily(5, 5.1, 4.9, 5), ForecastStatus.NOT_RISING, TrendDirection.FLAT),
        # Two samples are fewer than min_samples=3: a trend without a slope, no forecast.
        (
            "10",
            "5",
            daily(4, 5, start_day=2),
            ForecastStatus.INSUFFICIENT_DATA,
            TrendDirection.UNKNOWN,
        ),
        # Used has reached hard: zero days, whatever the history says.
        ("10", "10", daily(8, 9, 9.5, 10), ForecastStatus.EXHAUSTED, TrendDirection.RISING),
        # hard 0: the resource is forbidden; nothing to run out of.
        ("0", "0", daily(0, 0, 0, 0), ForecastStatus.NOT_APPLICABLE, TrendDirection.FLAT),
    ],
)
def test_forecast_status_table(
    hard: str,
    used: str,
    series: TimeSeries,
    expected_status: ForecastStatus,
    expected_direction: TrendDirection,
) -> None:
    quota = quota_object(hard={"requests.cpu": hard}, used={"requests.cpu": used})
    item = resource(analyze_quotas(snapshot_of(quota), history_of({CPU_REF: series})), CPU_REF)
    assert item.forecast.status is expected_status
    assert item.trend is not None
    assert item.trend.direction is expected_direction
    if expected_status is ForecastStatus.EXHAUSTED:
        assert (item.forecast.days_until, item.forecast.earliest_days) == (0.0, 0.0)
    if expected_status is ForecastStatus.NOT_RISING:
        assert item.forecast.days_until is None
        assert item.forecast.exhaustion_ms is None
    if expected_status is ForecastStatus.INSUFFICIENT_DATA:
        assert item.trend.slope_per_day is None
        assert item.forecast.sample_count == 2


def test_history_keyed_by_the_other_spelling_of_a_resource_is_found() -> None:
    # The quota says `cpu`; the history was recorded as `requests.cpu` (the same entry).
    quota = quota_object(hard={"cpu": "10"}, used={"cpu": "7"})
    report = analyze_quotas(snapshot_of(quota), history_of({CPU_REF: daily(2, 4, 5, 7)}))
    (item,) = report.resources
    assert item.ref == QuotaRef("shop", "compute", "cpu")
    assert item.forecast.days_until == pytest.approx(1.9375)
    assert report.missing_history == ()


def test_the_window_keeps_only_the_newest_samples() -> None:
    # Days 0-3: 9, 4, 5, 6. Over the whole history the line falls: mean x 1.5, mean y 6,
    # Sxy = -1.5·3 - 0.5·(-2) + 0.5·(-1) + 1.5·0 = -4, slope = -4/5 = -0.8/day.
    # A 2-day window keeps days 1-3 (4, 5, 6): slope exactly 1/day, reaching 10 on
    # day 7, 4 days after day 3.
    quota = quota_object(hard={"requests.cpu": "10"}, used={"requests.cpu": "6"})
    history = history_of({CPU_REF: daily(9, 4, 5, 6)})
    whole = resource(analyze_quotas(snapshot_of(quota), history), CPU_REF)
    assert whole.trend is not None
    assert whole.trend.sample_count == 4
    assert whole.trend.slope_per_day == pytest.approx(-0.8)
    assert whole.forecast.status is ForecastStatus.NOT_RISING
    windowed = resource(analyze_quotas(snapshot_of(quota), history, window="2d"), CPU_REF)
    assert windowed.trend is not None
    assert windowed.trend.sample_count == 3
    assert windowed.trend.slope_per_day == pytest.approx(1.0)
    assert windowed.forecast.days_until == pytest.approx(4.0)
    report = analyze_quotas(snapshot_of(quota), history, window="2d")
    assert report.settings.window_ms == 2 * DAY_MS


# ------------------------------------------------------------------------ alerts


@pytest.mark.parametrize(
    ("used", "warning", "critical", "expected"),
    [
        # 8.5 of 10 = 85 %: at/above 80, below 95 → warning.
        ("8500m", 80.0, 95.0, (AlertSeverity.WARNING, (AlertReason.NEAR_LIMIT,))),
        # The same 85 % with thresholds 50/85 → critical (inclusive).
        ("8500m", 50.0, 85.0, (AlertSeverity.CRITICAL, (AlertReason.NEAR_LIMIT,))),
        # 85 % with thresholds 90/99 → no alert.
        ("8500m", 90.0, 99.0, None),
        # 10 of 10 → exhausted, always critical.
        ("10", 80.0, 95.0, (AlertSeverity.CRITICAL, (AlertReason.EXHAUSTED,))),
    ],
)
def test_threshold_alerts_are_configurable(
    used: str,
    warning: float,
    critical: float,
    expected: tuple[AlertSeverity, tuple[AlertReason, ...]] | None,
) -> None:
    quota = quota_object(hard={"requests.cpu": "10"}, used={"requests.cpu": used})
    report = analyze_quotas(
        snapshot_of(quota), history_of(), warning_percent=warning, critical_percent=critical
    )
    if expected is None:
        assert report.alerts == ()
    else:
        (alert,) = report.alerts
        assert (alert.severity, alert.reasons) == expected
        assert alert.ref == CPU_REF
        assert "raise the quota" in alert.message


def test_forecast_alerts_follow_forecast_alert_days() -> None:
    quota = quota_object(hard={"requests.cpu": "10"}, used={"requests.cpu": "7"})
    history = history_of({CPU_REF: daily(2, 4, 5, 7)})
    # 1.9375 days to go: no alert with a 1-day horizon, none when turned off with 0.
    assert analyze_quotas(snapshot_of(quota), history, forecast_alert_days=1).alerts == ()
    assert analyze_quotas(snapshot_of(quota), history, forecast_alert_days=0).alerts == ()
    # With a 3-day horizon the point (1.94) is inside but the optimistic end (4.36) is
    # not: a warning, not critical.
    (alert,) = analyze_quotas(snapshot_of(quota), history, forecast_alert_days=3).alerts
    assert (alert.severity, alert.reasons) == (AlertSeverity.WARNING, (AlertReason.FORECAST,))


def test_alerts_are_ordered_most_urgent_first() -> None:
    quotas = (
        quota_object(name="a", hard={"pods": "10"}, used={"pods": "8"}),  # 80 %, warning
        quota_object(name="b", hard={"pods": "10"}, used={"pods": "10"}),  # exhausted
        quota_object(name="c", hard={"pods": "10"}, used={"pods": "9"}),  # 90 %, warning
        quota_object(name="d", hard={"pods": "10"}, used={"pods": "1"}),  # 10 %, none
    )
    report = analyze_quotas(snapshot_of(*quotas), history_of())
    assert [alert.ref.quota for alert in report.alerts] == ["b", "c", "a"]


# ------------------------------------------------------------------------ unused allocations


def test_unused_allocations_use_the_peak_of_snapshot_and_history() -> None:
    quotas = (
        # pods: 2 of 50 now, no history → 4 % ≤ 10 %: unused, 48 reclaimable.
        quota_object(name="idle", hard={"pods": "50"}, used={"pods": "2"}),
        # requests.cpu: 0.5 of 10 now but peaked at 3 (30 %) in history → not unused.
        quota_object(name="spiky", hard={"requests.cpu": "10"}, used={"requests.cpu": "500m"}),
        # requests.cpu: 0 now, peak 0.5 in history → 5 %: unused, from history.
        quota_object(name="quiet", hard={"requests.cpu": "10"}, used={"requests.cpu": "0"}),
        # never counted and no history → unknown, not unused.
        quota_object(name="unknown", hard={"pods": "50"}, used={}),
    )
    history = history_of(
        {
            QuotaRef("shop", "spiky", "requests.cpu"): daily(0.5, 3, 0.5),
            QuotaRef("shop", "quiet", "requests.cpu"): daily(0, 0.5, 0),
        }
    )
    report = analyze_quotas(snapshot_of(*quotas), history)
    # Smallest peak share first: idle (4 %), then quiet (5 %).
    assert [entry.ref.quota for entry in report.unused] == ["idle", "quiet"]
    idle, quiet = report.unused
    assert (idle.peak_used, idle.peak_percent, idle.reclaimable) == (2.0, 4.0, 48.0)
    assert idle.from_history is False
    assert (quiet.peak_used, quiet.peak_percent, quiet.reclaimable) == (0.5, 5.0, 9.5)
    assert quiet.from_history is True
    assert report.uncounted == (QuotaRef("shop", "unknown", "pods"),)
    # With unused_percent=4 only the idle one (4 %, inclusive) is left.
    tight = analyze_quotas(snapshot_of(*quotas), history, unused_percent=4)
    assert [entry.ref.quota for entry in tight.unused] == ["idle"]


# ------------------------------------------------------------------------ scope and namespaces


def test_one_namespace_or_the_whole_cluster() -> None:
    shop = quota_object(hard={"pods": "10"}, used={"pods": "1"})
    ops = quota_object(namespace="ops", hard={"pods": "10"}, used={"pods": "1"})
    namespaces = tuple(
        Namespace.from_api({"metadata": {"name": name}, "status": {"phase": "Active"}})
        for name in ("shop", "ops", "empty")
    )
    snapshot = snapshot_of(shop, ops, namespaces=namespaces)
    cluster = analyze_quotas(snapshot, history_of())
    assert [item.ref.namespace for item in cluster.resources] == ["ops", "shop"]
    assert cluster.namespaces_without_quota == ("empty",)
    assert cluster.namespace is None
    only_shop = analyze_quotas(snapshot, history_of(), namespace="shop")
    assert [item.ref.namespace for item in only_shop.resources] == ["shop"]
    assert only_shop.namespace == "shop"
    assert only_shop.namespaces_without_quota == ()
    # A known namespace without quota: an empty report, not an error.
    assert analyze_quotas(snapshot, history_of(), namespace="empty").resources == ()


def test_an_unknown_namespace_names_close_matches_and_known_ones() -> None:
    snapshot = snapshot_of(
        quota_object(), namespaces=[Namespace.from_api(recorded("namespace.json"))]
    )
    with pytest.raises(
        KubepulseValueError,
        match=r"^namespace 'shpo' not found \(did you mean 'shop'\?\); known namespaces: shop$",
    ) as raised:
        analyze_quotas(snapshot, history_of(), namespace="shpo")
    assert "known namespaces: shop" in str(raised.value)
    with pytest.raises(KubepulseValueError, match="known namespaces: shop"):
        namespace_report(snapshot, history_of(), "payments")


def test_a_long_namespace_list_is_cut_short() -> None:
    namespaces = [
        Namespace.from_api({"metadata": {"name": f"team-{index:02d}"}}) for index in range(25)
    ]
    with pytest.raises(KubepulseValueError) as raised:
        namespace_report(snapshot_of(namespaces=namespaces), history_of(), "nope")
    message = str(raised.value)
    assert message.startswith("namespace 'nope' not found; known namespaces: team-00, ")
    # 10 listed, the other 15 counted.
    assert "team-00, team-01" in message
    assert "team-09 and 15 more" in message
    assert "team-10" not in message


def test_an_empty_snapshot_says_collection_may_have_failed() -> None:
    with pytest.raises(KubepulseValueError, match="no namespaces, pods or quotas"):
        namespace_report(snapshot_of(), history_of(), "shop")


# ------------------------------------------------------------------------ validation


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"warning_percent": 150}, "warning_percent must be between 1 and 100, got 150"),
        ({"warning_percent": 0.5}, "warning_percent must be between 1 and 100"),
        ({"critical_percent": math.nan}, "critical_percent must be a number between 1 and 100"),
        (
            {"warning_percent": 90, "critical_percent": 85},
            r"critical_percent \(85\) must be at least",
        ),
        ({"unused_percent": -1}, "unused_percent must be between 0 and 100, got -1"),
        ({"forecast_alert_days": -1}, "forecast_alert_days must be a finite number of days"),
        ({"confidence": 1.0}, "confidence must be strictly between 0 and 1"),
        ({"confidence": "high"}, "confidence must be a number such as 0.95"),
        ({"min_samples": 2}, "min_samples must be at least 3"),
        ({"min_samples": 3.5}, "min_samples must be an integer"),
        ({"window": "fortnight"}, "fortnight"),
        ({"window": "0s"}, "window must be longer than zero"),
        ({"namespace": ""}, "namespace must be a non-empty string"),
    ],
)
def test_bad_parameters_say_what_is_valid(arguments: dict[str, Any], message: str) -> None:
    with pytest.raises(KubepulseValueError, match=message):
        analyze_quotas(snapshot_of(quota_object()), history_of(), **arguments)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"top": -1}, "top must be a whole number of pods, 0 or more"),
        ({"top": True}, "top must be a whole number"),
        ({"quota_window": "soon"}, "soon"),
    ],
)
def test_bad_report_parameters_say_what_is_valid(arguments: dict[str, Any], message: str) -> None:
    with pytest.raises(KubepulseValueError, match=message):
        namespace_report(snapshot_of(quota_object()), history_of(), "shop", **arguments)


# ------------------------------------------------------------------------ namespace report


STOREFRONT = "storefront-5f7b8c9d4-q7lmn"
CART = "cart-6c8d9f7b5-h4k2z"


def shop_pods() -> tuple[Pod, ...]:
    """The recorded shop pods, plus a finished copy of the cart pod."""
    finished = copy.deepcopy(recorded("pod-oomkilled.json"))
    finished["metadata"]["name"] = "cart-old"
    finished["status"]["phase"] = "Succeeded"
    return (
        Pod.from_api(recorded("pod-burstable-sidecars.json")),
        Pod.from_api(recorded("pod-oomkilled.json")),
        Pod.from_api(finished),
        # Another namespace's pod: must not leak into the shop report.
        Pod.from_api(recorded("pod-guaranteed.json")),
    )


def shop_history() -> UsageHistory:
    def ref(pod: str, container: str) -> ContainerRef:
        return ContainerRef("shop", pod, container)

    end = T0 + 3 * DAY_MS
    cpu = {
        # storefront: app 0.4 → 0.6 (mean 0.5), metrics 0.02, log-shipper 0.05;
        # mesh-proxy has no CPU series → unmeasured.
        ref(STOREFRONT, "app"): TimeSeries.of([(end - 60_000, 0.4), (end, 0.6)]),
        ref(STOREFRONT, "metrics"): TimeSeries.of([(end, 0.02)]),
        ref(STOREFRONT, "log-shipper"): TimeSeries.of([(end, 0.05)]),
        # cart: 0.3 → 0.1 (mean 0.2).
        ref(CART, "cart"): TimeSeries.of([(end - 60_000, 0.3), (end, 0.1)]),
        # The finished pod's old series is ignored: it is not Running.
        ref("cart-old", "cart"): TimeSeries.of([(end - DAY_MS, 9.0)]),
        # Another namespace's series.
        ContainerRef("payments", "ledger-0", "ledger"): TimeSeries.of([(end, 1.5)]),
    }
    memory = {
        ref(STOREFRONT, "app"): TimeSeries.of([(end, 400.0 * MI)]),
        ref(STOREFRONT, "metrics"): TimeSeries.of([(end, 20.0 * MI)]),
        ref(STOREFRONT, "log-shipper"): TimeSeries.of([(end, 30.0 * MI)]),
        ref(STOREFRONT, "mesh-proxy"): TimeSeries.of([(end, 50.0 * MI)]),
        ref(CART, "cart"): TimeSeries.of([(end - 60_000, 100.0 * MI), (end, 200.0 * MI)]),
    }
    return history_of(
        {QuotaRef("shop", "compute", "requests.cpu"): daily(1, 2, 3, 4)}, cpu=cpu, memory=memory
    )


def shop_snapshot() -> ClusterSnapshot:
    return snapshot_of(
        quota_object(),
        pods=shop_pods(),
        namespaces=[Namespace.from_api(recorded("namespace.json"))],
    )


def test_namespace_report_totals_match_the_hand_sums() -> None:
    report = namespace_report(shop_snapshot(), shop_history(), "shop")
    assert (report.namespace, report.phase, report.taken_at_ms) == (
        "shop",
        "Active",
        T0 + 3 * DAY_MS,
    )
    assert (report.pod_count, report.active_pod_count) == (3, 2)
    assert dict(report.pods_by_phase) == {"Running": 2, "Succeeded": 1}
    assert dict(report.pods_by_qos) == {"Burstable": 2}

    cpu, memory = report.resources[:2]
    assert (cpu.resource, memory.resource) == ("cpu", "memory")
    # Requests. storefront: steady state app 500m + metrics 50m + sidecars 100m + 250m
    # = 900m; during start-up `migrate` needs 1 + log-shipper 100m = 1100m → 1.1 cores.
    # cart 200m. Total 1.3 cores (the Succeeded copy holds nothing).
    assert cpu.requests == Decimal("1.3")
    # Memory: storefront 512 + 32 + 64 + 128 = 736Mi (start-up 256 + 64 = 320Mi is less);
    # cart 128Mi. Total 864Mi.
    assert memory.requests == 864 * MI
    # CPU limits: storefront app 1 + log-shipper 200m = 1.2 steady, but migrate 2 +
    # log-shipper 200m = 2.2 at start-up → 2.2; cart has none. Total 2.2.
    assert cpu.limits == Decimal("2.2")
    # Memory limits: storefront 1024 + 64 + 128 + 256 = 1472Mi; cart 256Mi → 1728Mi.
    assert memory.limits == 1728 * MI
    # metrics and mesh-proxy lack a CPU limit; cart lacks one too: both pods.
    assert (cpu.pods_without_limit, memory.pods_without_limit) == (2, 0)
    assert (cpu.pods_without_request, memory.pods_without_request) == (0, 0)

    # CPU usage, latest: storefront 0.6 + 0.02 + 0.05 = 0.67, cart 0.1 → 0.77.
    # Mean: storefront 0.5 + 0.02 + 0.05 = 0.57, cart 0.2 → 0.77.
    assert cpu.usage == pytest.approx(0.77)
    assert cpu.usage_average == pytest.approx(0.77)
    # Storefront runs 4 containers (2 sidecars + 2 app), cart 1: 5, 1 without CPU series.
    assert (cpu.measured_containers, cpu.unmeasured_containers) == (4, 1)
    # Usage to requests counts fully measured pods only: cart, 0.1 / 0.2 = 0.5.
    assert cpu.usage_to_requests == pytest.approx(0.5)
    # Memory latest: 400 + 20 + 30 + 50 + 200 = 700Mi; mean: 500 + 150 = 650Mi.
    assert memory.usage == pytest.approx(700 * MI)
    assert memory.usage_average == pytest.approx(650 * MI)
    assert (memory.measured_containers, memory.unmeasured_containers) == (5, 0)
    # Every pod fully measured: 700Mi / 864Mi.
    assert memory.usage_to_requests == pytest.approx(700 / 864)

    assert report.missing_data[0] == "1 of 5 running containers have no CPU usage series"
    # The quota's other five resources have no history.
    assert "5 quota resources have no usage history" in report.missing_data[1]
    assert report.quota is not None
    assert report.quota.namespace == "shop"
    assert len(report.quota.resources) == 6


def test_namespace_report_pod_rows() -> None:
    report = namespace_report(shop_snapshot(), shop_history(), "shop")
    assert report.pods is not None
    assert [row.name for row in report.pods] == ["cart-6c8d9f7b5-h4k2z", "cart-old", STOREFRONT]
    cart, old, storefront = report.pods
    assert (cart.cpu_cores, cart.cpu_cores_average) == pytest.approx((0.1, 0.2))
    assert cart.memory_working_set_bytes == 200 * MI
    assert cart.restarts == 4
    assert cart.containers_missing_limits == ("cart",)
    assert cart.qos_class == "Burstable"
    assert cart.node == "worker-2"
    # The finished pod has no usage: it is not running, its old series is not counted.
    assert (old.phase, old.cpu_cores, old.unmeasured_containers) == ("Succeeded", None, ())
    assert storefront.unmeasured_containers == ("mesh-proxy",)
    assert storefront.cpu_cores == pytest.approx(0.67)
    assert storefront.requests.cpu_cores == Decimal("1.1")
    assert storefront.containers_missing_limits == ("mesh-proxy", "metrics")


def test_top_consumers_by_usage_and_by_requests() -> None:
    report = namespace_report(shop_snapshot(), shop_history(), "shop", top=1)
    ranked = {(entry.resource, entry.basis): entry for entry in report.top_consumers}
    assert len(report.top_consumers) == 4
    cpu_usage = ranked[("cpu", ConsumerBasis.USAGE)]
    # storefront 0.67 of 0.77.
    assert (cpu_usage.pod, cpu_usage.rank) == (STOREFRONT, 1)
    assert cpu_usage.share == pytest.approx(0.67 / 0.77)
    cpu_requests = ranked[("cpu", ConsumerBasis.REQUESTS)]
    # storefront 1.1 of 1.3.
    assert cpu_requests.pod == STOREFRONT
    assert cpu_requests.amount == pytest.approx(1.1)
    assert cpu_requests.share == pytest.approx(1.1 / 1.3)
    memory_usage = ranked[("memory", ConsumerBasis.USAGE)]
    # storefront 500Mi of 700Mi.
    assert memory_usage.amount == pytest.approx(500 * MI)
    assert namespace_report(shop_snapshot(), shop_history(), "shop", top=0).top_consumers == ()


def test_report_sections_can_be_left_out() -> None:
    report = namespace_report(
        shop_snapshot(), shop_history(), "shop", include_pods=False, include_quota=False
    )
    assert report.pods is None
    assert report.quota is None
    assert report.missing_data == ("1 of 5 running containers have no CPU usage series",)
    # The totals do not depend on the pod rows.
    assert report.resources[0].usage == pytest.approx(0.77)


def test_a_namespace_known_only_by_its_quota_has_no_phase_and_no_pods() -> None:
    report = namespace_report(snapshot_of(quota_object()), history_of(), "shop")
    assert report.phase is None
    assert (report.pod_count, report.active_pod_count) == (0, 0)
    cpu = report.resources[0]
    assert (cpu.requests, cpu.usage, cpu.usage_to_requests) == (Decimal(0), None, None)
    assert report.top_consumers == ()


def test_the_quota_window_reaches_the_quota_section() -> None:
    report = namespace_report(shop_snapshot(), shop_history(), "shop", quota_window="1d")
    assert report.quota is not None
    # A 1-day window keeps days 2 and 3 of the history: 2 samples, too few for a fit.
    item = resource(report.quota, CPU_REF)
    assert item.forecast.status is ForecastStatus.INSUFFICIENT_DATA


def test_reports_serialise_to_json() -> None:
    report = namespace_report(shop_snapshot(), shop_history(), "shop")
    data = json.loads(json.dumps(to_json(report, camel_case=True)))
    assert data["namespace"] == "shop"
    assert data["resources"][0]["requests"] == pytest.approx(1.3)
    assert data["topConsumers"][0]["basis"] == "usage"
    assert data["quota"]["resources"][0]["ref"] == {
        "namespace": "shop",
        "quota": "compute",
        "resource": "count/deployments.apps",
    }
    quota_data = json.loads(json.dumps(to_json(analyze_quotas(shop_snapshot(), shop_history()))))
    assert quota_data["settings"]["warning_percent"] == 80.0
    assert quota_data["missing_history"][0]["resource"] == "count/deployments.apps"


def test_pods_without_requests_or_limits_and_without_any_usage() -> None:
    """The recorded ``default`` pods: a BestEffort shell and an nginx without a CPU limit."""
    pods = (
        Pod.from_api(recorded("pod-besteffort.json")),
        Pod.from_api(recorded("pod-replicaset.json")),
    )
    report = namespace_report(snapshot_of(pods=pods), history_of(), "default")
    assert dict(report.pods_by_qos) == {"BestEffort": 1, "Burstable": 1}
    cpu, memory = report.resources
    # Only nginx requests anything: 100m CPU, 128Mi memory; only its memory is limited.
    assert (cpu.requests, memory.requests) == (Decimal("0.1"), Decimal(128 * MI))
    assert (cpu.limits, memory.limits) == (Decimal(0), Decimal(128 * MI))
    # The shell lacks both requests; both pods lack a CPU limit, the shell a memory one.
    assert (cpu.pods_without_request, memory.pods_without_request) == (1, 1)
    assert (cpu.pods_without_limit, memory.pods_without_limit) == (2, 1)
    # No history at all: 2 running containers unmeasured, usage unknown rather than 0.
    assert (cpu.usage, cpu.measured_containers, cpu.unmeasured_containers) == (None, 0, 2)
    assert memory.usage is None
    assert report.missing_data == (
        "2 of 2 running containers have no CPU usage series",
        "2 of 2 running containers have no memory usage series",
    )
    assert report.pods is not None
    shell, nginx = report.pods
    # Missing CPU and memory: the container is named once.
    assert shell.containers_missing_requests == ("debug-shell",)
    assert shell.containers_missing_limits == ("debug-shell",)
    assert (nginx.containers_missing_requests, nginx.containers_missing_limits) == ((), ("nginx",))
    assert (shell.cpu_cores, shell.unmeasured_containers) == (None, ("debug-shell",))
    # Nobody was measured; the request ranking has nginx alone.
    assert [(entry.resource, entry.basis.value, entry.pod) for entry in report.top_consumers] == [
        ("cpu", "requests", nginx.name),
        ("memory", "requests", nginx.name),
    ]
