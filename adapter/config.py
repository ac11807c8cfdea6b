"""The adapter's settings: a YAML or JSON file, environment variables and flags, checked at start.

Every setting has a dotted key (its place in the file), a flag and an environment
variable. The first of these that gives a value wins:

    flag  >  environment variable  >  configuration file  >  default

The environment variable is ``KUBEPULSE_ADAPTER_`` followed by the key in upper case
with dots as underscores: ``sources.prometheus.url`` is
``KUBEPULSE_ADAPTER_SOURCES_PROMETHEUS_URL`` and ``--prometheus-url``. The file is named
by ``--config`` (or ``KUBEPULSE_ADAPTER_CONFIG``)::

    server: {address: 0.0.0.0, port: 6443}
    tls: {cert_file: /etc/kubepulse/tls/tls.crt, private_key_file: /etc/kubepulse/tls/tls.key}
    source: prometheus
    sources:
      prometheus: {url: http://prometheus.monitoring.svc:9090, timeout: 10s}
    external_metrics:
      - {name: orders_queue_depth, metric: queue_depth, selector: "queue=orders",
         statistic: max, window: 2m}

External metric rules exist only in the file. Everything is validated before the adapter
starts, and every problem is reported at once, each naming its key, where the value came
from and what is accepted::

    sources.prometheus.url (from --prometheus-url): not a URL (got 'foo'); use
    http(s)://host:port

``adapter --help`` lists every flag with its variable and default (see
:func:`build_parser`); ``docs/security.md`` explains the security settings.
"""

from __future__ import annotations

import argparse
import difflib
import ipaddress
import json
import os
import re
import urllib.parse
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from adapter.scrape.targets import parse_static_target
from kubepulse.duration import format_duration, parse_duration
from kubepulse.errors import KubepulseValueError
from kubepulse.metricquery import split_derived_name
from kubepulse.selector import parse_selector
from kubepulse.stats.aggregate import parse_aggregation

__all__ = [
    "ENV_PREFIX",
    "AdapterConfig",
    "AnalysisSettings",
    "AuthenticationSettings",
    "AuthorizationSettings",
    "ConfigError",
    "ConfigProblem",
    "EmbeddedSourceSettings",
    "ExternalMetricRule",
    "LogSettings",
    "PrometheusSourceSettings",
    "ResourceMetricsSettings",
    "ServerSettings",
    "SourceSettings",
    "TLSSettings",
    "build_parser",
    "load_config",
]

ENV_PREFIX = "KUBEPULSE_ADAPTER_"
_CONFIG_ENV = f"{ENV_PREFIX}CONFIG"
_SECOND = 1000
_MINUTE = 60 * _SECOND
_HOUR = 60 * _MINUTE
_DAY = 24 * _HOUR
# Suffixes kubelet's service links add to every Service's name (a Service called
# kubepulse-adapter yields KUBEPULSE_ADAPTER_PORT, ..._SERVICE_HOST): not typos of ours.
_SERVICE_LINK_SUFFIX = re.compile(r"^(SERVICE_HOST|SERVICE_PORT.*|PORT(_\d+_(TCP|UDP|SCTP).*)?)$")


# ------------------------------------------------------------------------ the settings


@dataclass(frozen=True)
class ServerSettings:
    """Where the HTTPS server listens and how it stops."""

    address: str = "0.0.0.0"  # noqa: S104 - a pod serves on every interface
    """IP address to bind (``--bind-address``); ``0.0.0.0`` or ``::`` for every interface."""
    port: int = 6443
    """TCP port (``server.port``, ``--secure-port``), 1 to 65535."""
    shutdown_timeout_ms: int = 25 * _SECOND
    """How long in-flight requests may finish after SIGTERM (``server.shutdown_timeout``)."""


@dataclass(frozen=True)
class TLSSettings:
    """The serving certificate and the TLS protocol settings."""

    cert_file: Path | None = None
    """PEM certificate chain to serve (``--tls-cert-file``); generated when absent."""
    private_key_file: Path | None = None
    """PEM private key of ``cert_file`` (``--tls-private-key-file``)."""
    cert_dir: Path = Path("/var/run/kubepulse-adapter/certs")
    """Where a self-signed pair is generated and kept (``--cert-dir``): ``ca.crt``
    (the APIService ``caBundle``), ``apiserver.crt``, ``apiserver.key``."""
    service_name: str = "kubepulse-adapter"
    """The adapter's Service, for the generated certificate's DNS names."""
    service_namespace: str = "kubepulse"
    """The Service's namespace, for the generated certificate's DNS names."""
    cluster_domain: str = "cluster.local"
    """Cluster DNS domain, for ``<service>.<namespace>.svc.<domain>``."""
    extra_sans: tuple[str, ...] = ()
    """More DNS names or IP addresses for the generated certificate."""
    min_version: Literal["1.2", "1.3"] = "1.2"
    """Oldest TLS version accepted."""
    cipher_suites: tuple[str, ...] = ()
    """OpenSSL names of the TLS 1.2 cipher suites; empty means the secure default set."""


@dataclass(frozen=True)
class EmbeddedSourceSettings:
    """The embedded source: the adapter scrapes exporters and annotated pods itself."""

    scrape_interval_ms: int = 15 * _SECOND
    """Time between two scrapes of one target (``--scrape-interval``)."""
    scrape_timeout_ms: int = 10 * _SECOND
    """Longest one scrape may take; shorter than the interval (``--scrape-timeout``)."""
    scrape_concurrency: int = 32
    """Most scrapes in flight at once (``--scrape-concurrency``)."""
    exporter_selector: str = "app.kubernetes.io/name=kubepulse-exporter"
    """Label selector of the exporter pods (``--exporter-selector``), already validated."""
    checkpoint_path: Path | None = Path("/var/lib/kubepulse-adapter/store.checkpoint")
    """File the store is checkpointed to (``--checkpoint-path``); ``None`` keeps no checkpoint."""
    checkpoint_interval_ms: int = 5 * _MINUTE
    """Time between checkpoints (``--checkpoint-interval``)."""
    retention_ms: int = 24 * _HOUR
    """How much history the store keeps (``--retention``)."""
    discovery: bool = True
    """Find exporter pods and annotated pods through kube-apiserver (``--no-discovery``
    leaves only the static targets)."""
    annotated_pods: bool = True
    """Scrape pods annotated ``prometheus.io/scrape: "true"`` (``--scrape-annotated-pods``)."""
    namespaces: tuple[str, ...] = ()
    """Namespaces whose pods are discovered; empty watches the whole cluster."""
    static_targets: tuple[str, ...] = ()
    """Fixed targets, ``URL[;role=pod;namespace=...;pod=...;node=...]`` (``--static-target``,
    repeatable), already validated."""
    keep_metrics: str | None = None
    """Regular expression: only metric names it matches entirely are stored."""
    drop_metrics: str | None = None
    """Regular expression: metric names it matches entirely are not stored."""


@dataclass(frozen=True)
class PrometheusSourceSettings:
    """The Prometheus source: every answer is a PromQL query."""

    url: str | None = None
    """Base URL of Prometheus or a PromQL-compatible server (``--prometheus-url``)."""
    timeout_ms: int = 10 * _SECOND
    """Longest one query may take (``--prometheus-timeout``)."""
    scrape_interval_ms: int = 15 * _SECOND
    """How often that Prometheus scrapes the targets (``--prometheus-scrape-interval``): the
    step and lookback of forecasts, as the embedded store's resolution is for it."""


@dataclass(frozen=True)
class SourceSettings:
    """Where metrics come from."""

    kind: Literal["embedded", "prometheus"] = "embedded"
    """The source in use (``source``, ``--source``)."""
    embedded: EmbeddedSourceSettings = field(default_factory=EmbeddedSourceSettings)
    prometheus: PrometheusSourceSettings = field(default_factory=PrometheusSourceSettings)


@dataclass(frozen=True)
class ExternalMetricRule:
    """One metric served under ``external.metrics.k8s.io``."""

    name: str
    """The name HPAs ask for."""
    metric: str
    """The series it is computed from."""
    selector: str = ""
    """Label selector the series must match (validated), on top of the HPA's own."""
    statistic: str = "avg"
    """Aggregation over the window: ``avg min max sum last rate`` or ``pNN``."""
    window_ms: int = _MINUTE
    """The window the statistic covers, 30 s to 24 h."""
    namespaced: bool = False
    """Only series whose ``namespace`` label is the namespace the HPA asks in; otherwise
    every namespace's series count, whichever namespace asks."""


@dataclass(frozen=True)
class AuthenticationSettings:
    """Delegated authentication (see ``docs/security.md``)."""

    enabled: bool = True
    """Authenticate requests; off only for local experiments (``--no-authentication``)."""
    token_review: bool = True
    """Accept bearer tokens, checked with TokenReviews."""
    client_certificates: bool = True
    """Accept client certificates signed by the cluster's client CA."""
    cache_ttl_ms: int = 10 * _SECOND
    """How long a valid token's TokenReview answer is reused."""
    failure_cache_ttl_ms: int = 2 * _SECOND
    """How long a refused token's answer is reused."""
    cache_size: int = 4096
    """Most TokenReview answers kept."""
    configmap_refresh_interval_ms: int = _MINUTE
    """How often the ``extension-apiserver-authentication`` ConfigMap is re-read."""
    tolerate_lookup_failure: bool = False
    """Start even when that ConfigMap cannot be read (front-proxy authentication stays off)."""
    token_audiences: tuple[str, ...] = ()
    """Audiences bearer tokens must be issued for; empty means kube-apiserver's."""


@dataclass(frozen=True)
class AuthorizationSettings:
    """Delegated authorization with SubjectAccessReviews."""

    enabled: bool = True
    """Authorize requests (``--no-authorization`` turns it off)."""
    allow_cache_ttl_ms: int = 10 * _SECOND
    """How long an "allowed" answer is reused."""
    deny_cache_ttl_ms: int = 5 * _SECOND
    """How long a "denied" answer is reused."""
    cache_size: int = 4096
    """Most SubjectAccessReview answers kept."""
    always_allow_groups: tuple[str, ...] = ("system:masters",)
    """Groups allowed without a review."""


@dataclass(frozen=True)
class AnalysisSettings:
    """``analysis.*``: the analyzers served as ``analysis.kubepulse.io``."""

    enabled: bool = True
    """Serve the analysis API; it lists and watches nodes, pods, namespaces,
    resourcequotas and horizontalpodautoscalers (``--no-analysis-api`` turns it off)."""


@dataclass(frozen=True)
class ResourceMetricsSettings:
    """``resource_metrics.*``: the resource metrics API, ``metrics.k8s.io`` (v1beta1)."""

    enabled: bool = False
    """Serve ``metrics.k8s.io`` (``kubectl top``, HPA Resource metrics) in place of
    metrics-server (``--resource-metrics-api``). Off by default: metrics-server usually
    owns that APIService, and only one server can be registered for it."""


@dataclass(frozen=True)
class LogSettings:
    """Logging."""

    level: Literal["debug", "info", "warning", "error"] = "info"
    """Least severe level written."""
    format: Literal["json", "text"] = "json"
    """``json``: one JSON object per line; ``text``: for people at a terminal."""


@dataclass(frozen=True)
class AdapterConfig:
    """Everything the adapter is configured with, validated."""

    server: ServerSettings = field(default_factory=ServerSettings)
    tls: TLSSettings = field(default_factory=TLSSettings)
    source: SourceSettings = field(default_factory=SourceSettings)
    staleness_ms: int = 2 * _MINUTE
    """Samples older than this are absent, not zero, so that HPAs hold (``--staleness``)."""
    external_metrics: tuple[ExternalMetricRule, ...] = ()
    advertised_statistics: tuple[str, ...] = ()
    """Derived-name suffixes (``p95-5m``, ``avg-1m-predict-2m``) that discovery lists for
    every metric, for tools that pick names from discovery (``--advertise-statistics``).
    Every derived name is served whether advertised or not."""
    authentication: AuthenticationSettings = field(default_factory=AuthenticationSettings)
    authorization: AuthorizationSettings = field(default_factory=AuthorizationSettings)
    kubeconfig: Path | None = None
    """kubeconfig for kube-apiserver; ``None`` means in-cluster, else ``$KUBECONFIG``."""
    kube_api_timeout_ms: int = 10 * _SECOND
    """Longest a TokenReview, SubjectAccessReview or ConfigMap read may take."""
    analysis: AnalysisSettings = field(default_factory=AnalysisSettings)
    resource_metrics: ResourceMetricsSettings = field(default_factory=ResourceMetricsSettings)
    log: LogSettings = field(default_factory=LogSettings)
    origins: Mapping[str, str] = field(default_factory=dict, compare=False)
    """Where each setting's value came from: ``flag --x``, ``env X``, ``file F``, ``default``."""
    warnings: tuple[str, ...] = field(default=(), compare=False)
    """Things worth logging once logging is set up (unknown ``KUBEPULSE_ADAPTER_*`` variables)."""

    def describe(self) -> dict[str, Any]:
        """The effective settings as plain data, for one log line at start (no secrets here)."""
        return {key: _plain(value) for key, value in _flatten_dataclass(self).items()}


@dataclass(frozen=True)
class ConfigProblem:
    """One invalid setting."""

    key: str
    origin: str
    message: str

    def __str__(self) -> str:
        where = f" (from {self.origin})" if self.origin and self.origin != "default" else ""
        return f"{self.key}{where}: {self.message}"


class ConfigError(KubepulseValueError):
    """The configuration is invalid; ``problems`` lists every bad setting."""

    def __init__(self, problems: Sequence[ConfigProblem]) -> None:
        self.problems = tuple(problems)
        lines = "\n".join(f"  - {problem}" for problem in self.problems)
        super().__init__(
            f"invalid configuration ({len(self.problems)} "
            f"problem{'s' if len(self.problems) != 1 else ''}):\n{lines}\n"
            "Run with --help for every setting, its flag, variable and default."
        )


# ------------------------------------------------------------------------ value parsers


class _InvalidValueError(Exception):
    """A value is not acceptable; the message says what is and is not."""


def _text(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise _InvalidValueError(f"expected a single value, got {_shown(value)}")
    return str(value).strip()


def _shown(value: Any) -> str:
    if isinstance(value, str):
        return repr(value)
    return json.dumps(value, default=str) if value is not None else "nothing"


class _Duration:
    """Parses a duration (``30s``) into milliseconds within ``[minimum_ms, maximum_ms]``."""

    def __init__(self, minimum_ms: int, maximum_ms: int) -> None:
        self.minimum_ms = minimum_ms
        self.maximum_ms = maximum_ms

    def __call__(self, value: Any) -> int:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            raise _InvalidValueError(
                f"a bare number has no unit (got {value}); write e.g. '{value}s'"
            )
        text = _text(value)
        try:
            milliseconds = parse_duration(text)
        except KubepulseValueError as exc:
            raise _InvalidValueError(str(exc)) from exc
        if not self.minimum_ms <= milliseconds <= self.maximum_ms:
            raise _InvalidValueError(
                f"out of range (got {text!r}); give a duration from "
                f"{format_duration(self.minimum_ms)} to {format_duration(self.maximum_ms)}"
            )
        return milliseconds


def _integer(minimum: int, maximum: int) -> Callable[[Any], int]:
    def parse(value: Any) -> int:
        text = _text(value)
        try:
            number = int(text, 10)
        except ValueError:
            raise _InvalidValueError(
                f"not a whole number (got {_shown(value)}); give one from {minimum} to {maximum}"
            ) from None
        if not minimum <= number <= maximum:
            raise _InvalidValueError(
                f"out of range (got {number}); give one from {minimum} to {maximum}"
            )
        return number

    return parse


_TRUE = frozenset({"true", "yes", "on", "1"})
_FALSE = frozenset({"false", "no", "off", "0"})


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = _text(value).lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise _InvalidValueError(f"not a boolean (got {_shown(value)}); use true or false")


def _choice(*choices: str) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        text = _text(value).lower()
        if text not in choices:
            raise _InvalidValueError(
                f"unknown value (got {_shown(value)}); use one of {', '.join(choices)}"
            )
        return text

    return parse


def _strings(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        items: Iterable[Any] = value.split(",")
    elif isinstance(value, (list, tuple)):
        items = value
    else:
        raise _InvalidValueError(
            f"expected a list or a comma-separated string, got {_shown(value)}"
        )
    result = []
    for item in items:
        if not isinstance(item, str):
            raise _InvalidValueError(f"every entry must be a string, got {_shown(item)}")
        if item.strip():
            result.append(item.strip())
    return tuple(result)


def _non_empty(what: str) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        text = _text(value)
        if not text:
            raise _InvalidValueError(f"must not be empty; give {what}")
        return text

    return parse


_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


def _dns_label(value: Any) -> str:
    text = _text(value)
    if not _DNS_LABEL.fullmatch(text):
        raise _InvalidValueError(
            f"not a DNS label (got {text!r}); use lower-case letters, digits and '-', "
            "at most 63, starting and ending with a letter or digit"
        )
    return text


def _domain(value: Any) -> str:
    text = _text(value).strip(".")
    if text and not all(_DNS_LABEL.fullmatch(label) for label in text.split(".")):
        raise _InvalidValueError(f"not a DNS domain (got {text!r}); e.g. cluster.local")
    return text


def _bind_address(value: Any) -> str:
    text = _text(value)
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise _InvalidValueError(
            f"not an IP address (got {text!r}); use 0.0.0.0 (every IPv4 interface), :: or one "
            "address such as 127.0.0.1"
        ) from None


def _subject_names(value: Any) -> tuple[str, ...]:
    names = _strings(value)
    for name in names:
        try:
            ipaddress.ip_address(name)
        except ValueError:
            if not all(_DNS_LABEL.fullmatch(label) for label in name.lower().split(".")):
                raise _InvalidValueError(
                    f"{name!r} is neither a DNS name nor an IP address; e.g. "
                    "metrics.example.com or 10.0.0.10"
                ) from None
    return names


def _optional_path(value: Any) -> Path | None:
    text = _text(value)
    return Path(text).expanduser() if text else None


def _path(value: Any) -> Path:
    path = _optional_path(value)
    if path is None:
        raise _InvalidValueError("must not be empty; give a directory path")
    return path


def _optional_url(value: Any) -> str | None:
    text = _text(value)
    if not text:
        return None
    problem = ""
    try:
        parts = urllib.parse.urlsplit(text)
        port = parts.port
    except ValueError as exc:
        problem = str(exc)
    else:
        if parts.scheme not in ("http", "https") or not parts.hostname:
            problem = "not a URL"
        elif port is not None and not 0 < port < 65536:
            problem = "port out of range"
        elif parts.query or parts.fragment:
            problem = "a base URL takes no query or fragment"
    if problem:
        raise _InvalidValueError(f"{problem} (got {text!r}); use http(s)://host:port")
    return text.rstrip("/")


def _selector(value: Any) -> str:
    text = _text(value)
    try:
        parse_selector(text)
    except KubepulseValueError as exc:
        raise _InvalidValueError(
            str(exc).splitlines()[0] + "; e.g. app.kubernetes.io/name=exporter"
        ) from exc
    return text


def _namespaces(value: Any) -> tuple[str, ...]:
    names = _strings(value)
    for name in names:
        if not _DNS_LABEL.fullmatch(name):
            raise _InvalidValueError(
                f"{name!r} is not a namespace name (lower-case letters, digits and '-')"
            )
    return names


def _static_targets(value: Any) -> tuple[str, ...]:
    targets = _strings(value)
    for target in targets:
        try:
            parse_static_target(target)
        except KubepulseValueError as exc:
            raise _InvalidValueError(str(exc)) from exc
    return targets


def _statistic_suffixes(value: Any) -> tuple[str, ...]:
    suffixes = _strings(value)
    for suffix in suffixes:
        try:
            split_derived_name(f"metric-{suffix}")
        except KubepulseValueError as exc:
            raise _InvalidValueError(
                f"{suffix!r} is not a statistic suffix: {exc}".splitlines()[0]
            ) from exc
    return suffixes


def _regex(value: Any) -> str | None:
    text = _text(value)
    if not text:
        return None
    try:
        re.compile(text)
    except re.error as exc:
        raise _InvalidValueError(
            f"not a regular expression (got {text!r}: {exc}); e.g. 'http_.*|kubepulse_.*'"
        ) from exc
    return text


def _cipher_suites(value: Any) -> tuple[str, ...]:
    names = _strings(value)
    for name in names:
        if not re.fullmatch(r"[A-Za-z0-9_-]+", name):
            raise _InvalidValueError(
                f"{name!r} is not an OpenSSL cipher suite name; e.g. ECDHE-ECDSA-AES128-GCM-SHA256"
            )
    return names


# ------------------------------------------------------------------------ the table


@dataclass(frozen=True)
class _Setting:
    key: str
    flag: str | None
    parse: Callable[[Any], Any]
    default: Any
    help: str
    boolean: bool = False
    repeatable: bool = False

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.key.upper().replace(".", "_")


def _settings() -> tuple[_Setting, ...]:
    server, tls = ServerSettings(), TLSSettings()
    embedded, prometheus = EmbeddedSourceSettings(), PrometheusSourceSettings()
    authn, authz, log = AuthenticationSettings(), AuthorizationSettings(), LogSettings()
    analysis = AnalysisSettings()
    resource_metrics = ResourceMetricsSettings()
    top = AdapterConfig()
    s = _Setting
    return (
        s("server.address", "--bind-address", _bind_address, server.address,
          "IP address to listen on"),
        s("server.port", "--secure-port", _integer(1, 65535), server.port,
          "HTTPS port"),
        s("server.shutdown_timeout", "--shutdown-timeout", _Duration(0, 10 * _MINUTE),
          server.shutdown_timeout_ms, "time in-flight requests get after SIGTERM"),
        s("tls.cert_file", "--tls-cert-file", _optional_path, tls.cert_file,
          "PEM certificate chain to serve; without it a self-signed pair is generated"),
        s("tls.private_key_file", "--tls-private-key-file", _optional_path,
          tls.private_key_file, "PEM private key of --tls-cert-file"),
        s("tls.cert_dir", "--cert-dir", _path, tls.cert_dir,
          "directory for the generated self-signed pair (ca.crt is the caBundle)"),
        s("tls.service_name", "--service-name", _dns_label, tls.service_name,
          "the adapter's Service name, for the generated certificate"),
        s("tls.service_namespace", "--service-namespace", _dns_label, tls.service_namespace,
          "the Service's namespace, for the generated certificate"),
        s("tls.cluster_domain", "--cluster-domain", _domain, tls.cluster_domain,
          "cluster DNS domain, for the generated certificate"),
        s("tls.extra_sans", "--tls-extra-sans", _subject_names, tls.extra_sans,
          "comma-separated extra DNS names or IPs for the generated certificate"),
        s("tls.min_version", "--tls-min-version", _choice("1.2", "1.3"), tls.min_version,
          "oldest TLS version accepted"),
        s("tls.cipher_suites", "--tls-cipher-suites", _cipher_suites, tls.cipher_suites,
          "comma-separated OpenSSL TLS 1.2 cipher suites (default: ECDHE with AES-GCM or "
          "ChaCha20-Poly1305)"),
        s("source", "--source", _choice("embedded", "prometheus"), SourceSettings().kind,
          "where metrics come from"),
        s("sources.prometheus.url", "--prometheus-url", _optional_url, prometheus.url,
          "Prometheus base URL, required with --source=prometheus"),
        s("sources.prometheus.timeout", "--prometheus-timeout", _Duration(_SECOND, 5 * _MINUTE),
          prometheus.timeout_ms, "longest one PromQL query may take"),
        s("sources.prometheus.scrape_interval", "--prometheus-scrape-interval",
          _Duration(_SECOND, 10 * _MINUTE), prometheus.scrape_interval_ms,
          "how often Prometheus scrapes the targets (forecast step and lookback)"),
        s("sources.embedded.scrape_interval", "--scrape-interval",
          _Duration(_SECOND, 10 * _MINUTE), embedded.scrape_interval_ms,
          "time between two scrapes of one target"),
        s("sources.embedded.scrape_timeout", "--scrape-timeout",
          _Duration(100, 10 * _MINUTE), embedded.scrape_timeout_ms,
          "longest one scrape may take (shorter than the interval)"),
        s("sources.embedded.scrape_concurrency", "--scrape-concurrency", _integer(1, 1024),
          embedded.scrape_concurrency, "most scrapes in flight at once"),
        s("sources.embedded.exporter_selector", "--exporter-selector", _selector,
          embedded.exporter_selector, "label selector of the exporter pods"),
        s("sources.embedded.checkpoint_path", "--checkpoint-path", _optional_path,
          embedded.checkpoint_path, "checkpoint file of the store; empty keeps none"),
        s("sources.embedded.checkpoint_interval", "--checkpoint-interval",
          _Duration(10 * _SECOND, _DAY), embedded.checkpoint_interval_ms,
          "time between two checkpoints"),
        s("sources.embedded.retention", "--retention", _Duration(5 * _MINUTE, 30 * _DAY),
          embedded.retention_ms, "history the store keeps"),
        s("sources.embedded.discovery", "--discovery", _boolean, embedded.discovery,
          "find exporter and annotated pods through kube-apiserver (--no-discovery: static "
          "targets only)", True),
        s("sources.embedded.annotated_pods", "--scrape-annotated-pods", _boolean,
          embedded.annotated_pods, "scrape pods annotated prometheus.io/scrape=true", True),
        s("sources.embedded.namespaces", "--discovery-namespaces", _namespaces,
          embedded.namespaces, "comma-separated namespaces to discover pods in (default: all)"),
        s("sources.embedded.static_targets", "--static-target", _static_targets,
          embedded.static_targets, "a fixed target, URL[;role=pod;namespace=NS;pod=NAME;"
          "node=NODE]; repeat the flag for more (comma-separated in the variable)",
          repeatable=True),
        s("sources.embedded.keep_metrics", "--keep-metrics", _regex, embedded.keep_metrics,
          "regular expression: store only metric names it matches entirely"),
        s("sources.embedded.drop_metrics", "--drop-metrics", _regex, embedded.drop_metrics,
          "regular expression: do not store metric names it matches entirely"),
        s("staleness", "--staleness", _Duration(5 * _SECOND, _HOUR), top.staleness_ms,
          "samples older than this are absent, so HPAs hold"),
        s("authentication.enabled", "--authentication", _boolean, authn.enabled,
          "authenticate requests (--no-authentication for local experiments only)", True),
        s("authentication.token_review", "--token-review", _boolean, authn.token_review,
          "accept bearer tokens, checked with TokenReviews", True),
        s("authentication.client_certificates", "--client-certificate-auth", _boolean,
          authn.client_certificates, "accept certificates from the cluster's client CA", True),
        s("authentication.cache_ttl", "--authentication-cache-ttl", _Duration(0, 10 * _MINUTE),
          authn.cache_ttl_ms, "how long a valid token's TokenReview is reused"),
        s("authentication.failure_cache_ttl", "--authentication-failure-cache-ttl",
          _Duration(0, 10 * _MINUTE), authn.failure_cache_ttl_ms,
          "how long a refused token's TokenReview is reused"),
        s("authentication.cache_size", "--authentication-cache-size", _integer(1, 1_000_000),
          authn.cache_size, "most TokenReview answers kept"),
        s("authentication.configmap_refresh_interval", "--authentication-config-refresh",
          _Duration(_SECOND, _DAY), authn.configmap_refresh_interval_ms,
          "how often kube-system/extension-apiserver-authentication is re-read"),
        s("authentication.tolerate_lookup_failure", "--authentication-tolerate-lookup-failure",
          _boolean, authn.tolerate_lookup_failure,
          "start even when that ConfigMap cannot be read", True),
        s("authentication.token_audiences", "--authentication-token-audiences", _strings,
          authn.token_audiences, "comma-separated audiences tokens must be issued for"),
        s("authorization.enabled", "--authorization", _boolean, authz.enabled,
          "authorize requests with SubjectAccessReviews", True),
        s("authorization.allow_cache_ttl", "--authorization-allow-cache-ttl",
          _Duration(0, 10 * _MINUTE), authz.allow_cache_ttl_ms,
          "how long an allowed answer is reused"),
        s("authorization.deny_cache_ttl", "--authorization-deny-cache-ttl",
          _Duration(0, 10 * _MINUTE), authz.deny_cache_ttl_ms,
          "how long a denied answer is reused"),
        s("authorization.cache_size", "--authorization-cache-size", _integer(1, 1_000_000),
          authz.cache_size, "most SubjectAccessReview answers kept"),
        s("authorization.always_allow_groups", "--authorization-always-allow-groups", _strings,
          authz.always_allow_groups, "comma-separated groups allowed without a review"),
        s("kubeconfig", "--kubeconfig", _optional_path, top.kubeconfig,
          "kubeconfig for kube-apiserver (default: in-cluster, else $KUBECONFIG)"),
        s("kube_api_timeout", "--kube-api-timeout", _Duration(_SECOND, 5 * _MINUTE),
          top.kube_api_timeout_ms, "longest a call to kube-apiserver may take"),
        s("analysis.enabled", "--analysis-api", _boolean, analysis.enabled,
          "serve the analyzers as analysis.kubepulse.io (needs list/watch on nodes, pods, "
          "namespaces, resourcequotas and horizontalpodautoscalers)", True),
        s("resource_metrics.enabled", "--resource-metrics-api", _boolean,
          resource_metrics.enabled,
          "serve the resource metrics API metrics.k8s.io (kubectl top, HPA cpu/memory) in "
          "place of metrics-server", True),
        s("log.level", "--log-level", _choice("debug", "info", "warning", "error"), log.level,
          "least severe level written"),
        s("log.format", "--log-format", _choice("json", "text"), log.format,
          "json: one object per line; text: for a terminal"),
        s("advertised_statistics", "--advertise-statistics", _statistic_suffixes,
          top.advertised_statistics, "comma-separated derived-name suffixes that discovery "
          "lists for every metric, e.g. p95-5m,avg-1m (docs/adapter.md)"),
        s("external_metrics", None, _external_metrics, top.external_metrics,
          "external metric rules (file only)"),
    )  # fmt: skip


_METRIC_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_.:-]{0,252}$")
_SERIES_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_RULE_KEYS = ("name", "metric", "selector", "statistic", "window", "namespaced")


def _external_metrics(value: Any) -> tuple[ExternalMetricRule, ...]:
    if value in (None, ""):
        return ()
    if not isinstance(value, list):
        raise _InvalidValueError(f"expected a list of rules, got {_shown(value)}")
    rules: list[ExternalMetricRule] = []
    problems: list[str] = []
    seen: set[str] = set()
    window = _Duration(30 * _SECOND, _DAY)
    for index, entry in enumerate(value):
        where = f"[{index}]"
        if not isinstance(entry, Mapping):
            problems.append(f"{where}: expected a mapping with {', '.join(_RULE_KEYS)}")
            continue
        unknown = sorted(set(map(str, entry)) - set(_RULE_KEYS))
        if unknown:
            problems.append(f"{where}: unknown key {unknown[0]!r}; use {', '.join(_RULE_KEYS)}")
            continue
        name = str(entry.get("name", "")).strip()
        metric = str(entry.get("metric", "")).strip()
        if not _METRIC_NAME.fullmatch(name):
            problems.append(
                f"{where}.name: not a metric name (got {name!r}); use letters, digits, "
                "'_', '.', ':' and '-', starting with a letter or '_'"
            )
        elif name in seen:
            problems.append(f"{where}.name: {name!r} is defined twice; names must be unique")
        seen.add(name)
        if not _SERIES_NAME.fullmatch(metric):
            problems.append(
                f"{where}.metric: not a series name (got {metric!r}); a Prometheus metric "
                "name such as queue_depth"
            )
        rule_parts: dict[str, Any] = {}
        for key, parse in (("selector", _selector), ("window", window)):
            if key in entry:
                try:
                    rule_parts[key] = parse(entry[key])
                except _InvalidValueError as exc:
                    problems.append(f"{where}.{key}: {exc}")
        namespaced = entry.get("namespaced", False)
        if not isinstance(namespaced, bool):
            problems.append(f"{where}.namespaced: expected true or false, got {_shown(namespaced)}")
        statistic = str(entry.get("statistic", "avg"))
        try:
            statistic = parse_aggregation(statistic).name
        except KubepulseValueError as exc:
            problems.append(f"{where}.statistic: {exc}")
        if not problems:
            rules.append(
                ExternalMetricRule(
                    name=name,
                    metric=metric,
                    selector=rule_parts.get("selector", ""),
                    statistic=statistic,
                    window_ms=rule_parts.get("window", _MINUTE),
                    namespaced=namespaced is True,
                )
            )
    if problems:
        raise _InvalidValueError("; ".join(problems))
    return tuple(rules)


_SETTINGS = _settings()
_BY_KEY = {setting.key: setting for setting in _SETTINGS}
_SECTIONS = frozenset(
    ".".join(setting.key.split(".")[:depth])
    for setting in _SETTINGS
    for depth in range(1, setting.key.count(".") + 1)
)


# ------------------------------------------------------------------------ loading


def build_parser(prog: str = "kubepulse-adapter") -> argparse.ArgumentParser:
    """The command line: ``--config`` and one flag per setting (values checked later)."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description=(
            "The kubepulse custom and external metrics API server. Each setting can also be "
            f"given as an environment variable ({ENV_PREFIX}<KEY>) or in the --config file; "
            "a flag wins over the variable, which wins over the file."
        ),
        argument_default=argparse.SUPPRESS,
    )
    parser.add_argument(
        "--config",
        metavar="FILE",
        help=f"YAML or JSON configuration file (env {_CONFIG_ENV})",
    )
    for setting in _SETTINGS:
        if setting.flag is None:
            continue
        text = (
            f"{setting.help} [{setting.key}; env {setting.env}; default {_plain_default(setting)}]"
        )
        destination = setting.key.replace(".", "__")
        if setting.boolean:
            parser.add_argument(
                setting.flag, dest=destination, action=argparse.BooleanOptionalAction, help=text
            )
        elif setting.repeatable:
            parser.add_argument(
                setting.flag, dest=destination, action="append", metavar="VALUE", help=text
            )
        else:
            parser.add_argument(setting.flag, dest=destination, metavar="VALUE", help=text)
    return parser


def load_config(
    argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None
) -> AdapterConfig:
    """Read flags, environment and file into a validated :class:`AdapterConfig`.

    ``argv`` defaults to no flags and ``environ`` to ``os.environ``. An unknown flag makes
    argparse print the usage and exit with status 2, as usual.

    Raises:
        ConfigError: one or more settings are invalid; every problem is listed.
    """
    env = dict(os.environ if environ is None else environ)
    flags = vars(build_parser().parse_args(list(argv or ())))
    problems: list[ConfigProblem] = []

    config_path = flags.pop("config", None) or env.get(_CONFIG_ENV) or None
    file_values: dict[str, Any] = {}
    file_origin = ""
    if config_path:
        file_origin = f"file {config_path}"
        file_values = _read_file(Path(config_path), problems)

    raw: dict[str, tuple[Any, str]] = {}
    for setting in _SETTINGS:
        destination = setting.key.replace(".", "__")
        if destination in flags:
            value, flag = flags[destination], str(setting.flag)
            if setting.boolean and value is False:
                flag = f"--no-{flag.removeprefix('--')}"
            raw[setting.key] = (value, flag)
        elif setting.flag is not None and setting.env in env:
            raw[setting.key] = (env[setting.env], f"env {setting.env}")
        elif setting.key in file_values:
            raw[setting.key] = (file_values[setting.key], file_origin)

    values: dict[str, Any] = {}
    origins: dict[str, str] = {}
    for setting in _SETTINGS:
        if setting.key in raw:
            value, origin = raw[setting.key]
            try:
                values[setting.key] = setting.parse(value)
            except _InvalidValueError as exc:
                problems.append(ConfigProblem(setting.key, origin, str(exc)))
                continue
            origins[setting.key] = origin
        else:
            values[setting.key] = setting.default
            origins[setting.key] = "default"
    if not problems:
        problems += _cross_checks(values, origins)
    if problems:
        raise ConfigError(problems)
    return _assemble(values, origins, _unknown_environment(env))


def _read_file(path: Path, problems: list[ConfigProblem]) -> dict[str, Any]:
    origin = f"file {path}"
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        problems.append(
            ConfigProblem(
                "--config", "", f"cannot read {path} ({exc.strerror or exc}); check the path"
            )
        )
        return {}
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or exc
        problems.append(
            ConfigProblem("--config", "", f"{path} is not valid YAML or JSON{where}: {problem}")
        )
        return {}
    if document is None:
        return {}
    if not isinstance(document, Mapping):
        problems.append(
            ConfigProblem("--config", "", f"{path} must hold a mapping of settings at the top")
        )
        return {}
    flat: dict[str, Any] = {}
    _flatten(document, "", flat, problems, origin)
    return flat


def _flatten(
    mapping: Mapping[Any, Any],
    prefix: str,
    flat: dict[str, Any],
    problems: list[ConfigProblem],
    origin: str,
) -> None:
    for raw_key, value in mapping.items():
        key = f"{prefix}{raw_key}"
        if key in _BY_KEY:
            flat[key] = value
        elif key in _SECTIONS:
            if isinstance(value, Mapping):
                _flatten(value, f"{key}.", flat, problems, origin)
            elif value is not None:
                problems.append(
                    ConfigProblem(
                        key, origin, f"is a section; expected a mapping, got {_shown(value)}"
                    )
                )
        else:
            problems.append(ConfigProblem(key, origin, _unknown_key_message(key)))


def _unknown_key_message(key: str) -> str:
    candidates = sorted(_BY_KEY) + sorted(_SECTIONS)
    close = difflib.get_close_matches(key, candidates, n=1, cutoff=0.6)
    hint = f"did you mean {close[0]!r}?" if close else "see --help for the keys"
    return f"unknown setting; {hint}"


def _cross_checks(values: Mapping[str, Any], origins: Mapping[str, str]) -> list[ConfigProblem]:
    problems: list[ConfigProblem] = []

    def problem(key: str, message: str) -> None:
        problems.append(ConfigProblem(key, origins.get(key, ""), message))

    if values["source"] == "prometheus" and values["sources.prometheus.url"] is None:
        problem(
            "sources.prometheus.url",
            "required when source is 'prometheus'; give --prometheus-url "
            "http(s)://host:port, or use source 'embedded'",
        )
    cert_file, key_file = values["tls.cert_file"], values["tls.private_key_file"]
    if (cert_file is None) != (key_file is None):
        missing = "tls.private_key_file" if key_file is None else "tls.cert_file"
        problem(
            missing,
            "tls.cert_file and tls.private_key_file go together; give both, or neither to "
            "generate a self-signed certificate into tls.cert_dir",
        )
    for key in ("tls.cert_file", "tls.private_key_file", "kubeconfig"):
        path = values[key]
        if path is not None and not path.is_file():
            problem(key, f"no such file (got '{path}'); check the path or the volume mount")
    if values["sources.embedded.scrape_timeout"] >= values["sources.embedded.scrape_interval"]:
        problem(
            "sources.embedded.scrape_timeout",
            f"not shorter than the scrape interval "
            f"({format_duration(values['sources.embedded.scrape_interval'])}), so one target's "
            "scrapes could overlap; give less, e.g. 10s for 15s",
        )
    if (
        values["source"] == "embedded"
        and not values["sources.embedded.discovery"]
        and not values["sources.embedded.static_targets"]
    ):
        problem(
            "sources.embedded.discovery",
            "off, and no static targets are given, so nothing would be scraped; turn "
            "discovery on or give --static-target URL",
        )
    if values["authorization.enabled"] and not values["authentication.enabled"]:
        problem(
            "authorization.enabled",
            "authorization needs authentication (an unidentified caller can only be denied); "
            "turn both off for a local experiment, or both on",
        )
    return problems


def _unknown_environment(env: Mapping[str, str]) -> tuple[str, ...]:
    known = {setting.env for setting in _SETTINGS if setting.flag is not None} | {_CONFIG_ENV}
    warnings = []
    for name in sorted(env):
        if not name.startswith(ENV_PREFIX) or name in known:
            continue
        if _SERVICE_LINK_SUFFIX.match(name[len(ENV_PREFIX) :]):
            continue
        close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.8)
        hint = f"; did you mean {close[0]}?" if close else ""
        warnings.append(f"ignoring unknown environment variable {name}{hint}")
    return tuple(warnings)


def _assemble(
    values: Mapping[str, Any], origins: Mapping[str, str], warnings: tuple[str, ...]
) -> AdapterConfig:
    v = values
    return AdapterConfig(
        server=ServerSettings(
            address=v["server.address"],
            port=v["server.port"],
            shutdown_timeout_ms=v["server.shutdown_timeout"],
        ),
        tls=TLSSettings(
            cert_file=v["tls.cert_file"],
            private_key_file=v["tls.private_key_file"],
            cert_dir=v["tls.cert_dir"],
            service_name=v["tls.service_name"],
            service_namespace=v["tls.service_namespace"],
            cluster_domain=v["tls.cluster_domain"],
            extra_sans=tuple(v["tls.extra_sans"]),
            min_version=v["tls.min_version"],
            cipher_suites=tuple(v["tls.cipher_suites"]),
        ),
        source=SourceSettings(
            kind=v["source"],
            embedded=EmbeddedSourceSettings(
                scrape_interval_ms=v["sources.embedded.scrape_interval"],
                scrape_timeout_ms=v["sources.embedded.scrape_timeout"],
                scrape_concurrency=v["sources.embedded.scrape_concurrency"],
                exporter_selector=v["sources.embedded.exporter_selector"],
                checkpoint_path=v["sources.embedded.checkpoint_path"],
                checkpoint_interval_ms=v["sources.embedded.checkpoint_interval"],
                retention_ms=v["sources.embedded.retention"],
                discovery=v["sources.embedded.discovery"],
                annotated_pods=v["sources.embedded.annotated_pods"],
                namespaces=tuple(v["sources.embedded.namespaces"]),
                static_targets=tuple(v["sources.embedded.static_targets"]),
                keep_metrics=v["sources.embedded.keep_metrics"],
                drop_metrics=v["sources.embedded.drop_metrics"],
            ),
            prometheus=PrometheusSourceSettings(
                url=v["sources.prometheus.url"],
                timeout_ms=v["sources.prometheus.timeout"],
                scrape_interval_ms=v["sources.prometheus.scrape_interval"],
            ),
        ),
        staleness_ms=v["staleness"],
        external_metrics=tuple(v["external_metrics"]),
        advertised_statistics=tuple(v["advertised_statistics"]),
        authentication=AuthenticationSettings(
            enabled=v["authentication.enabled"],
            token_review=v["authentication.token_review"],
            client_certificates=v["authentication.client_certificates"],
            cache_ttl_ms=v["authentication.cache_ttl"],
            failure_cache_ttl_ms=v["authentication.failure_cache_ttl"],
            cache_size=v["authentication.cache_size"],
            configmap_refresh_interval_ms=v["authentication.configmap_refresh_interval"],
            tolerate_lookup_failure=v["authentication.tolerate_lookup_failure"],
            token_audiences=tuple(v["authentication.token_audiences"]),
        ),
        authorization=AuthorizationSettings(
            enabled=v["authorization.enabled"],
            allow_cache_ttl_ms=v["authorization.allow_cache_ttl"],
            deny_cache_ttl_ms=v["authorization.deny_cache_ttl"],
            cache_size=v["authorization.cache_size"],
            always_allow_groups=tuple(v["authorization.always_allow_groups"]),
        ),
        kubeconfig=v["kubeconfig"],
        kube_api_timeout_ms=v["kube_api_timeout"],
        analysis=AnalysisSettings(enabled=v["analysis.enabled"]),
        resource_metrics=ResourceMetricsSettings(enabled=v["resource_metrics.enabled"]),
        log=LogSettings(level=v["log.level"], format=v["log.format"]),
        origins=dict(origins),
        warnings=warnings,
    )


def _plain_default(setting: _Setting) -> str:
    value = setting.default
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(setting.parse, _Duration):
        return format_duration(value)
    if isinstance(value, tuple):
        return ",".join(map(str, value)) or "none"
    return "none" if value is None else str(value)


def _flatten_dataclass(instance: Any, prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for name in instance.__dataclass_fields__:
        if name in ("origins", "warnings"):
            continue
        value = getattr(instance, name)
        if hasattr(value, "__dataclass_fields__") and not isinstance(value, ExternalMetricRule):
            flat.update(_flatten_dataclass(value, f"{prefix}{name}."))
        else:
            flat[f"{prefix}{name}"] = value
    return flat


def _plain(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple):
        return [_plain(item) for item in value]
    if isinstance(value, ExternalMetricRule):
        return {name: getattr(value, name) for name in value.__dataclass_fields__}
    return value
