"""Fuzz the metrics and analysis APIs from the adapter's own OpenAPI document with schemathesis.

Schemathesis generates requests for every operation the adapter describes: valid and
invalid path segments, selectors and parameters, including characters, lengths and
encodings nobody would type. They are sent in-process (ASGI, no network) to the real app
over a real :class:`EmbeddedSource` on a small store (and the analysis API over a small
recorded cluster), and to the same app over a source, and a history, that are down. The
resource metrics API (``metrics.k8s.io``, off by default) is enabled in both, with
exporter-shaped container and node series in the store.
What must hold for every one of them:

- no server error, except the deliberate ``503`` of the down source;
- every failure is a Kubernetes ``Status`` whose ``code`` is the HTTP status;
- the response conforms to the OpenAPI document (status code documented, body valid
  against the documented schema, content type).

The number of cases run is printed and recorded as the test's ``fuzz_cases`` property
(``reports/pytest.json``). The run is derandomized, so it is the same run every time.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import hypothesis
import pytest
import schemathesis
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from adapter.analysis.service import AnalysisService
from adapter.app import create_app
from adapter.objects import InMemoryObjectResolver
from adapter.sources.base import MetricDescriptor, SourceUnavailableError
from adapter.sources.embedded import EmbeddedSource
from kubepulse.metricquery import ObjectValue, SeriesRequest
from kubepulse.store import TimeSeriesStore
from tests.unit.adapter.api.test_api import NOW, cluster_objects, filled_store
from tests.unit.adapter.api.test_api import SETTINGS as API_SETTINGS
from tests.unit.adapter.api.test_resource_metrics import container, node
from tests.unit.analysis.small_cluster import FixedHistory, SmallClusterView

EXAMPLES_PER_OPERATION = 150
SETTINGS = dataclasses.replace(API_SETTINGS, resource_metrics=True)


def fuzzed_store() -> TimeSeriesStore:
    """The metrics API's store, plus a pod's containers and a node for ``metrics.k8s.io``."""
    store = filled_store()
    container(store, "shop", "web-1", "app", 0.25, 64 * 2**20)
    node(store, "n1", {"user": 0.5, "idle": 1.0}, 8 * 2**30, 6 * 2**30)
    return store


class DownSource:
    """A metric source whose backend is unreachable."""

    async def query(self, request: SeriesRequest, now_ms: int) -> list[ObjectValue]:
        raise SourceUnavailableError("Prometheus at http://127.0.0.1:9 answered 502")

    async def metrics(self) -> list[MetricDescriptor]:
        raise SourceUnavailableError("Prometheus at http://127.0.0.1:9 answered 502")

    async def ready(self) -> bool:
        return False


def working_app() -> Any:
    return create_app(
        source=EmbeddedSource(fuzzed_store(), clock=lambda: NOW, staleness_ms=60_000),
        objects=InMemoryObjectResolver(cluster_objects()),
        settings=SETTINGS,
        clock=lambda: NOW,
        analysis=AnalysisService(SmallClusterView(), FixedHistory()),
    )


def down_app() -> Any:
    return create_app(
        source=DownSource(),
        objects=InMemoryObjectResolver(cluster_objects()),
        settings=SETTINGS,
        clock=lambda: NOW,
        analysis=AnalysisService(SmallClusterView(), FixedHistory(down=True)),
    )


APPS = {"working": working_app(), "down": down_app()}
SCHEMA = schemathesis.openapi.from_asgi("/openapi.json", APPS["working"])
# Valid requests and invalid ones (values the schema forbids), NUL bytes included.
SCHEMA.config.generation.update(
    modes=[schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE],
    allow_x00=True,
)
CASES: dict[str, int] = {"working": 0, "down": 0}


@pytest.fixture(scope="module", autouse=True)
def report_case_count() -> Iterator[None]:
    yield
    total = sum(CASES.values())
    print(f"\nschemathesis ran {total} cases ({CASES['working']} working, {CASES['down']} down)")


def check_status_object(response: Any) -> None:
    if response.status_code < 400:
        return
    body = response.json()
    assert body.get("kind") == "Status", f"a {response.status_code} that is not a Status: {body}"
    assert body.get("code") == response.status_code, body
    assert body.get("status") == "Failure", body
    assert body.get("message"), body


@pytest.mark.parametrize("which", ["working", "down"])
@SCHEMA.parametrize()
@hypothesis.settings(
    max_examples=EXAMPLES_PER_OPERATION,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(hypothesis.HealthCheck),
)
def test_no_request_breaks_the_api(
    case: schemathesis.Case, which: str, record_property: Any
) -> None:
    CASES[which] += 1
    record_property("fuzz_cases", sum(CASES.values()))
    response = case.call(app=APPS[which])
    checks = [content_type_conformance, status_code_conformance, response_schema_conformance]
    if which == "working":
        checks.append(not_a_server_error)
    else:
        assert response.status_code < 500 or response.status_code == 503, response.text
    case.validate_response(response, checks=checks)
    check_status_object(response)
