"""The import-layering contracts in pyproject.toml must actually catch violations.

`lint-imports` runs on the real tree in scripts/test; these tests plant one violation per
contract in a copy of the tree and check that the tool reports it, so a contract that
silently stopped matching (a renamed module, a typo) fails here.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = shutil.which("lint-imports") or str(Path(sys.executable).parent / "lint-imports")


def _copy_tree(destination: Path) -> None:
    for package in ("kubepulse", "exporter", "adapter"):
        shutil.copytree(
            REPO_ROOT / package,
            destination / package,
            ignore=shutil.ignore_patterns("__pycache__"),
        )
    shutil.copy(REPO_ROOT / "pyproject.toml", destination / "pyproject.toml")


def _lint(tree: Path) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run(
        [LINT_IMPORTS, "--no-cache"],
        cwd=tree,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def lint_imports_available() -> None:
    if not Path(LINT_IMPORTS).exists():
        pytest.fail("lint-imports is not installed: run ./scripts/test, which installs it")


def test_the_real_tree_keeps_every_contract(lint_imports_available: None, tmp_path: Path) -> None:
    _copy_tree(tmp_path)
    result = _lint(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("probe_path", "probe_source", "broken_contract"),
    [
        ("kubepulse/_probe.py", "import exporter\n", "the library imports neither"),
        (
            "kubepulse/_probe.py",
            "from adapter import __name__ as name\n",
            "the library imports neither",
        ),
        ("exporter/_probe.py", "import adapter\n", "never import each other"),
        ("adapter/_probe.py", "from exporter import __name__\n", "never import each other"),
        ("kubepulse/stats/_probe.py", "import httpx\n", "pure modules do no I/O"),
        ("kubepulse/store/_probe.py", "import pathlib\n", "pure modules do no I/O"),
        ("kubepulse/_model_probe.py", "import kubernetes\n", None),
    ],
)
def test_a_planted_violation_is_reported(
    lint_imports_available: None,
    tmp_path: Path,
    probe_path: str,
    probe_source: str,
    broken_contract: str | None,
) -> None:
    _copy_tree(tmp_path)
    (tmp_path / probe_path).write_text(probe_source)
    result = _lint(tmp_path)
    if broken_contract is None:
        # Non-pure library modules (CLI, checkpoint, clients) may use I/O libraries.
        assert result.returncode == 0, result.stdout + result.stderr
        return
    assert result.returncode != 0, f"lint-imports accepted {probe_path}: {probe_source!r}"
    assert broken_contract in result.stdout
    assert "BROKEN" in result.stdout
