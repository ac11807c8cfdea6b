"""The analysis API's resources: one description per analyzer, shared by every caller.

The adapter serves each analyzer as a resource of the aggregated group
``analysis.kubepulse.io/v1alpha1`` (``kubectl get --raw
/apis/analysis.kubepulse.io/v1alpha1/namespaces/shop/limitbreaches?thresholdPercent=80``),
and ``kubectl pulse`` either asks the adapter for it or runs it in-process. Both read
this table, so a parameter has one name, one default, one parser and one error message
wherever it is given:

- the API takes ``?thresholdPercent=80`` (lowerCamelCase, as Kubernetes query
  parameters are);
- the CLI takes ``--threshold-percent 80`` (the same name, kebab-case).

:class:`Analysis` says what the resource is called, whether it is namespaced, which
parameters it takes, how much history it needs and how it is computed from
:class:`AnalysisInputs`. :func:`parse_params` turns raw strings into typed values with
errors that name the valid choices.
"""

from __future__ import annotations

import enum
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Final

from kubepulse.analysis.inputs import ClusterSnapshot, UsageHistory
from kubepulse.analysis.serialize import to_json
from kubepulse.duration import format_duration, parse_duration
from kubepulse.errors import KubepulseValueError

__all__ = [
    "GROUP",
    "GROUP_VERSION",
    "VERSION",
    "Analysis",
    "AnalysisInputs",
    "AnalysisRequest",
    "Param",
    "ParamKind",
    "Scope",
    "parse_params",
    "result_document",
]

GROUP: Final = "analysis.kubepulse.io"
VERSION: Final = "v1alpha1"
GROUP_VERSION: Final = f"{GROUP}/{VERSION}"

_TRUE: Final = frozenset({"true", "1", "yes"})
_FALSE: Final = frozenset({"false", "0", "no"})
_MAX_PARAM_LENGTH: Final = 256


class ParamKind(enum.Enum):
    """How a parameter's text is read."""

    NUMBER = "number"
    DURATION = "duration"
    BOOLEAN = "boolean"
    CHOICE = "choice"
    TEXT = "text"


class Scope(enum.Enum):
    """Where a resource lives in the API's paths."""

    CLUSTER = "cluster"
    """Only ``/apis/analysis.kubepulse.io/v1alpha1/<resource>``."""
    NAMESPACED = "namespaced"
    """Only ``.../namespaces/<namespace>/<resource>``."""
    BOTH = "both"
    """Either: cluster-wide, or narrowed to one namespace."""


@dataclass(frozen=True)
class Param:
    """One parameter of an analysis.

    Attributes:
        name: the API's query parameter (``thresholdPercent``); the CLI flag is its
            kebab-case form (``--threshold-percent``).
        kind: how the text is read.
        default: the value when absent, as text (``None``: no default, the analysis
            does without).
        help: one line for ``--help`` and the OpenAPI description.
        choices: the allowed values of a ``CHOICE`` parameter.
        minimum: the smallest allowed ``NUMBER`` or ``DURATION`` (in ms).
        maximum: the largest allowed ``NUMBER`` or ``DURATION`` (in ms).
        integer: a ``NUMBER`` that must be whole (a count such as ``top``); parsed to
            ``int``.
    """

    name: str
    kind: ParamKind
    default: str | None
    help: str
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    integer: bool = False

    @property
    def flag(self) -> str:
        """The CLI flag: ``--threshold-percent``."""
        return "--" + re.sub(r"(?<!^)(?=[A-Z])", "-", self.name).lower()

    def parse(self, text: str) -> Any:
        """The typed value of ``text``: float (int when ``integer``), milliseconds, bool or str.

        Raises:
            KubepulseValueError: ``text`` is not a valid value; the message names the
                parameter and what is valid.
        """
        if len(text) > _MAX_PARAM_LENGTH:
            raise KubepulseValueError(
                f"{self.name} is {len(text)} characters long; at most {_MAX_PARAM_LENGTH} "
                "are accepted"
            )
        if self.kind is ParamKind.NUMBER:
            return self._number(text)
        if self.kind is ParamKind.DURATION:
            return self._duration(text)
        if self.kind is ParamKind.BOOLEAN:
            lowered = text.strip().lower()
            if lowered in _TRUE:
                return True
            if lowered in _FALSE:
                return False
            raise KubepulseValueError(f"{self.name} must be true or false, got {text!r}")
        if self.kind is ParamKind.CHOICE:
            if text not in self.choices:
                raise KubepulseValueError(
                    f"{self.name} must be one of {', '.join(self.choices)}, got {text!r}"
                )
            return text
        return text

    def _number(self, text: str) -> float | int:
        try:
            number = float(text)
        except ValueError:
            number = math.nan
        if not math.isfinite(number):
            whole = " whole" if self.integer else ""
            raise KubepulseValueError(f"{self.name} must be a{whole} number, got {text!r}")
        if self.integer and not number.is_integer():
            raise KubepulseValueError(
                f"{self.name} must be a whole number, got {text!r}; "
                f"give a count such as {int(self.minimum or 0) + 99}"
            )
        if (self.minimum is not None and number < self.minimum) or (
            self.maximum is not None and number > self.maximum
        ):
            raise KubepulseValueError(
                f"{self.name} must be between {self.minimum:g} and {self.maximum:g}, got {text}"
            )
        return int(number) if self.integer else number

    def _duration(self, text: str) -> int:
        try:
            duration_ms = parse_duration(text)
        except KubepulseValueError as error:
            raise KubepulseValueError(f"{self.name}: {error}") from error
        low = self.minimum if self.minimum is not None else 0
        high = self.maximum if self.maximum is not None else math.inf
        if not low <= duration_ms <= high:
            raise KubepulseValueError(
                f"{self.name} must be between {format_duration(int(low))} and "
                f"{format_duration(int(high))}, got {text}"
            )
        return duration_ms


@dataclass(frozen=True)
class AnalysisInputs:
    """What an analysis is computed from.

    Attributes:
        snapshot: the cluster's objects.
        history: measured usage over the window the analysis asked for.
        autoscalers: the cluster's HorizontalPodAutoscalers (``autoscaling/v2`` objects
            as kube-apiserver returns them), for analyses that must know what an HPA
            does to a workload.
    """

    snapshot: ClusterSnapshot
    history: UsageHistory
    autoscalers: tuple[Mapping[str, Any], ...] = ()


@dataclass(frozen=True)
class AnalysisRequest:
    """One call: where, on what object, with which parsed parameters."""

    namespace: str | None = None
    name: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Analysis:
    """One analyzer as a resource of ``analysis.kubepulse.io``.

    Attributes:
        resource: the resource name in paths (``limitbreaches``).
        kind: the ``kind`` of the object answered (``LimitBreachReport``).
        scope: cluster-wide, namespaced or both.
        named: whether the path names an object (``hpametrics/<deployment>``).
        summary: one line for discovery, ``--help`` and OpenAPI.
        params: the parameters it takes.
        history_ms: how much history it needs, from the parsed parameters.
        run: computes the result from the inputs and the request.
        result_type: the dataclass ``run`` returns, for the OpenAPI schema.
        command: the ``kubectl pulse`` subcommand.
    """

    resource: str
    kind: str
    scope: Scope
    summary: str
    params: tuple[Param, ...]
    history_ms: Callable[[Mapping[str, Any]], int]
    run: Callable[[AnalysisInputs, AnalysisRequest], Any]
    result_type: type
    command: str
    named: bool = False

    def param(self, name: str) -> Param:
        """The parameter called ``name``."""
        for param in self.params:
            if param.name == name:
                return param
        raise KubepulseValueError(
            f"{self.resource} has no parameter {name!r}; it takes "
            f"{', '.join(p.name for p in self.params) or 'none'}"
        )


def parse_params(analysis: Analysis, raw: Mapping[str, str]) -> dict[str, Any]:
    """Every parameter of ``analysis``, typed: given ones parsed, absent ones defaulted.

    Raises:
        KubepulseValueError: an unknown parameter (the message lists the known ones) or
            a bad value.
    """
    known = {param.name for param in analysis.params}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise KubepulseValueError(
            f"{analysis.resource} has no parameter {unknown[0]!r}; it takes "
            f"{', '.join(sorted(known)) or 'none'}"
        )
    parsed: dict[str, Any] = {}
    for param in analysis.params:
        text = raw.get(param.name, param.default)
        parsed[param.name] = None if text is None else param.parse(text)
    return parsed


def _timestamp(epoch_ms: int) -> str:
    moment = datetime.fromtimestamp(epoch_ms / 1000, tz=timezone.utc)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def result_document(
    analysis: Analysis, result: Any, inputs: AnalysisInputs, computed_ms: int
) -> dict[str, Any]:
    """The API object answering ``analysis``: the result under kind, apiVersion, metadata.

    The adapter answers it and ``kubectl pulse --local`` prints it, so both look the
    same. ``metadata`` says when it was computed, as of which snapshot and over which
    history; result fields are lowerCamelCase.
    """
    return {
        "kind": analysis.kind,
        "apiVersion": GROUP_VERSION,
        "metadata": {
            "creationTimestamp": _timestamp(computed_ms),
            "snapshotTimestamp": _timestamp(inputs.snapshot.taken_at_ms),
            "historyStart": _timestamp(inputs.history.start_ms),
            "historyEnd": _timestamp(inputs.history.end_ms),
        },
        **to_json(result, camel_case=True),
    }
