"""The analyzers as an aggregated API: ``analysis.kubepulse.io/v1alpha1``.

Each analysis of :data:`kubepulse.analysis.registry.ANALYSES` is a read-only resource,
listed by discovery and answered as one object of its ``kind``::

    GET /apis/analysis.kubepulse.io/v1alpha1/limitbreaches?thresholdPercent=80&window=10m
    GET /apis/analysis.kubepulse.io/v1alpha1/namespaces/shop/recommendations?target=cost
    GET /apis/analysis.kubepulse.io/v1alpha1/namespaces/shop/hpametrics/web

Registered as an APIService, they are reached through kube-apiserver with its
authentication and RBAC (``list`` on ``limitbreaches.analysis.kubepulse.io``...), so
``kubectl get --raw`` and ``kubectl pulse`` need no ingress of their own.

The answer is the analysis result (field names in lowerCamelCase) under
``kind``/``apiVersion``/``metadata``; ``metadata`` records the history window used and
when the snapshot was taken. Bad parameters get 400, an unknown resource, namespace or
object 404, and 503 while the adapter's view of the cluster is not synced yet, all as
``Status`` objects.

The work happens in an :class:`adapter.analysis.backend.AnalysisBackend` (the
adapter's informer and history source); this module only routes, validates and
serialises.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import JSONResponse

from adapter.analysis.backend import AnalysisUnavailableError
from adapter.api.context import ApiContext
from adapter.api.status import NotFoundError, ServiceUnavailableError, StatusRoute
from kubepulse.analysis.registry import ANALYSES
from kubepulse.analysis.resources import (
    GROUP,
    GROUP_VERSION,
    VERSION,
    Analysis,
    AnalysisRequest,
    ParamKind,
    Scope,
    parse_params,
    result_document,
)

__all__ = [
    "analysis_api_group",
    "analysis_resources",
    "install_analysis_routes",
]


def analysis_api_group() -> dict[str, Any]:
    """The ``APIGroup`` body of ``analysis.kubepulse.io``."""
    version = {"groupVersion": GROUP_VERSION, "version": VERSION}
    return {"name": GROUP, "versions": [version], "preferredVersion": version}


def analysis_resources() -> list[dict[str, Any]]:
    """The ``APIResourceList`` entries: one per analysis."""
    return [
        {
            "name": analysis.resource,
            "singularName": "",
            "namespaced": analysis.scope is not Scope.CLUSTER,
            "kind": analysis.kind,
            "verbs": ["get"] if analysis.named else ["list"],
            "categories": ["kubepulse"],
        }
        for analysis in ANALYSES
    ]


def _handler(
    analysis: Analysis, namespaced: bool
) -> Callable[[Request], Coroutine[Any, Any, Response]]:
    async def answer(request: Request) -> Response:
        context: ApiContext = request.app.state.kubepulse_context
        backend = context.analysis
        if backend is None:
            raise NotFoundError("the analysis API is disabled in this adapter's configuration")
        params = parse_params(analysis, dict(request.query_params))
        namespace = request.path_params.get("namespace") if namespaced else None
        if not backend.ready():
            raise ServiceUnavailableError(backend.not_ready_reason())
        clock_ms = context.clock()
        try:
            inputs = await backend.inputs(analysis.history_ms(params), namespace, clock_ms)
        except AnalysisUnavailableError as error:
            raise ServiceUnavailableError(str(error)) from error
        if namespace is not None and namespace not in inputs.snapshot.namespace_names():
            raise NotFoundError(
                f"namespace {namespace!r} not found; `kubectl get namespaces` lists them",
                details={"name": namespace, "kind": "namespaces"},
            )
        call = AnalysisRequest(
            namespace=namespace, name=request.path_params.get("name"), params=params
        )
        result = await backend.compute(analysis, inputs, call)
        body = result_document(analysis, result, inputs, clock_ms)
        return JSONResponse(body, headers={"Cache-Control": "no-cache, private"})

    return answer


def _openapi_parameters(analysis: Analysis, path_params: tuple[str, ...]) -> list[dict[str, Any]]:
    parameters: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in path_params
    ]
    for param in analysis.params:
        schema: dict[str, Any] = {"type": "string"}
        if param.kind is ParamKind.CHOICE:
            schema = {"type": "string", "enum": list(param.choices)}
        elif param.kind is ParamKind.BOOLEAN:
            schema = {"type": "string", "enum": ["true", "false"]}
        elif param.kind is ParamKind.NUMBER:
            schema = {"type": "integer" if param.integer else "number"}
            if param.minimum is not None:
                schema["minimum"] = param.minimum
            if param.maximum is not None:
                schema["maximum"] = param.maximum
        if param.default is not None:
            schema["default"] = param.default
        parameters.append(
            {"name": param.name, "in": "query", "required": False, "description": param.help,
             "schema": schema}
        )  # fmt: skip
    return parameters


def install_analysis_routes(app: FastAPI) -> None:
    """Add a route per analysis and scope, each described in the OpenAPI document."""
    router = APIRouter(route_class=StatusRoute, tags=["analysis"])
    base = f"/apis/{GROUP}/{VERSION}"
    for analysis in ANALYSES:
        tail = f"{analysis.resource}/{{name}}" if analysis.named else analysis.resource
        paths: list[tuple[str, bool, tuple[str, ...]]] = []
        if analysis.scope is not Scope.NAMESPACED:
            paths.append((f"{base}/{tail}", False, ("name",) if analysis.named else ()))
        if analysis.scope is not Scope.CLUSTER:
            names = ("namespace", "name") if analysis.named else ("namespace",)
            paths.append((f"{base}/namespaces/{{namespace}}/{tail}", True, names))
        for path, namespaced, path_params in paths:
            router.add_api_route(
                path,
                _handler(analysis, namespaced),
                methods=["GET"],
                summary=analysis.summary,
                name=f"{analysis.resource}{'-namespaced' if namespaced else ''}",
                openapi_extra={
                    "parameters": _openapi_parameters(analysis, path_params),
                    "x-kubepulse-kind": analysis.kind,
                },
            )
    app.include_router(router)
