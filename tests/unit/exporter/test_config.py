"""The exporter's settings: flags over variables over defaults, and errors that say what to do."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from exporter.config import (
    DEFAULT_PORT,
    ConfigError,
    ExporterConfig,
    UsageError,
    build_parser,
    parse_config,
    parse_listen_address,
    parse_node_name,
)

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
FAKE_PROC = str(FIXTURES / "proc")
FAKE_CGROUP = str(FIXTURES / "cgroup" / "v2-systemd-containerd")

ENV_BY_FLAG = {
    "--listen-address": "KUBEPULSE_LISTEN_ADDRESS",
    "--node-name": "NODE_NAME",
    "--proc-root": "KUBEPULSE_PROC_ROOT",
    "--cgroup-root": "KUBEPULSE_CGROUP_ROOT",
    "--sample-interval": "KUBEPULSE_SAMPLE_INTERVAL",
    "--top-host-processes": "KUBEPULSE_TOP_HOST_PROCESSES",
    "--max-series": "KUBEPULSE_MAX_SERIES",
    "--kubeconfig": "KUBECONFIG",
    "--mode": "KUBEPULSE_MODE",
    "--api-qps": "KUBEPULSE_API_QPS",
    "--log-level": "KUBEPULSE_LOG_LEVEL",
    "--log-format": "KUBEPULSE_LOG_FORMAT",
}


def parse(argv: list[str], environ: dict[str, str] | None = None) -> ExporterConfig:
    """parse_config with a fixed host name and the fixture roots unless overridden."""
    roots = {"KUBEPULSE_PROC_ROOT": FAKE_PROC, "KUBEPULSE_CGROUP_ROOT": FAKE_CGROUP}
    return parse_config(argv, {**roots, **(environ or {})}, hostname=lambda: "Worker-7")


def problems_of(argv: list[str], environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse(argv, environ)
    return [str(problem) for problem in caught.value.problems]


# ---------------------------------------------------------------- defaults and precedence


def test_defaults() -> None:
    config = parse_config([], {}, hostname=lambda: "Worker-7")

    assert config.listen_host == "0.0.0.0"
    assert config.listen_port == DEFAULT_PORT == 9847
    assert config.listen_address == "0.0.0.0:9847"
    # The kubelet names a Node after the host name in lower case.
    assert config.node_name == "worker-7"
    assert config.proc_root == "/proc"
    assert config.cgroup_root == "/sys/fs/cgroup"
    assert config.sample_interval_ms == 1000
    assert config.sample_interval_seconds == 1.0
    assert config.top_host_processes == 10
    assert config.max_series == 50_000
    assert config.kubeconfig is None
    assert config.mode == "auto"
    assert config.api_qps == 5.0
    assert (config.log_level, config.log_format) == ("info", "json")
    assert config.origins["node_name"] == "default (host name)"
    assert {origin for key, origin in config.origins.items() if key != "node_name"} == {"default"}


def test_every_flag() -> None:
    config = parse(
        [
            "--listen-address", "127.0.0.1:0",
            "--node-name", "node-a.example.com",
            "--proc-root", FAKE_PROC,
            "--cgroup-root", FAKE_CGROUP,
            "--sample-interval", "250ms",
            "--top-host-processes", "0",
            "--max-series", "1_000",
            "--kubeconfig", "/etc/kubeconfig",
            "--mode", "LOCAL",
            "--api-qps=0.5",
            "--log-level", "debug",
            "--log-format", "text",
        ]
    )  # fmt: skip

    assert (config.listen_host, config.listen_port) == ("127.0.0.1", 0)
    assert config.node_name == "node-a.example.com"
    assert (config.proc_root, config.cgroup_root) == (FAKE_PROC, FAKE_CGROUP)
    assert config.sample_interval_ms == 250
    assert config.top_host_processes == 0
    assert config.max_series == 1000
    assert config.kubeconfig == "/etc/kubeconfig"
    assert config.mode == "local"
    assert config.api_qps == 0.5
    assert (config.log_level, config.log_format) == ("debug", "text")
    assert set(config.origins.values()) == {"flag"}


def test_every_variable() -> None:
    config = parse(
        [],
        {
            "KUBEPULSE_LISTEN_ADDRESS": "[::1]:9900",
            "NODE_NAME": "node-b",
            "KUBEPULSE_SAMPLE_INTERVAL": "2s",
            "KUBEPULSE_TOP_HOST_PROCESSES": "25",
            "KUBEPULSE_MAX_SERIES": "200000",
            "KUBECONFIG": "/a:/b",
            "KUBEPULSE_MODE": "cluster",
            "KUBEPULSE_API_QPS": "20",
            "KUBEPULSE_LOG_LEVEL": "warning",
            "KUBEPULSE_LOG_FORMAT": "text",
        },
    )

    assert (config.listen_host, config.listen_port) == ("::1", 9900)
    assert config.listen_address == "[::1]:9900"
    assert config.node_name == "node-b"
    assert config.sample_interval_ms == 2000
    assert config.top_host_processes == 25
    assert config.max_series == 200_000
    assert config.kubeconfig == "/a:/b"
    assert config.mode == "cluster"
    assert config.api_qps == 20.0
    assert (config.log_level, config.log_format) == ("warning", "text")
    assert config.origins["sample_interval"] == "env KUBEPULSE_SAMPLE_INTERVAL"
    assert config.origins["node_name"] == "env NODE_NAME"


def test_a_flag_wins_over_its_variable_and_a_variable_over_the_default() -> None:
    config = parse(
        ["--mode", "local", "--sample-interval", "5s"],
        {"KUBEPULSE_MODE": "cluster", "KUBEPULSE_SAMPLE_INTERVAL": "2s", "NODE_NAME": "n1"},
    )

    assert config.mode == "local"
    assert config.sample_interval_ms == 5000
    assert config.node_name == "n1"
    assert config.origins["mode"] == "flag"
    assert config.origins["node_name"] == "env NODE_NAME"
    assert config.origins["max_series"] == "default"


def test_an_empty_variable_counts_as_unset() -> None:
    config = parse([], {"KUBEPULSE_MODE": "", "NODE_NAME": "  ", "KUBECONFIG": ""})

    assert config.mode == "auto"
    assert config.node_name == "worker-7"
    assert config.kubeconfig is None


def test_a_bad_variable_does_not_matter_when_its_flag_is_given() -> None:
    config = parse(["--sample-interval", "1s"], {"KUBEPULSE_SAMPLE_INTERVAL": "often"})

    assert config.sample_interval_ms == 1000


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("flag", "value", "accepted"),
    [
        ("--listen-address", "9847", "give host:port"),
        ("--listen-address", "0.0.0.0:99999", "from 0 to 65535"),
        ("--listen-address", "::1:9847", "brackets"),
        ("--listen-address", "bad_host!:80", "neither an IP address nor a host name"),
        ("--node-name", "Worker_7", "lower-case letters"),
        ("--node-name", "", "must not be empty"),
        ("--sample-interval", "1", "a bare number has no unit"),
        ("--sample-interval", "50ms", "from 100ms to 5m"),
        ("--sample-interval", "10m", "from 100ms to 5m"),
        ("--sample-interval", "soon", "invalid duration"),
        ("--top-host-processes", "-1", "from 0 to 10,000"),
        ("--top-host-processes", "ten", "whole number"),
        ("--max-series", "1e6", "whole number"),
        ("--mode", "remote", "auto, cluster, local"),
        ("--api-qps", "0", "above 0"),
        ("--api-qps", "nan", "above 0"),
        ("--log-level", "verbose", "debug, info, warning, error"),
        ("--log-format", "xml", "json, text"),
        ("--proc-root", "/nonexistent/proc", "is not a procfs"),
        ("--cgroup-root", "/nonexistent/cgroup", "is not a directory"),
    ],
)
def test_a_bad_flag_names_the_flag_its_variable_and_what_is_accepted(
    flag: str, value: str, accepted: str
) -> None:
    [problem] = problems_of([flag, value])

    assert problem.startswith(f"{flag} / {ENV_BY_FLAG[flag]} (from {flag}={value!r}): ")
    assert accepted in problem


def test_a_bad_variable_says_it_came_from_the_variable() -> None:
    [problem] = problems_of([], {"KUBEPULSE_SAMPLE_INTERVAL": "1"})

    assert problem == (
        "--sample-interval / KUBEPULSE_SAMPLE_INTERVAL (from KUBEPULSE_SAMPLE_INTERVAL='1'): "
        "a bare number has no unit; give a duration from 100ms to 5m, such as 1s"
    )


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(ConfigError) as caught:
        parse(["--mode", "x", "--max-series", "-5"], {"KUBEPULSE_LOG_LEVEL": "loud"})

    message = str(caught.value)
    assert message.startswith("invalid configuration (3 problems):\n")
    for name in ("--mode / KUBEPULSE_MODE", "--max-series", "KUBEPULSE_LOG_LEVEL='loud'"):
        assert name in message
    assert "kubepulse-exporter --help" in message
    # A ConfigError is a ValueError, as every input error of kubepulse is.
    assert isinstance(caught.value, ValueError)


def test_a_host_name_that_is_no_node_name_asks_for_one() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(
            [],
            {"KUBEPULSE_PROC_ROOT": FAKE_PROC, "KUBEPULSE_CGROUP_ROOT": FAKE_CGROUP},
            hostname=lambda: "my_laptop",
        )

    [problem] = caught.value.problems
    assert (problem.flag, problem.env) == ("--node-name", "NODE_NAME")
    assert "the host name 'my_laptop' is not a valid node name" in str(problem)


def test_an_unknown_flag_is_a_usage_error() -> None:
    with pytest.raises(UsageError) as caught:
        parse(["--listen", "1.2.3.4:5"])

    # Abbreviations are refused: "--listen" is not taken for --listen-address.
    assert "unrecognized arguments: --listen" in str(caught.value)
    assert caught.value.usage.startswith("usage: kubepulse-exporter serve")


def test_a_flag_without_its_value_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="expected one argument"):
        parse(["--mode"])


# ---------------------------------------------------------------- parts


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0.0.0.0:9847", ("0.0.0.0", 9847)),
        (":9847", ("0.0.0.0", 9847)),
        ("127.0.0.1:0", ("127.0.0.1", 0)),
        ("[::]:9847", ("::", 9847)),
        ("localhost:8080", ("localhost", 8080)),
        (" node-1.example.com:1 ", ("node-1.example.com", 1)),
    ],
)
def test_listen_addresses(text: str, expected: tuple[str, int]) -> None:
    assert parse_listen_address(text) == expected


@pytest.mark.parametrize("text", ["", "host", "host:", "[::1]", "[::1]9847", "[zz]:1", "h:-1"])
def test_listen_addresses_that_are_not(text: str) -> None:
    with pytest.raises(ValueError, match="host:port"):
        parse_listen_address(text)


def test_node_names() -> None:
    assert parse_node_name("ip-10-0-1-12.eu-west-1.compute.internal") == (
        "ip-10-0-1-12.eu-west-1.compute.internal"
    )
    for bad in ("-a", "a-", "a..b", "A", "a" * 254, "a b"):
        with pytest.raises(ValueError, match="node name"):
            parse_node_name(bad)


def test_a_likely_misspelt_variable_is_warned_about_and_others_are_not() -> None:
    config = parse(
        [],
        {
            "KUBEPULSE_SAMPLE_INTERVALL": "2s",
            "KUBEPULSE_ADAPTER_SOURCE": "embedded",
            "KUBEPULSE_CACHE": "/root/.cache/kubepulse",
            "KUBEPULSE_EXPORTER_SERVICE_HOST": "10.0.0.7",
            "KUBEPULSE_EXPORTER_PORT_9847_TCP": "tcp://10.0.0.7:9847",
            "KUBEPULSE_SOMETHING_ELSE": "1",
        },
    )

    assert config.warnings == (
        "ignoring environment variable KUBEPULSE_SAMPLE_INTERVALL; did you mean "
        "KUBEPULSE_SAMPLE_INTERVAL?",
    )
    assert config.sample_interval_ms == 1000


def test_describe_is_plain_data_for_the_start_up_log_line() -> None:
    config = parse(["--sample-interval", "1m30s", "--node-name", "n1"])

    described = config.describe()

    assert json.loads(json.dumps(described)) == described
    assert described["sample_interval"] == "1m30s"
    assert described["listen_address"] == "0.0.0.0:9847"
    # Every described setting has an origin under the same key.
    assert set(described) == set(config.origins)


def test_the_config_is_frozen() -> None:
    config = parse([])

    with pytest.raises(dataclasses.FrozenInstanceError):
        config.mode = "local"  # type: ignore[misc]


def test_help_names_every_variable() -> None:
    text = build_parser().format_help()

    for flag, env in ENV_BY_FLAG.items():
        assert flag in text
        assert f"[{env}]" in text
    assert "which PID|CGROUP-PATH" in " ".join(text.split())
