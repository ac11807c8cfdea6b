"""The adapter's OpenAPI document, describing the responses it really sends.

FastAPI derives the document from the routes, and would announce a ``422`` validation
error for every route with parameters. The adapter never answers 422: every failure is a
Kubernetes ``Status`` (400, 404, 503; 401 and 403 from the security layer). This module
rewrites each operation's responses to say so, and gives the successful answers their
shapes (discovery documents, ``MetricValueList``, ``ExternalMetricValueList``, analysis
results), so that a
client, or a fuzzer checking conformance, reads the truth.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from kubepulse.analysis.resources import GROUP as ANALYSIS_GROUP

__all__ = ["install_openapi"]

_STATUS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "A Kubernetes Status: why a request failed.",
    "required": ["kind", "apiVersion", "status", "message", "reason", "code"],
    "properties": {
        "kind": {"type": "string", "enum": ["Status"]},
        "apiVersion": {"type": "string", "enum": ["v1"]},
        "metadata": {"type": "object"},
        "status": {"type": "string", "enum": ["Failure"]},
        "message": {"type": "string"},
        "reason": {"type": "string"},
        "code": {"type": "integer"},
        "details": {"type": "object"},
    },
}

_ITEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["timestamp", "value"],
    "properties": {
        "timestamp": {"type": "string"},
        "value": {"type": "string", "description": "a Kubernetes quantity, such as 500m"},
        "describedObject": {"type": "object"},
        "metricName": {"type": "string"},
        "metricLabels": {"type": "object"},
        "metric": {"type": "object"},
        "window": {"type": "integer"},
        "windowSeconds": {"type": "integer"},
        "selector": {},
    },
}

_LIST_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["kind", "apiVersion", "metadata", "items"],
    "properties": {
        "kind": {"type": "string", "enum": ["MetricValueList", "ExternalMetricValueList"]},
        "apiVersion": {"type": "string"},
        "metadata": {"type": "object"},
        "items": {"type": "array", "items": {"$ref": "#/components/schemas/MetricValue"}},
    },
}

_DISCOVERY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["kind", "apiVersion"],
    "properties": {
        "kind": {"type": "string", "enum": ["APIGroupList", "APIGroup", "APIResourceList"]},
        "apiVersion": {"type": "string"},
    },
}

_ANALYSIS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "An analysis result: the analyzer's fields (lowerCamelCase) under kind, "
    "apiVersion and metadata (creationTimestamp, snapshotTimestamp, historyStart, historyEnd).",
    "required": ["kind", "apiVersion", "metadata"],
    "properties": {
        "kind": {"type": "string"},
        "apiVersion": {"type": "string", "enum": ["analysis.kubepulse.io/v1alpha1"]},
        "metadata": {
            "type": "object",
            "required": ["creationTimestamp", "snapshotTimestamp", "historyStart", "historyEnd"],
        },
    },
}

_FAILURES = {
    "400": "the request is malformed: a bad selector, statistic, name or parameter",
    "401": "no valid credentials (from the security layer)",
    "403": "the caller may not read this metric (from the security layer)",
    "404": "no such resource, object, metric, or no fresh data",
    "405": "the API is read-only: only GET",
    "503": "the metric source or kube-apiserver cannot answer now",
}


def _json(reference: str, description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{reference}"}}},
    }


def describe_responses(document: dict[str, Any]) -> dict[str, Any]:
    """``document`` (FastAPI's) with every operation's real responses; changed in place."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    schemas.update(
        Status=_STATUS_SCHEMA,
        MetricValue=_ITEM_SCHEMA,
        MetricValueList=_LIST_SCHEMA,
        DiscoveryDocument=_DISCOVERY_SCHEMA,
        AnalysisResult=_ANALYSIS_SCHEMA,
    )
    for path, operations in document.get("paths", {}).items():
        if path.count("/") <= 3:
            success = "DiscoveryDocument"
        elif path.startswith(f"/apis/{ANALYSIS_GROUP}/"):
            success = "AnalysisResult"
        else:
            success = "MetricValueList"
        for operation in operations.values():
            operation["responses"] = {
                "200": _json(success, "the answer"),
                **{code: _json("Status", text) for code, text in _FAILURES.items()},
            }
    return document


def install_openapi(app: FastAPI) -> None:
    """Serve :func:`describe_responses` of the routes' document as ``app.openapi()``."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = describe_responses(
                get_openapi(
                    title=app.title,
                    version=app.version,
                    description=app.description,
                    routes=app.routes,
                )
            )
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
