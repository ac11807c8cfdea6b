"""What the API's routers share: group names, input checks and JSON pieces.

Inputs are checked before anything is looked up, with Kubernetes' own rules, so that a
path such as ``/namespaces/..%2F../pods/x/m`` or a megabyte of selector is a 400
``BadRequest`` that says what is allowed, not a lookup:

- namespaces are DNS labels (at most 63 characters);
- object names are DNS subdomains (at most 253), or ``*``;
- metric names are Prometheus metric names, optionally with a derived-name suffix
  (:mod:`kubepulse.metricquery`), at most :data:`MAX_METRIC_NAME_LENGTH` characters;
- selectors are at most ``max_selector_length`` characters.

The JSON pieces are on the hot path of a ``pods/*`` answer: a 5,000-pod answer formats
5,000 quantities and timestamps. Quantities are written by
:func:`~kubepulse.quantity.format_quantity`, which has a short cut for floats for it, and
:func:`rfc3339` remembers the last few thousand seconds it formatted (the items of one
answer share a handful of timestamps). ``bench/scrape_bench.py --encode`` measures both.
"""

from __future__ import annotations

import functools
import re
from datetime import datetime, timezone
from typing import Any, Final

from adapter.api.status import BadRequestError
from kubepulse.metricquery import ParsedMetric, is_metric_name, parse_metric_request
from kubepulse.selector import LabelSelector, Operator, parse_selector

__all__ = [
    "CUSTOM_GROUP",
    "CUSTOM_VERSIONS",
    "EXTERNAL_GROUP",
    "EXTERNAL_VERSIONS",
    "MAX_METRIC_NAME_LENGTH",
    "check_namespace",
    "check_object_name",
    "check_selector_text",
    "metric_request",
    "object_selector",
    "rfc3339",
    "selector_to_api",
]

CUSTOM_GROUP: Final = "custom.metrics.k8s.io"
CUSTOM_VERSIONS: Final = ("v1beta2", "v1beta1")
"""Served versions, preferred first (v1beta2 has versionPriority 200)."""
EXTERNAL_GROUP: Final = "external.metrics.k8s.io"
EXTERNAL_VERSIONS: Final = ("v1beta1",)

MAX_METRIC_NAME_LENGTH: Final = 512
"""Longest metric name accepted (a Prometheus name plus a derived suffix)."""
_DNS_LABEL: Final = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_DNS_SUBDOMAIN: Final = re.compile(
    r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
)
_MAX_LABEL_LENGTH: Final = 63
_MAX_SUBDOMAIN_LENGTH: Final = 253


def _shown(text: str, limit: int = 80) -> str:
    """``text`` quoted for a message, shortened when long."""
    return repr(text if len(text) <= limit else text[:limit] + "...")


def check_namespace(text: str) -> str:
    """``text`` if it is a valid namespace name.

    Raises:
        BadRequestError: it is not a DNS label.
    """
    if len(text) > _MAX_LABEL_LENGTH or _DNS_LABEL.fullmatch(text) is None:
        raise BadRequestError(
            f"invalid namespace {_shown(text)}: a namespace name is 1 to 63 lowercase "
            "letters, digits and '-', starting and ending with a letter or digit"
        )
    return text


def check_object_name(text: str, what: str) -> str | None:
    """``text`` if it is a valid object name, ``None`` for ``*`` (every object).

    Raises:
        BadRequestError: it is not a DNS subdomain.
    """
    if text == "*":
        return None
    if len(text) > _MAX_SUBDOMAIN_LENGTH or _DNS_SUBDOMAIN.fullmatch(text) is None:
        raise BadRequestError(
            f"invalid {what} name {_shown(text)}: give '*' or a name of 1 to 253 lowercase "
            "letters, digits, '-' and '.', each dot-separated part starting and ending with "
            "a letter or digit"
        )
    return text


def check_selector_text(text: str, parameter: str, max_length: int) -> str:
    """``text`` if it is short enough to be a selector.

    Raises:
        BadRequestError: it is longer than ``max_length``.
    """
    if len(text) > max_length:
        raise BadRequestError(
            f"{parameter} is {len(text)} characters long, more than the {max_length} "
            "accepted; select with fewer, broader requirements"
        )
    return text


def object_selector(text: str, max_length: int) -> LabelSelector:
    """The ``labelSelector`` query parameter, parsed.

    Raises:
        BadRequestError: too long.
        SelectorError: malformed (a 400 too).
    """
    return parse_selector(check_selector_text(text, "labelSelector", max_length))


def metric_request(
    metric_name: str, metric_selector: str, parameter: str, max_length: int
) -> ParsedMetric:
    """A requested metric name and its metric selector, checked and understood.

    Raises:
        BadRequestError: the name is too long or not a metric name, or the selector too
            long.
        KubepulseValueError: the derived suffix, the selector or a reserved key is
            invalid (a 400 too).
    """
    if len(metric_name) > MAX_METRIC_NAME_LENGTH:
        raise BadRequestError(
            f"the metric name is {len(metric_name)} characters long, more than the "
            f"{MAX_METRIC_NAME_LENGTH} accepted"
        )
    check_selector_text(metric_selector, parameter, max_length)
    parsed = parse_metric_request(metric_name, metric_selector)
    if not is_metric_name(parsed.name):
        raise BadRequestError(
            f"invalid metric name {_shown(parsed.name)}: metric names match "
            "[a-zA-Z_:][a-zA-Z0-9_:]*, optionally followed by a derived-name suffix such as "
            "'-p95-5m' (see docs/adapter.md)"
        )
    return parsed


def rfc3339(timestamp_ms: int) -> str:
    """Epoch milliseconds as ``metav1.Time`` serialises: RFC 3339 in UTC, whole seconds."""
    return _rfc3339_seconds(timestamp_ms // 1000)


@functools.lru_cache(maxsize=4096)
def _rfc3339_seconds(seconds: int) -> str:
    moment = datetime.fromtimestamp(seconds, tz=timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def selector_to_api(selector: LabelSelector) -> dict[str, Any] | None:
    """A selector in the API form of ``metav1.LabelSelector``; ``None`` when empty.

    As apimachinery's ``ParseToLabelSelector``: ``=`` goes to ``matchLabels``, ``!=``
    becomes ``NotIn`` with one value, the rest are ``matchExpressions`` with sorted
    values, in the selector's (key) order.
    """
    if selector.is_empty:
        return None
    match_labels: dict[str, str] = {}
    expressions: list[dict[str, Any]] = []
    operators = {
        Operator.IN: "In",
        Operator.NOT_IN: "NotIn",
        Operator.NOT_EQUALS: "NotIn",
        Operator.EXISTS: "Exists",
        Operator.DOES_NOT_EXIST: "DoesNotExist",
    }
    for requirement in selector.requirements:
        if requirement.operator is Operator.EQUALS:
            (match_labels[requirement.key],) = requirement.values
            continue
        expression: dict[str, Any] = {
            "key": requirement.key,
            "operator": operators[requirement.operator],
        }
        if requirement.values:
            expression["values"] = sorted(requirement.values)
        expressions.append(expression)
    api: dict[str, Any] = {}
    if match_labels:
        api["matchLabels"] = match_labels
    if expressions:
        api["matchExpressions"] = expressions
    return api
