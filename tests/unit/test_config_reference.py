"""``docs/configuration.md`` is exactly what ``scripts/config_reference.py`` generates,
and what it generates covers every setting of both programs.

The script is loaded from its file (``scripts/`` is not a package) and run in-process.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from adapter import config as adapter_config
from exporter import config as exporter_config

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "config_reference.py"
PAGE = ROOT / "docs" / "configuration.md"


def _load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("config_reference", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("config_reference", module)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def script() -> ModuleType:
    return _load_script()


def test_committed_page_is_the_generated_one(script: ModuleType) -> None:
    assert PAGE.read_text() == script.generate(), (
        "docs/configuration.md is stale; run `python scripts/config_reference.py`"
    )


def test_every_adapter_setting_has_its_row(script: ModuleType) -> None:
    page = script.generate()
    for setting in adapter_config._SETTINGS:
        row = next(line for line in page.splitlines() if line.startswith(f"| `{setting.key}` |"))
        if setting.flag is None:
            assert "file only" in row
            continue
        assert f"`{setting.env}`" in row
        flag = setting.flag.removeprefix("--")
        assert (f"`--[no-]{flag}`" if setting.boolean else f"`--{flag}`") in row


def test_adapter_defaults_are_printed_as_help_prints_them(script: ModuleType) -> None:
    rows = {row[0]: row for _, section in script.adapter_sections() for row in section}
    assert rows["`server.port`"][3] == "`6443`"
    assert rows["`staleness`"][3] == "`2m`"
    assert rows["`sources.embedded.discovery`"][3] == "`true`"
    # An empty list whose help says what it means is shown in those words.
    assert rows["`sources.embedded.namespaces`"][3] == "all"
    assert "(default" not in rows["`sources.embedded.namespaces`"][4]


def test_every_exporter_setting_has_its_row(script: ModuleType) -> None:
    rows = script.exporter_rows()
    assert [row[0] for row in rows] == [f"`{s.flag}`" for s in exporter_config._SETTINGS]
    assert [row[1] for row in rows] == [f"`{s.env}`" for s in exporter_config._SETTINGS]
    by_flag = {row[0]: row for row in rows}
    assert by_flag["`--listen-address`"][2] == f"0.0.0.0:{exporter_config.DEFAULT_PORT}"
    assert by_flag["`--sample-interval`"][2] == "1s"


def test_external_metric_rule_fields_are_listed(script: ModuleType) -> None:
    keys = [row[0] for row in script.external_rule_rows()]
    assert keys == ["`name`", "`metric`", "`selector`", "`statistic`", "`window`", "`namespaced`"]


def test_check_fails_on_a_stale_page(script: ModuleType, tmp_path: Path) -> None:
    page = tmp_path / "configuration.md"
    page.write_text("old\n")
    assert script.main(["--check", "--output", str(page)]) == 1
    assert script.main(["--output", str(page)]) == 0
    assert script.main(["--check", "--output", str(page)]) == 0


def test_the_pages_example_file_is_valid(script: ModuleType, tmp_path: Path) -> None:
    page = script.generate()
    example = page.split("```yaml\n", 1)[1].split("```", 1)[0]
    config_file = tmp_path / "adapter.yaml"
    config_file.write_text(example)
    # The example names the TLS files a pod mounts; here they do not exist, and that must
    # be the only complaint.
    with pytest.raises(adapter_config.ConfigError) as raised:
        adapter_config.load_config(["--config", str(config_file)], environ={})
    problems = {problem.key for problem in raised.value.problems}
    assert problems == {"tls.cert_file", "tls.private_key_file"}
    assert all("no such file" in problem.message for problem in raised.value.problems)
