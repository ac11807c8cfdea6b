"""docs/analysis/README.md documents every analysis, parameter and flag there is."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubepulse.analysis.registry import ANALYSES
from kubepulse.analysis.resources import Analysis

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "analysis" / "README.md"


@pytest.mark.parametrize("analysis", ANALYSES, ids=lambda analysis: analysis.resource)
def test_the_guide_documents_each_analysis(analysis: Analysis) -> None:
    heading = f"### `kubectl pulse {analysis.command}`: `{analysis.kind}`"
    assert heading in GUIDE.read_text()
    text = GUIDE.read_text().split(heading, 1)[1].split("\n### ", 1)[0]
    for param in analysis.params:
        row = f"| `{param.name}` | `{param.flag}`"
        assert row in text, f"{analysis.resource}: the guide has no row for {param.name}"
        default = f"`{param.default}`" if param.default is not None else "none"
        rest_of_row = text.split(row, 1)[1].split("\n", 1)[0]
        assert default in rest_of_row, f"{analysis.resource}: {param.name} defaults to {default}"
