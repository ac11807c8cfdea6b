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
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse

from adapter.api import custom_metrics, discovery, external_metrics
from adapter.api.context import ApiContext, ApiSettings, wall_clock_ms
from adapter.api.status import install_status_handlers
from adapter.objects import ObjectResolver
from adapter.sources.base import MetricSource
from kubepulse import __version__

__all__ = ["create_app"]


def create_app(
    *,
    source: MetricSource,
    objects: ObjectResolver,
    settings: ApiSettings | None = None,
    clock: Callable[[], int] = wall_clock_ms,
) -> FastAPI:
    """The metrics API over ``source``, describing the objects ``objects`` resolves.

    Args:
        source: where values come from (embedded store or Prometheus).
        objects: looks up pods, workloads, nodes and namespaces.
        settings: external metrics, advertised statistics and input limits.
        clock: the current time in epoch milliseconds; every request is answered as of
            one reading of it.
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
        source=source, objects=objects, settings=settings or ApiSettings(), clock=clock
    )
    install_status_handlers(app)
    app.include_router(discovery.router)
    app.include_router(custom_metrics.router)
    app.include_router(external_metrics.router)

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

    return app
