"""Golden files for the adapter's JSON answers: compare, or rewrite when asked.

Each golden file is the pretty-printed JSON of one answer, with its HTTP status, under
``tests/fixtures/golden/adapter/``. Regenerate them after a deliberate change with::

    KUBEPULSE_UPDATE_GOLDEN=1 python -m pytest tests/unit/adapter/api

and review the diff: it is the change every client of the API will see.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import httpx
import pytest

GOLDEN_DIR = Path(__file__).resolve().parents[3] / "fixtures" / "golden" / "adapter"
UPDATE_VARIABLE = "KUBEPULSE_UPDATE_GOLDEN"


def render(response: httpx.Response) -> str:
    """What a golden file holds: the status and the decoded body, stably formatted."""
    document: dict[str, Any] = {"status": response.status_code, "body": response.json()}
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def assert_golden(name: str, response: httpx.Response) -> None:
    """``response`` equals the golden file ``<name>.json`` (rewritten when updating)."""
    path = GOLDEN_DIR / f"{name}.json"
    actual = render(response)
    if os.environ.get(UPDATE_VARIABLE) == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual, encoding="utf-8")
        return
    if not path.exists():
        pytest.fail(
            f"no golden file {path.name}; create it with {UPDATE_VARIABLE}=1 and review it",
            pytrace=False,
        )
    expected = path.read_text(encoding="utf-8")
    assert actual == expected, (
        f"the answer differs from {path.name}; if the change is intended, rerun with "
        f"{UPDATE_VARIABLE}=1 and review the diff"
    )
