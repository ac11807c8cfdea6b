"""Analyzer results as JSON: one rule for every result type.

Results are frozen dataclasses. :func:`to_json` turns any of them into plain JSON data:

- dataclass -> object with its fields in declaration order (fields whose name starts
  with ``_`` are left out);
- :class:`enum.Enum` -> its value;
- :class:`~decimal.Decimal` -> a number (float), as kubectl's ``-o json`` shows
  quantities' magnitudes; non-finite floats -> ``null`` (JSON has no NaN);
- mappings -> objects with string keys (a dataclass key such as
  :class:`~kubepulse.analysis.inputs.ContainerRef` becomes its ``str()``);
- tuples, lists, sets (sorted) -> arrays.

Field names stay as Python spells them (``threshold_percent``) unless ``camel_case`` is
set, which the analysis API uses so that its objects read like every other Kubernetes
API object (``thresholdPercent``). Mapping keys are data (pod names, resources) and are
never renamed.
"""

from __future__ import annotations

import dataclasses
import enum
import math
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

__all__ = ["to_json"]


def to_json(value: Any, *, camel_case: bool = False) -> Any:
    """Plain JSON data (``dict``, ``list``, ``str``, numbers, ``None``) for ``value``.

    With ``camel_case``, dataclass field names are written in lowerCamelCase.

    Raises:
        TypeError: a value of a type with no JSON form; the message names the type.
    """
    if value is None or isinstance(value, (bool, str, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Decimal):
        number = float(value)
        return number if math.isfinite(number) else None
    if isinstance(value, enum.Enum):
        return to_json(value.value, camel_case=camel_case)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            (_camel(item.name) if camel_case else item.name): to_json(
                getattr(value, item.name), camel_case=camel_case
            )
            for item in dataclasses.fields(value)
            if not item.name.startswith("_")
        }
    if isinstance(value, Mapping):
        return {_key(key): to_json(item, camel_case=camel_case) for key, item in value.items()}
    if isinstance(value, (set, frozenset)):
        return [to_json(item, camel_case=camel_case) for item in sorted(value)]
    if isinstance(value, (list, tuple)):
        return [to_json(item, camel_case=camel_case) for item in value]
    raise TypeError(f"{type(value).__name__} has no JSON form; give it one in to_json")


def _key(key: Any) -> str:
    if isinstance(key, enum.Enum):
        return str(key.value)
    return str(key)


def _camel(name: str) -> str:
    first, *rest = name.split("_")
    return first + "".join(word[:1].upper() + word[1:] for word in rest)
