"""The adapter's web application: the metrics API and its health endpoints.

:func:`create_app` wires the routers of :mod:`adapter.api` to a metric source and an
object resolver. It does no authentication itself: the adapter's entry point wraps the
app with :meth:`adapter.security.AdapterSecurity.protect`, which leaves ``/healthz``,
``/livez`` and ``/readyz`` open and checks every other request::

    source = EmbeddedSource(store, clock=wall_clock_ms)
    async with KubernetesObjectResolver(load_cluster_connection(kubeconfig)) as objects:
        app = create_app(
            source=source, objects=objects, settings=ApiSettings.from_config(config)
        )
        await serve(security.protect(app), config, ssl_context=security.ssl_context)

Health endpoints, as kube-apiserver's: ``/healthz`` and ``/livez`` answer ``ok`` while
the process serves; ``/readyz`` answers ``ok`` once the source and the object resolver
are ready, and 503 listing what is not otherwise (``?verbose`` lists every check).

With ``registry``, ``/metrics`` serves the adapter's own metrics (the scraper's, the
checkpointer's, the process's and the API's: ``kubepulse_adapter_api_requests_total``
by API group and code, ``kubepulse_adapter_api_request_duration_seconds`` by API group)
in the text or OpenMetrics format the scraper asks for.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response
from fastapi.responses import PlainTextResponse
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import choose_encoder

from adapter.analysis.backend import AnalysisBackend
from adapter.api import custom_metrics, discovery, external_metrics, resource_metrics
from adapter.api.analysis import install_analysis_routes
from adapter.api.context import ApiContext, ApiSettings, wall_clock_ms
from adapter.api.openapi import install_openapi
from adapter.api.status import install_status_handlers
from adapter.objects import ObjectResolver
from adapter.sources.base import MetricSource
from kubepulse import __version__
from kubepulse.analysis.resources import GROUP as ANALYSIS_GROUP

__all__ = ["create_app"]


def create_app(
    *,
    source: MetricSource,
    objects: ObjectResolver,
    settings: ApiSettings | None = None,
    clock: Callable[[], int] = wall_clock_ms,
    registry: CollectorRegistry | None = None,
    analysis: AnalysisBackend | None = None,
) -> FastAPI:
    """The metrics API over ``source``, describing the objects ``objects`` resolves.

    Args:
        source: where values come from (embedded store or Prometheus).
        objects: looks up pods, workloads, nodes and namespaces.
        settings: external metrics, advertised statistics, input limits and whether the
            resource metrics API (``metrics.k8s.io``, :mod:`adapter.api.resource_metrics`)
            is served.
        clock: the current time in epoch milliseconds; every request is answered as of
            one reading of it.
        registry: the adapter's own metrics, served at ``/metrics`` and extended with
            the API's request counts and latencies; ``None`` serves no ``/metrics``.
        analysis: serves the analyzers under ``analysis.kubepulse.io``; ``None`` leaves
            that group out.
    """
    app = FastAPI(
        title="kubepulse adapter",
        version=__version__,
        description=(
            "custom.metrics.k8s.io (v1beta2, v1beta1) and external.metrics.k8s.io (v1beta1) "
            "for HorizontalPodAutoscalers; see docs/adapter.md."
        ),
        docs_url=None,
        redoc_url=None,
    )
    app.state.kubepulse_context = ApiContext(
        source=source,
        objects=objects,
        settings=settings or ApiSettings(),
        clock=clock,
        analysis=analysis,
    )
    install_status_handlers(app)
    install_openapi(app)
    app.include_router(discovery.router)
    app.include_router(custom_metrics.router)
    app.include_router(external_metrics.router)
    install_analysis_routes(app)
    if app.state.kubepulse_context.settings.resource_metrics:
        resource_metrics.install_resource_metrics(app)

    @app.get("/healthz", include_in_schema=False)
    @app.get("/livez", include_in_schema=False)
    async def alive() -> PlainTextResponse:
        return PlainTextResponse("ok")

    @app.get("/readyz", include_in_schema=False)
    async def ready(request: Request) -> PlainTextResponse:
        context: ApiContext = request.app.state.kubepulse_context
        checks = {
            "source": await context.source.ready(),
            "objects": await context.objects.ready(),
        }
        failed = [name for name, passed in checks.items() if not passed]
        if "verbose" in request.query_params or failed:
            lines = [
                f"[{'+' if passed else '-'}]{name} {'ok' if passed else 'failed'}"
                for name, passed in checks.items()
            ]
            verdict = "readyz check failed" if failed else "readyz check passed"
            return PlainTextResponse(
                "\n".join([*lines, verdict]) + "\n", status_code=503 if failed else 200
            )
        return PlainTextResponse("ok")

    if registry is not None:
        _serve_own_metrics(app, registry)
    return app


def _api_group(path: str) -> str:
    """The label a request path is counted under: few values, whatever the path."""
    parts = path.split("/", 4)
    if len(parts) >= 3 and parts[1] == "apis" and parts[2] in _API_GROUPS:
        return parts[2]
    if path in ("/apis", "/apis/"):
        return "discovery"
    return "other"


_API_GROUPS = frozenset(
    {
        "custom.metrics.k8s.io",
        "external.metrics.k8s.io",
        resource_metrics.RESOURCE_METRICS_GROUP,
        ANALYSIS_GROUP,
    }
)


def _serve_own_metrics(app: FastAPI, registry: CollectorRegistry) -> None:
    requests = Counter(
        "kubepulse_adapter_api_requests",
        "Metrics API requests answered, by API group and HTTP status code.",
        ["group", "code"],
        registry=registry,
    )
    durations = Histogram(
        "kubepulse_adapter_api_request_duration_seconds",
        "Time to answer a metrics API request, by API group.",
        ["group"],
        buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
        registry=registry,
    )

    @app.middleware("http")
    async def count(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        group = _api_group(request.url.path)
        if group == "other":
            return await call_next(request)
        started = time.perf_counter()
        response = await call_next(request)
        durations.labels(group).observe(time.perf_counter() - started)
        requests.labels(group, str(response.status_code)).inc()
        return response

    @app.get("/metrics", include_in_schema=False)
    async def metrics(request: Request) -> Response:
        encoder, content_type = choose_encoder(request.headers.get("accept", ""))
        return Response(encoder(registry), media_type=content_type)
