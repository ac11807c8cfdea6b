"""Configuration: flag > environment > file > default, and an error for every bad value."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from adapter.config import (
    AdapterConfig,
    ConfigError,
    ExternalMetricRule,
    build_parser,
    load_config,
)


def write(tmp_path: Path, document: Any, name: str = "adapter.yaml") -> Path:
    path = tmp_path / name
    path.write_text(document if isinstance(document, str) else yaml.safe_dump(document))
    return path


def problems(argv: list[str] | None = None, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(argv or [], env or {})
    return [str(problem) for problem in caught.value.problems]


def test_nothing_given_is_the_documented_defaults() -> None:
    config = load_config([], {})
    assert config == AdapterConfig()
    assert set(config.origins.values()) == {"default"}
    assert config.server.port == 6443
    assert config.source.kind == "embedded"
    assert config.authentication.cache_ttl_ms == 10_000
    assert config.authentication.failure_cache_ttl_ms == 2_000
    assert config.authorization.allow_cache_ttl_ms == 10_000
    assert config.authorization.deny_cache_ttl_ms == 5_000
    assert config.authorization.always_allow_groups == ("system:masters",)
    assert config.warnings == ()


def test_a_flag_beats_the_environment_which_beats_the_file(tmp_path: Path) -> None:
    config_file = write(tmp_path, {"server": {"port": 7000}, "log": {"level": "debug"}})
    env = {"KUBEPULSE_ADAPTER_SERVER_PORT": "8000"}
    flags = ["--config", str(config_file)]

    assert load_config([*flags, "--secure-port", "9000"], env).server.port == 9000
    from_env = load_config(flags, env)
    assert from_env.server.port == 8000
    assert from_env.origins["server.port"] == "env KUBEPULSE_ADAPTER_SERVER_PORT"
    from_file = load_config(flags, {})
    assert from_file.server.port == 7000
    assert from_file.origins["server.port"] == f"file {config_file}"
    assert from_file.log.level == "debug"
    assert load_config([], {}).server.port == 6443


def test_the_file_can_be_named_by_the_environment_and_be_json(tmp_path: Path) -> None:
    config_file = tmp_path / "adapter.json"
    config_file.write_text(json.dumps({"source": "prometheus", "sources": {"prometheus": {
        "url": "http://127.0.0.1:9090/", "timeout": "30s"}}}))  # fmt: skip
    config = load_config([], {"KUBEPULSE_ADAPTER_CONFIG": str(config_file)})
    assert config.source.kind == "prometheus"
    assert config.source.prometheus.url == "http://127.0.0.1:9090"
    assert config.source.prometheus.timeout_ms == 30_000


def test_every_kind_of_value_is_read_from_flags() -> None:
    config = load_config(
        [
            "--bind-address=127.0.0.1",
            "--tls-extra-sans=metrics.example.com, 10.0.0.10",
            "--tls-min-version=1.3",
            "--scrape-interval=30s",
            "--scrape-timeout=20s",
            "--checkpoint-path=",
            "--no-authorization",
            "--no-token-review",
            "--authorization-always-allow-groups=",
            "--authentication-token-audiences=kubepulse,api",
            "--log-format=text",
        ],
        {},
    )
    assert config.server.address == "127.0.0.1"
    assert config.tls.extra_sans == ("metrics.example.com", "10.0.0.10")
    assert config.tls.min_version == "1.3"
    assert config.source.embedded.scrape_interval_ms == 30_000
    assert config.source.embedded.checkpoint_path is None
    assert config.authorization.enabled is False
    assert config.authentication.token_review is False
    assert config.authorization.always_allow_groups == ()
    assert config.authentication.token_audiences == ("kubepulse", "api")
    assert config.log.format == "text"


def test_static_targets_repeat_as_flags_and_list_in_the_variable() -> None:
    app = "http://127.0.0.1:8080/metrics;role=pod;namespace=demo;pod=web-0"
    exporter = "http://127.0.0.1:9847/metrics"
    config = load_config(
        ["--no-discovery", f"--static-target={app}", "--static-target", exporter,
         "--keep-metrics=http_.*", "--discovery-namespaces=demo,prod"],
        {},
    )  # fmt: skip
    embedded = config.source.embedded
    assert embedded.static_targets == (app, exporter)
    assert embedded.discovery is False
    assert embedded.keep_metrics == "http_.*"
    assert embedded.namespaces == ("demo", "prod")
    from_env = load_config(
        [], {"KUBEPULSE_ADAPTER_SOURCES_EMBEDDED_STATIC_TARGETS": f"{app},{exporter}"}
    )
    assert from_env.source.embedded.static_targets == (app, exporter)


def test_bad_static_targets_and_patterns_say_what_is_expected() -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(
            ["--static-target=ftp://x", "--drop-metrics=(", "--discovery-namespaces=A_b"], {}
        )
    text = str(caught.value)
    assert "sources.embedded.static_targets (from --static-target): static target 'ftp://x'" in text
    assert "sources.embedded.drop_metrics (from --drop-metrics): not a regular expression" in text
    assert (
        "sources.embedded.namespaces (from --discovery-namespaces): 'A_b' is not a namespace"
        in text
    )


def test_advertised_statistics_are_derived_name_suffixes() -> None:
    config = load_config(["--advertise-statistics=p95-5m, avg-1m-predict-2m-holt"], {})
    assert config.advertised_statistics == ("p95-5m", "avg-1m-predict-2m-holt")
    with pytest.raises(
        ConfigError, match=r"advertised_statistics \(from --advertise-statistics\): 'p95-5x'"
    ):
        load_config(["--advertise-statistics=p95-5x"], {})


def test_booleans_from_the_environment_and_the_file(tmp_path: Path) -> None:
    env = {"KUBEPULSE_ADAPTER_AUTHENTICATION_TOLERATE_LOOKUP_FAILURE": "Yes"}
    assert load_config([], env).authentication.tolerate_lookup_failure is True
    config_file = write(tmp_path, {"authorization": {"enabled": False}})
    assert load_config(["--config", str(config_file)], {}).authorization.enabled is False


def test_external_metric_rules_come_from_the_file(tmp_path: Path) -> None:
    config_file = write(
        tmp_path,
        {
            "external_metrics": [
                {"name": "orders_queue_depth", "metric": "queue_depth",
                 "selector": "queue=orders", "statistic": "P95", "window": "2m"},
                {"name": "backlog", "metric": "jobs_pending", "namespaced": True},
            ]
        },
    )  # fmt: skip
    config = load_config(["--config", str(config_file)], {})
    assert config.external_metrics == (
        ExternalMetricRule("orders_queue_depth", "queue_depth", "queue=orders", "p95", 120_000),
        ExternalMetricRule("backlog", "jobs_pending", "", "avg", 60_000, namespaced=True),
    )
    bad = write(tmp_path, {"external_metrics": [{"name": "a", "metric": "b", "namespaced": "yes"}]})
    with pytest.raises(ConfigError, match=r"\[0\]\.namespaced: expected true or false"):
        load_config(["--config", str(bad)], {})


def test_the_brief_example_error_reads_exactly_so() -> None:
    assert problems(["--prometheus-url", "foo"]) == [
        "sources.prometheus.url (from --prometheus-url): not a URL (got 'foo'); "
        "use http(s)://host:port"
    ]


@pytest.mark.parametrize(
    ("flag", "value", "key", "expected"),
    [
        ("--secure-port", "abc", "server.port",
         "not a whole number (got 'abc'); give one from 1 to 65535"),
        ("--secure-port", "0", "server.port", "out of range (got 0)"),
        ("--secure-port", "70000", "server.port", "out of range (got 70000)"),
        ("--bind-address", "localhost", "server.address", "not an IP address (got 'localhost')"),
        ("--shutdown-timeout", "1h", "server.shutdown_timeout", "from 0s to 10m"),
        ("--prometheus-url", "ftp://p:21", "sources.prometheus.url", "not a URL"),
        ("--prometheus-url", "http://p:99999", "sources.prometheus.url", "(got 'http://p:99999')"),
        ("--prometheus-url", "http://p:9090/?x=1", "sources.prometheus.url", "no query"),
        ("--prometheus-timeout", "15", "sources.prometheus.timeout", "has no unit"),
        ("--prometheus-timeout", "5x", "sources.prometheus.timeout", "unknown unit 'x'"),
        ("--scrape-interval", "500ms", "sources.embedded.scrape_interval", "from 1s to 10m"),
        ("--scrape-concurrency", "0", "sources.embedded.scrape_concurrency", "from 1 to 1024"),
        ("--exporter-selector", "app in (a", "sources.embedded.exporter_selector",
         "invalid label selector"),
        ("--retention", "1y", "sources.embedded.retention", "from 5m to 30d"),
        ("--checkpoint-interval", "1s", "sources.embedded.checkpoint_interval", "from 10s to 1d"),
        ("--staleness", "1s", "staleness", "from 5s to 1h"),
        ("--source", "thanos", "source", "use one of embedded, prometheus"),
        ("--log-level", "verbose", "log.level", "use one of debug, info, warning, error"),
        ("--log-format", "xml", "log.format", "use one of json, text"),
        ("--tls-min-version", "1.1", "tls.min_version", "use one of 1.2, 1.3"),
        ("--tls-cipher-suites", "RC4 MD5", "tls.cipher_suites", "not an OpenSSL cipher suite name"),
        ("--service-name", "Kubepulse_Adapter", "tls.service_name", "not a DNS label"),
        ("--service-namespace", "-x", "tls.service_namespace", "not a DNS label"),
        ("--cluster-domain", "bad_domain", "tls.cluster_domain", "not a DNS domain"),
        ("--tls-extra-sans", "ok.example,not a name", "tls.extra_sans",
         "neither a DNS name nor an IP address"),
        ("--cert-dir", "", "tls.cert_dir", "must not be empty"),
        ("--authentication-cache-ttl", "20m", "authentication.cache_ttl", "from 0s to 10m"),
        ("--authentication-cache-size", "0", "authentication.cache_size", "from 1 to 1000000"),
        ("--authentication-config-refresh", "0s", "authentication.configmap_refresh_interval",
         "from 1s to 1d"),
        ("--authorization-deny-cache-ttl", "-1s", "authorization.deny_cache_ttl",
         "invalid duration"),
        ("--kube-api-timeout", "0s", "kube_api_timeout", "from 1s to 5m"),
    ],
)  # fmt: skip
def test_every_bad_flag_value_is_named_with_what_is_accepted(
    flag: str, value: str, key: str, expected: str
) -> None:
    found = problems([f"{flag}={value}"])
    assert len(found) == 1
    assert found[0].startswith(f"{key} (from {flag}): ")
    assert expected in found[0]


def test_bad_environment_values_name_the_variable() -> None:
    found = problems(env={"KUBEPULSE_ADAPTER_AUTHENTICATION_ENABLED": "maybe"})
    assert found == [
        "authentication.enabled (from env KUBEPULSE_ADAPTER_AUTHENTICATION_ENABLED): not a "
        "boolean (got 'maybe'); use true or false"
    ]


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ({"server": {"port": "seven"}}, "server.port (from file {path}): not a whole number"),
        ({"server": {"port": [1]}}, "server.port (from file {path}): expected a single value"),
        ({"sources": {"embedded": {"scrape_interval": 15}}},
         "sources.embedded.scrape_interval (from file {path}): a bare number has no unit (got 15)"),
        ({"sources": {"prometheus": {"ulr": "x"}}},
         "sources.prometheus.ulr (from file {path}): unknown setting; did you mean "
         "'sources.prometheus.url'?"),
        ({"listen": {"port": 1}}, "listen (from file {path}): unknown setting; see --help"),
        ({"tls": "yes"}, "tls (from file {path}): is a section; expected a mapping"),
        ({"authorization": {"always_allow_groups": [1]}}, "every entry must be a string"),
        ({"external_metrics": {"name": "x"}}, "expected a list of rules"),
        ({"external_metrics": ["x"]}, "[0]: expected a mapping"),
        ({"external_metrics": [{"name": "a", "metric": "m", "query": "up"}]},
         "[0]: unknown key 'query'"),
        ({"external_metrics": [{"name": "a b", "metric": "m"}]}, "[0].name: not a metric name"),
        ({"external_metrics": [{"name": "a", "metric": "m"}, {"name": "a", "metric": "n"}]},
         "[1].name: 'a' is defined twice"),
        ({"external_metrics": [{"name": "a", "metric": "m-1"}]}, "[0].metric: not a series name"),
        ({"external_metrics": [{"name": "a", "metric": "m", "selector": "x in ("}]},
         "[0].selector: invalid label selector"),
        ({"external_metrics": [{"name": "a", "metric": "m", "statistic": "median"}]},
         "[0].statistic: unknown aggregation 'median'"),
        ({"external_metrics": [{"name": "a", "metric": "m", "window": "10s"}]},
         "[0].window: out of range (got '10s'); give a duration from 30s to 1d"),
    ],
)  # fmt: skip
def test_every_bad_file_value_is_named(tmp_path: Path, document: Any, expected: str) -> None:
    config_file = write(tmp_path, document)
    found = problems(["--config", str(config_file)])
    assert len(found) == 1, found
    assert expected.format(path=config_file) in found[0]


def test_files_that_are_not_settings_say_why(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    assert problems(["--config", str(missing)]) == [
        f"--config: cannot read {missing} (No such file or directory); check the path"
    ]
    broken = write(tmp_path, "server:\n  port: 1\n bad: [\n", "broken.yaml")
    (message,) = problems(["--config", str(broken)])
    assert message.startswith(f"--config: {broken} is not valid YAML or JSON at line 3")
    listed = write(tmp_path, "- 1\n- 2\n", "list.yaml")
    assert problems(["--config", str(listed)]) == [
        f"--config: {listed} must hold a mapping of settings at the top"
    ]
    empty = write(tmp_path, "", "empty.yaml")
    assert load_config(["--config", str(empty)], {}) == AdapterConfig()


def test_settings_that_only_make_sense_together_are_checked(tmp_path: Path) -> None:
    assert problems(["--source=prometheus"]) == [
        "sources.prometheus.url: required when source is 'prometheus'; give --prometheus-url "
        "http(s)://host:port, or use source 'embedded'"
    ]
    cert = tmp_path / "tls.crt"
    cert.write_text("x")
    (only_cert,) = problems([f"--tls-cert-file={cert}"])
    assert only_cert.startswith("tls.private_key_file: tls.cert_file and tls.private_key_file")
    assert problems([f"--tls-cert-file={cert}", f"--tls-private-key-file={tmp_path}/k"]) == [
        f"tls.private_key_file (from --tls-private-key-file): no such file (got '{tmp_path}/k'); "
        "check the path or the volume mount"
    ]
    assert problems([f"--kubeconfig={tmp_path}/kc"])[0].startswith(
        "kubeconfig (from --kubeconfig): no such file"
    )
    assert problems(["--scrape-interval=10s", "--scrape-timeout=15s"]) == [
        "sources.embedded.scrape_timeout (from --scrape-timeout): not shorter than the "
        "scrape interval (10s), so one target's scrapes could overlap; give less, e.g. 10s "
        "for 15s"
    ]
    assert problems(["--no-discovery"]) == [
        "sources.embedded.discovery (from --no-discovery): off, and no static targets are "
        "given, so nothing would be scraped; turn discovery on or give --static-target URL"
    ]
    assert problems(["--no-authentication"]) == [
        "authorization.enabled: authorization needs authentication (an unidentified caller "
        "can only be denied); turn both off for a local experiment, or both on"
    ]
    local = load_config(["--no-authentication", "--no-authorization"], {})
    assert not local.authentication.enabled
    assert not local.authorization.enabled


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    config_file = write(tmp_path, {"log": {"format": "xml"}, "typo": 1})
    with pytest.raises(ConfigError) as caught:
        load_config(["--config", str(config_file), "--secure-port=x"], {})
    keys = sorted(problem.key for problem in caught.value.problems)
    assert keys == ["log.format", "server.port", "typo"]
    message = str(caught.value)
    assert message.startswith("invalid configuration (3 problems):\n  - ")
    assert message.endswith("Run with --help for every setting, its flag, variable and default.")


def test_unknown_variables_are_warned_about_but_service_links_are_not() -> None:
    config = load_config(
        [],
        {
            "KUBEPULSE_ADAPTER_SERVER_PROT": "1",
            "KUBEPULSE_ADAPTER_PORT": "tcp://10.0.0.7:443",
            "KUBEPULSE_ADAPTER_PORT_443_TCP_ADDR": "10.0.0.7",
            "KUBEPULSE_ADAPTER_SERVICE_HOST": "10.0.0.7",
            "KUBEPULSE_ADAPTER_SERVICE_PORT_HTTPS": "443",
            "UNRELATED": "x",
        },
    )
    assert config.warnings == (
        "ignoring unknown environment variable KUBEPULSE_ADAPTER_SERVER_PROT; did you mean "
        "KUBEPULSE_ADAPTER_SERVER_PORT?",
    )


def test_help_lists_every_flag_with_its_variable_and_default(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["--help"])
    assert exited.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "--prometheus-url VALUE" in text
    assert "env KUBEPULSE_ADAPTER_SOURCES_PROMETHEUS_URL" in text
    assert "default 15s" in text  # durations shown as durations
    assert "--authorization, --no-authorization" in text


def test_an_unknown_flag_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        load_config(["--no-such-flag"], {})
    assert exited.value.code == 2
    assert "unrecognized arguments: --no-such-flag" in capsys.readouterr().err


def test_describe_is_plain_data_for_one_log_line() -> None:
    description = load_config(["--tls-extra-sans=a.example"], {}).describe()
    json.dumps(description)  # must not raise
    assert description["server.port"] == 6443
    assert description["tls.extra_sans"] == ["a.example"]
    assert description["tls.cert_dir"] == "/var/run/kubepulse-adapter/certs"
    assert "origins" not in description
    assert "warnings" not in description
