"""Usage history from Prometheus (or Thanos, Mimir, VictoriaMetrics), by PromQL range queries.

:class:`PrometheusHistory` builds a :class:`~kubepulse.analysis.inputs.UsageHistory`
from the exporter's metrics (and kube-state-metrics' ``kube_resourcequota`` when it is
scraped), as :data:`kubepulse.analysis.measures.MEASURES` says. Each row becomes one
``/api/v1/query_range`` over the history's grid (two for a ratio); see
:func:`row_queries` for the exact PromQL, which is pure and tested apart from the HTTP.

- **Selection by namespace, never by pod names.** The few namespaces asked for become
  one ``namespace=~"a|b"`` matcher (``namespace="a"`` for one), the nodes one ``node``
  matcher; a Deployment's thousand pods never turn into a regular expression.
- **Grouping server-side.** ``sum by (namespace, pod, container)`` (``max by`` for quota,
  which two kube-state-metrics replicas may both publish) returns one series per key; a
  ratio's numerator and denominator are divided here
  (:func:`~kubepulse.analysis.measures.ratio_points`), and OOM kill instants are found
  per series here (:func:`~kubepulse.analysis.measures.increment_instants`), from the
  counter read at each grid point, for series that changed within the history only
  (``changes(...[range] @ end()) > 0``: the answer stays small at 50,000 containers).
- **Transport.** ``GET``, or a form-encoded ``POST`` when the parameters are longer than
  :data:`POST_THRESHOLD_BYTES`. Errors raise :class:`PrometheusHistoryError` saying what
  to do: unreachable (check ``--prometheus-url``), too slow (raise ``--timeout`` or ask
  for fewer points), not Prometheus (give the base URL, without ``/api/v1``), refused.

A figure whose metric Prometheus does not have (no exporter, no kube-state-metrics) is
simply absent from the history; analyzers report it as not measured.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final
from urllib.parse import urlencode

import httpx

from kubepulse.analysis.inputs import UsageHistory
from kubepulse.analysis.measures import (
    INSTANT_LOOKBACK_MS,
    MEASURES,
    HistoryAssembler,
    Measure,
    Selection,
    Transform,
    choose_step,
    evaluation_grid,
    increment_instants,
    key_of,
    lookback_for,
)
from kubepulse.duration import format_duration
from kubepulse.errors import KubepulseError, KubepulseValueError
from kubepulse.promql import (
    AnswerKind,
    PrometheusAnswerError,
    answer_data,
    escape_regex,
    escape_string,
)

__all__ = [
    "DEFAULT_RESOLUTION_MS",
    "POST_THRESHOLD_BYTES",
    "PrometheusHistory",
    "PrometheusHistoryError",
    "RowQuery",
    "escape_regex",
    "escape_string",
    "row_queries",
]

logger = logging.getLogger(__name__)

POST_THRESHOLD_BYTES: Final = 2_000
"""Encoded parameters longer than this go in a form-encoded POST body, not the URL."""
DEFAULT_RESOLUTION_MS: Final = 15_000
"""The scrape interval assumed when none is given: Prometheus' usual 15 s."""


_ADVICE: Final = {
    AnswerKind.NOT_API: "check --prometheus-url: it is Prometheus' base URL, without /api/v1",
    AnswerKind.REFUSED: "Prometheus 2.33 or newer is needed (for the @ modifier); otherwise "
    "this is a kubepulse bug (the query is logged), please report it",
    AnswerKind.FAILED: "retry later, or ask for fewer points if it ran out of resources",
}


class PrometheusHistoryError(KubepulseError):
    """Prometheus could not be asked, or did not answer as Prometheus does."""


# --------------------------------------------------------------------- pure PromQL


def _one_of(label: str, values: Iterable[str]) -> str:
    """``label="a"`` for one value, ``label=~"a|b"`` for several (sorted, deduplicated)."""
    kept = sorted(set(values))
    if len(kept) == 1:
        return f"{label}={escape_string(kept[0])}"
    return f"{label}=~{escape_string('|'.join(escape_regex(value) for value in kept))}"


@dataclass(frozen=True, slots=True)
class RowQuery:
    """One range query of a row: its PromQL and which part of the row it answers."""

    row: Measure
    query: str
    part: int = 0
    """0, or 1 for the denominator of a ratio."""


def _selector(
    row: Measure,
    metric: str,
    namespaces: Sequence[str] | None,
    nodes: Sequence[str] | None,
) -> str:
    matchers = [f"{label}={escape_string(value)}" for label, value in row.matchers]
    if row.selection is Selection.CONTAINERS and namespaces is not None:
        matchers.append(_one_of("namespace", namespaces))
    if row.selection in (Selection.CONTAINERS, Selection.NODES) and nodes is not None:
        matchers.append(_one_of("node", nodes))
    # Quota namespaces are filtered after the answer: the scrape may have renamed the
    # quota's namespace label to exported_namespace (see measures.key_of).
    return f"{metric}{{{', '.join(matchers)}}}" if matchers else metric


def _grouping(row: Measure) -> str:
    labels = list(row.key)
    if row.selection is Selection.QUOTAS:
        labels.insert(1, "exported_namespace")
    return f"{row.combiner} by ({', '.join(labels)})"


def row_queries(
    row: Measure,
    *,
    lookback_ms: int,
    range_ms: int,
    namespaces: Sequence[str] | None = None,
    nodes: Sequence[str] | None = None,
) -> tuple[RowQuery, ...]:
    """The PromQL range queries that compute ``row``; pure text.

    ``lookback_ms`` is each grid point's window, ``range_ms`` the history's length (for
    the filter of changing counters). ``namespaces`` and ``nodes`` narrow the series;
    an empty sequence matches nothing, so no query is returned.

    - ``RATE``: ``sum by (key) (rate(x{sel}[lookback]))``;
    - ``GAUGE``: ``sum by (key) (max_over_time(x{sel}[lookback]))`` (``min``, ``last``);
    - ``RATIO_OF_RATES``: the ``RATE`` query of each metric, divided after the answer;
    - ``INCREMENTS``: ``x{sel} and (changes(x{sel}[range + 5m] @ end()) > 0)``, the raw
      counter at each grid point, only for series that changed within the history.
    """
    if namespaces is not None and not namespaces and row.selection is not Selection.NODES:
        return ()
    if nodes is not None and not nodes and row.selection is not Selection.QUOTAS:
        return ()
    window = format_duration(lookback_ms)
    queries: list[RowQuery] = []
    for part, metric in enumerate(row.metrics):
        selector = _selector(row, metric, namespaces, nodes)
        if row.transform is Transform.INCREMENTS:
            changed = format_duration(range_ms + INSTANT_LOOKBACK_MS)
            query = f"{selector} and (changes({selector}[{changed}] @ end()) > 0)"
        elif row.transform is Transform.GAUGE:
            assert row.reduce is not None  # a gauge row always has its reduce
            function = row.reduce.promql_function
            query = f"{_grouping(row)} ({function}({selector}[{window}]))"
        else:
            query = f"{_grouping(row)} (rate({selector}[{window}]))"
        queries.append(RowQuery(row, query, part))
    return tuple(queries)


def _seconds(stamp_ms: int) -> str:
    """Milliseconds as the API's float seconds: ``1700000000.5``."""
    whole, fraction = divmod(stamp_ms, 1000)
    return f"{whole}.{fraction:03d}"


# --------------------------------------------------------------------- the client


@dataclass(frozen=True, slots=True)
class _Result:
    labels: dict[str, str]
    points: list[tuple[int, float]]


class PrometheusHistory:
    """Builds :class:`~kubepulse.analysis.inputs.UsageHistory` from Prometheus' HTTP API.

    Args:
        url: Prometheus' base URL (``http://prometheus-operated.monitoring:9090``, with a
            path prefix if it serves under one).
        timeout: how long one HTTP request may take, in seconds; also passed to
            Prometheus so that it stops evaluating when nobody waits any more.
        resolution_ms: the scrape interval of the exporter's series, which sets each
            grid point's window (:func:`~kubepulse.analysis.measures.lookback_for`).
        transport: the httpx transport (tests pass an :class:`httpx.MockTransport`).

    Raises:
        KubepulseValueError: the URL is not http(s), or the timeout is not positive.
    """

    def __init__(
        self,
        url: str,
        timeout: float = 30.0,
        *,
        resolution_ms: int = DEFAULT_RESOLUTION_MS,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise KubepulseValueError(
                f"the Prometheus URL {url!r} must start with http:// or https://, e.g. "
                "http://prometheus-operated.monitoring:9090; check --prometheus-url"
            )
        if not timeout > 0 or resolution_ms <= 0:
            raise KubepulseValueError(
                f"timeout and resolution_ms must be positive, got {timeout} and {resolution_ms}"
            )
        self._url = url.rstrip("/")
        self._timeout = timeout
        self._resolution_ms = resolution_ms
        self._client = httpx.Client(
            base_url=self._url,
            transport=transport,
            timeout=httpx.Timeout(timeout),
            headers={"Accept": "application/json"},
        )

    @property
    def url(self) -> str:
        """The Prometheus base URL queried."""
        return self._url

    def close(self) -> None:
        """Close the HTTP client's connections."""
        self._client.close()

    def __enter__(self) -> PrometheusHistory:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def fetch(
        self,
        start_ms: int,
        end_ms: int,
        namespaces: Iterable[str] | None = None,
        *,
        step_ms: int | None = None,
        nodes: Iterable[str] | None = None,
    ) -> UsageHistory:
        """The history over ``[start_ms, end_ms]``, one point every ``step_ms``.

        Follows :class:`~kubepulse.collect.history.HistorySource`. ``step_ms`` defaults
        to :func:`~kubepulse.analysis.measures.choose_step` of the range and the
        resolution (at most :data:`~kubepulse.analysis.measures.DEFAULT_GRID_POINTS`
        points). ``namespaces`` narrows container figures and quota usage, ``nodes``
        container and node figures; ``None`` keeps everything.

        Raises:
            KubepulseValueError: the range or step is unusable (too many points).
            PrometheusHistoryError: Prometheus cannot be reached or fails.
        """
        if step_ms is None:
            step_ms = choose_step(start_ms, end_ms, self._resolution_ms)
        namespace_list = None if namespaces is None else tuple(namespaces)
        node_list = None if nodes is None else tuple(nodes)
        grid = evaluation_grid(start_ms, end_ms, step_ms)
        lookback_ms = lookback_for(step_ms, self._resolution_ms)
        wanted_namespaces = None if namespace_list is None else frozenset(namespace_list)
        assembler = HistoryAssembler(start_ms, end_ms)
        for row in MEASURES:
            queries = row_queries(
                row,
                lookback_ms=lookback_ms,
                range_ms=grid[-1] - grid[0],
                namespaces=namespace_list,
                nodes=node_list,
            )
            for query in queries:
                results = self._query_range(query.query, grid[0], grid[-1], step_ms)
                for result in results:
                    key = key_of(row, result.labels, wanted_namespaces)
                    if key is None:
                        continue
                    if row.transform is Transform.INCREMENTS:
                        assembler.add_instants(row, key, increment_instants(result.points))
                    else:
                        assembler.add_points(row, key, result.points, query.part)
        return assembler.history()

    # ------------------------------------------------------------------ HTTP

    def _query_range(self, query: str, start_ms: int, end_ms: int, step_ms: int) -> list[_Result]:
        parameters = [
            ("query", query),
            ("start", _seconds(start_ms)),
            ("end", _seconds(end_ms)),
            ("step", _seconds(step_ms)),
            ("timeout", f"{round(self._timeout * 1000)}ms"),
        ]
        data = self._api("/api/v1/query_range", parameters, query)
        if not isinstance(data, dict) or not isinstance(data.get("result"), list):
            raise self._malformed("a result list")
        results: list[_Result] = []
        try:
            for item in data["result"]:
                labels = {str(name): str(value) for name, value in item.get("metric", {}).items()}
                points = [
                    (round(float(stamp) * 1000.0), float(value))
                    for stamp, value in item.get("values", [])
                ]
                results.append(_Result(labels, [p for p in points if not math.isnan(p[1])]))
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise self._malformed(f"series and samples ({error})") from None
        return results

    def _api(self, path: str, parameters: Sequence[tuple[str, str]], query: str) -> Any:
        """GET (or POST, when long) ``path``; the ``data`` of a successful answer."""
        encoded = urlencode(parameters)
        where = f"{self._url}{path}"
        try:
            if len(encoded) > POST_THRESHOLD_BYTES:
                response = self._client.post(
                    path,
                    content=encoded.encode(),
                    headers={"Content-Type": "application/x-www-form-urlencoded"},
                )
            else:
                response = self._client.get(f"{path}?{encoded}")
        except httpx.TimeoutException:
            raise PrometheusHistoryError(
                f"Prometheus at {where} did not answer within {self._timeout:g} s; raise "
                "--timeout, ask for a longer step or fewer namespaces, or check that "
                "Prometheus is not overloaded"
            ) from None
        except httpx.HTTPError as error:
            raise PrometheusHistoryError(
                f"cannot reach Prometheus at {self._url} ({type(error).__name__}: {error}); "
                "check --prometheus-url and that Prometheus is running and reachable from here"
            ) from None
        try:
            body = response.json()
        except ValueError:
            body = None
        try:
            return answer_data(response.status_code, body, where)
        except PrometheusAnswerError as error:
            if error.kind is AnswerKind.REFUSED:
                logger.error("%s; the query: %s", error, query)
            raise PrometheusHistoryError(f"{error}; {_ADVICE[error.kind]}") from None

    def _malformed(self, expected: str) -> PrometheusHistoryError:
        return PrometheusHistoryError(
            f"Prometheus at {self._url}/api/v1/query_range answered without {expected}; "
            "check --prometheus-url: is it Prometheus or a compatible API?"
        )
