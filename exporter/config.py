"""The exporter's settings: flags and environment variables, checked before anything starts.

Every setting is a flag and an environment variable. The first that gives a value wins:

    flag  >  environment variable  >  default

An environment variable set to the empty string counts as unset (Helm templates and
``env:`` lists often render ``value: ""``).

==========================  ===============================  =============================
flag                        environment variable             default
==========================  ===============================  =============================
``--listen-address``        ``KUBEPULSE_LISTEN_ADDRESS``     ``0.0.0.0:9847``
``--node-name``             ``NODE_NAME``                    this host's name, lower case
``--proc-root``             ``KUBEPULSE_PROC_ROOT``          ``/proc``
``--cgroup-root``           ``KUBEPULSE_CGROUP_ROOT``        ``/sys/fs/cgroup``
``--sample-interval``       ``KUBEPULSE_SAMPLE_INTERVAL``    ``1s``
``--top-host-processes``    ``KUBEPULSE_TOP_HOST_PROCESSES`` ``10``
``--max-series``            ``KUBEPULSE_MAX_SERIES``         ``50000``
``--kubeconfig``            ``KUBECONFIG``                   none
``--mode``                  ``KUBEPULSE_MODE``               ``auto``
``--api-qps``               ``KUBEPULSE_API_QPS``            ``5``
``--log-level``             ``KUBEPULSE_LOG_LEVEL``          ``info``
``--log-format``            ``KUBEPULSE_LOG_FORMAT``         ``json``
==========================  ===============================  =============================

**Port 9847** is the exporter's port: the adapter's embedded scraper looks for exporters
there (``adapter.scrape.targets.DEFAULT_EXPORTER_PORT``), away from node_exporter's 9100
and process-exporter's 9256, which may run on the same node.

The DaemonSet sets ``NODE_NAME`` from ``spec.nodeName`` (downward API), and
``KUBEPULSE_PROC_ROOT=/host/proc`` / ``KUBEPULSE_CGROUP_ROOT=/host/sys/fs/cgroup`` where
it mounts the host's filesystems.

Every problem is reported at once, each naming the flag and the variable, where the bad
value came from and what is accepted::

    --sample-interval / KUBEPULSE_SAMPLE_INTERVAL (from KUBEPULSE_SAMPLE_INTERVAL='1'):
    a bare number has no unit; give a duration from 100ms to 5m, such as 1s

The command turns :class:`ConfigError` (and :class:`UsageError` for an unknown flag)
into that message on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import difflib
import ipaddress
import math
import os
import re
import socket
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal, NoReturn

from kubepulse.catalog import HOST_PROCESS_TOP_N_DEFAULT
from kubepulse.duration import format_duration, parse_duration
from kubepulse.errors import KubepulseValueError

__all__ = [
    "CGROUP_ROOT_ENV",
    "DEFAULT_LISTEN_ADDRESS",
    "DEFAULT_PORT",
    "KUBECONFIG_ENV",
    "NODE_NAME_ENV",
    "PROC_ROOT_ENV",
    "ConfigError",
    "ConfigProblem",
    "ExporterConfig",
    "UsageError",
    "build_parser",
    "default_node_name",
    "format_listen_address",
    "parse_config",
    "parse_listen_address",
    "parse_node_name",
]

DEFAULT_PORT: Final = 9847
"""The exporter's TCP port (see the module docstring)."""
DEFAULT_LISTEN_ADDRESS: Final = f"0.0.0.0:{DEFAULT_PORT}"
"""Every IPv4 interface: a DaemonSet pod serves its node's metrics to the cluster."""

NODE_NAME_ENV: Final = "NODE_NAME"
"""Set by the DaemonSet from ``spec.nodeName`` through the downward API."""
PROC_ROOT_ENV: Final = "KUBEPULSE_PROC_ROOT"
CGROUP_ROOT_ENV: Final = "KUBEPULSE_CGROUP_ROOT"
KUBECONFIG_ENV: Final = "KUBECONFIG"
_ENV_PREFIX: Final = "KUBEPULSE_"
# Variables under the prefix that belong to others: the adapter's settings, the test
# scripts' caches, and the links the kubelet adds for Services named kubepulse-*.
_FOREIGN_ENV: Final = re.compile(
    r"^KUBEPULSE_(ADAPTER_|CACHE$|TOOLS_DIR$|GO_CACHE_DIR$|.*_(SERVICE_HOST|SERVICE_PORT.*|PORT(_\d+_(TCP|UDP|SCTP).*)?)$)"
)

_MS_PER_SECOND: Final = 1000
_MIN_SAMPLE_INTERVAL_MS: Final = 100
_MAX_SAMPLE_INTERVAL_MS: Final = 5 * 60 * _MS_PER_SECOND
_MAX_TOP_HOST_PROCESSES: Final = 10_000
_MAX_SERIES_LIMIT: Final = 100_000_000
_MAX_API_QPS: Final = 1000.0
_MAX_PORT: Final = 65535
# A Node's name is a DNS subdomain (RFC 1123): lower case, at most 253 characters.
_DNS_SUBDOMAIN: Final = re.compile(
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
)
_MAX_NODE_NAME: Final = 253
_HOSTNAME_LABEL: Final = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9]{0,61}[A-Za-z0-9])?$")

Mode = Literal["auto", "cluster", "local"]
LogLevel = Literal["debug", "info", "warning", "error"]
LogFormat = Literal["json", "text"]


@dataclass(frozen=True)
class ExporterConfig:
    """Everything the exporter is configured with, validated."""

    listen_host: str = "0.0.0.0"  # noqa: S104 - a DaemonSet pod serves on every interface
    """Address to bind (``--listen-address``): an IPv4 or IPv6 address or a host name;
    ``0.0.0.0`` for every IPv4 interface, ``::`` for every interface."""
    listen_port: int = DEFAULT_PORT
    """TCP port to bind, 0 to 65535; 0 picks a free port (logged at start)."""
    node_name: str = ""
    """This node's name (``--node-name``, ``NODE_NAME``), the ``node`` label of every
    series and the node whose pods are watched; a lower-case DNS subdomain."""
    proc_root: str = "/proc"
    """Where the host's procfs is mounted (``/host/proc`` in the DaemonSet)."""
    cgroup_root: str = "/sys/fs/cgroup"
    """Where the host's cgroupfs is mounted (``/host/sys/fs/cgroup`` in the DaemonSet)."""
    sample_interval_ms: int = _MS_PER_SECOND
    """How often the sampled histograms observe every container, 100 ms to 5 min; keep
    it shorter than the scrape interval so that short spikes are seen."""
    top_host_processes: int = HOST_PROCESS_TOP_N_DEFAULT
    """Host-process groups (by command name) with their own series, 0 to 10,000; the
    rest are folded into ``group="other"``."""
    max_series: int = 50_000
    """The most series one scrape publishes (families are dropped whole beyond it)."""
    kubeconfig: str | None = None
    """kubeconfig file(s) for the API server (``--kubeconfig``, ``KUBECONFIG``; a
    colon-separated list is merged as kubectl does); ``None``: in-cluster credentials."""
    mode: Mode = "auto"
    """``local``: no cluster, pods reported by cgroup identity only; ``cluster``: watch
    this node's pods (fails to start without credentials); ``auto``: cluster when
    credentials are found and the API server knows this node, else local."""
    api_qps: float = 5.0
    """Average Kubernetes API requests per second of the pod watch, above 0 up to 1000."""
    log_level: LogLevel = "info"
    """Least severe log level written."""
    log_format: LogFormat = "json"
    """``json``: one JSON object per line; ``text``: one readable line, for a terminal."""
    origins: Mapping[str, str] = field(default_factory=dict, compare=False)
    """Where each setting came from: ``flag``, ``env NAME`` or ``default``."""
    warnings: tuple[str, ...] = field(default=(), compare=False)
    """Things to log once logging is set up (likely misspelt environment variables)."""

    @property
    def listen_address(self) -> str:
        """``host:port`` as given to ``--listen-address`` (IPv6 hosts in brackets)."""
        return format_listen_address(self.listen_host, self.listen_port)

    @property
    def sample_interval_seconds(self) -> float:
        """:attr:`sample_interval_ms` in seconds, as the collector takes it."""
        return self.sample_interval_ms / _MS_PER_SECOND

    def describe(self) -> dict[str, Any]:
        """The effective settings as plain data, for the log line at start."""
        return {
            "listen_address": self.listen_address,
            "node_name": self.node_name,
            "proc_root": self.proc_root,
            "cgroup_root": self.cgroup_root,
            "sample_interval": format_duration(self.sample_interval_ms),
            "top_host_processes": self.top_host_processes,
            "max_series": self.max_series,
            "kubeconfig": self.kubeconfig,
            "mode": self.mode,
            "api_qps": self.api_qps,
            "log_level": self.log_level,
            "log_format": self.log_format,
        }


@dataclass(frozen=True)
class ConfigProblem:
    """One invalid setting: which, where its value came from, and what is accepted."""

    flag: str
    env: str
    origin: str
    value: str
    message: str

    def __str__(self) -> str:
        if self.origin == "flag":
            where = f" (from {self.flag}={self.value!r})"
        elif self.origin.startswith("env "):
            where = f" (from {self.env}={self.value!r})"
        else:
            where = ""
        return f"{self.flag} / {self.env}{where}: {self.message}"


class ConfigError(KubepulseValueError):
    """The settings are invalid; ``problems`` lists every bad one."""

    def __init__(self, problems: Sequence[ConfigProblem]) -> None:
        self.problems = tuple(problems)
        count = len(self.problems)
        lines = "\n".join(f"  - {problem}" for problem in self.problems)
        super().__init__(
            f"invalid configuration ({count} problem{'s' if count != 1 else ''}):\n{lines}\n"
            "Run `kubepulse-exporter --help` for every flag, its variable and default."
        )


class UsageError(KubepulseValueError):
    """The command line is malformed: an unknown flag, a flag without its value."""

    def __init__(self, message: str, usage: str) -> None:
        self.usage = usage
        super().__init__(f"{message}\n{usage}".rstrip())


class _Parser(argparse.ArgumentParser):
    """argparse, raising :class:`UsageError` instead of exiting the process."""

    def error(self, message: str) -> NoReturn:
        """Raise the problem for the caller to report (argparse would exit here)."""
        raise UsageError(message, self.format_usage())


# ------------------------------------------------------------------------ value parsers


class _InvalidValueError(Exception):
    """A value is not acceptable; the message says what is."""


def _text(raw: str) -> str:
    text = raw.strip()
    if not text:
        raise _InvalidValueError("must not be empty")
    return text


def parse_listen_address(raw: str) -> tuple[str, int]:
    """``host:port``, ``[v6]:port`` or ``:port`` (every IPv4 interface) as ``(host, port)``.

    Raises:
        ValueError: the message says what is accepted.
    """
    text = raw.strip()
    accepted = (
        "give host:port, such as 0.0.0.0:9847, 127.0.0.1:9847, [::]:9847 or :9847 "
        "(port 0 picks a free one)"
    )
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket or not rest.startswith(":"):
            raise ValueError(f"not host:port; {accepted}")
        port_text = rest[1:]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(f"{host!r} in brackets is not an IPv6 address; {accepted}") from None
    else:
        host, colon, port_text = text.rpartition(":")
        if not colon:
            raise ValueError(f"no port; {accepted}")
        if ":" in host:
            raise ValueError(f"write IPv6 addresses in brackets ([{host}]:port); {accepted}")
        host = host or "0.0.0.0"  # noqa: S104 - ":port" means every interface, as in Go
        if not _is_ipv4(host) and not all(
            _HOSTNAME_LABEL.match(label) for label in host.rstrip(".").split(".")
        ):
            raise ValueError(f"{host!r} is neither an IP address nor a host name; {accepted}")
    if not port_text.isdigit() or int(port_text) > _MAX_PORT:
        raise ValueError(f"the port {port_text!r} is not a number from 0 to 65535; {accepted}")
    return host, int(port_text)


def _is_ipv4(host: str) -> bool:
    try:
        ipaddress.IPv4Address(host)
    except ValueError:
        return False
    return True


def format_listen_address(host: str, port: int) -> str:
    """``host:port``, with an IPv6 host in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def parse_node_name(raw: str) -> str:
    """A Node's name: a lower-case DNS subdomain (RFC 1123) of at most 253 characters.

    Raises:
        ValueError: the message says what is accepted.
    """
    text = raw.strip()
    if not text:
        raise ValueError("must not be empty; give the Node's name as in `kubectl get nodes`")
    if len(text) > _MAX_NODE_NAME or not _DNS_SUBDOMAIN.match(text):
        raise ValueError(
            f"{text!r} is not a node name: use lower-case letters, digits, '-' and '.', "
            "at most 253 characters, as in `kubectl get nodes`"
        )
    return text


def default_node_name(hostname: Callable[[], str] = socket.gethostname) -> str:
    """This host's name in lower case, as the kubelet names its Node by default."""
    return hostname().strip().lower()


def _listen_address(raw: str) -> tuple[str, int]:
    try:
        return parse_listen_address(raw)
    except ValueError as exc:
        raise _InvalidValueError(str(exc)) from None


def _node_name(raw: str) -> str:
    try:
        return parse_node_name(raw)
    except ValueError as exc:
        raise _InvalidValueError(str(exc)) from None


def _proc_root(raw: str) -> str:
    path = _text(raw)
    if not os.path.isfile(os.path.join(path, "stat")):
        raise _InvalidValueError(
            f"{path} is not a procfs (there is no {os.path.join(path, 'stat')}); give the "
            "directory where the host's /proc is mounted (/host/proc in the DaemonSet)"
        )
    return path


def _cgroup_root(raw: str) -> str:
    path = _text(raw)
    if not os.path.isdir(path):
        raise _InvalidValueError(
            f"{path} is not a directory; give the directory where the host's "
            "/sys/fs/cgroup is mounted (/host/sys/fs/cgroup in the DaemonSet)"
        )
    return path


def _sample_interval(raw: str) -> int:
    text = _text(raw)
    accepted = (
        f"give a duration from {format_duration(_MIN_SAMPLE_INTERVAL_MS)} to "
        f"{format_duration(_MAX_SAMPLE_INTERVAL_MS)}, such as 1s"
    )
    if text.isdigit():
        raise _InvalidValueError(f"a bare number has no unit; {accepted}")
    try:
        milliseconds = parse_duration(text)
    except KubepulseValueError as exc:
        raise _InvalidValueError(f"{exc}; {accepted}") from None
    if not _MIN_SAMPLE_INTERVAL_MS <= milliseconds <= _MAX_SAMPLE_INTERVAL_MS:
        raise _InvalidValueError(f"out of range; {accepted}")
    return milliseconds


def _whole_number(minimum: int, maximum: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        text = _text(raw).replace("_", "")
        if not text.isdigit() or not minimum <= int(text) <= maximum:
            raise _InvalidValueError(f"give a whole number from {minimum:,} to {maximum:,}")
        return int(text)

    return parse


def _api_qps(raw: str) -> float:
    text = _text(raw)
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and 0 < value <= _MAX_API_QPS):
        raise _InvalidValueError(
            f"give a number of requests per second above 0 and at most {_MAX_API_QPS:g}, "
            "such as 5 or 0.5"
        )
    return value


def _choice(*choices: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        text = _text(raw).lower()
        if text not in choices:
            raise _InvalidValueError(f"use one of {', '.join(choices)}")
        return text

    return parse


def _kubeconfig(raw: str) -> str:
    return _text(raw)


# ------------------------------------------------------------------------ the settings


@dataclass(frozen=True)
class _Setting:
    """One setting: its flag, variable, parser and default (already parsed)."""

    name: str
    flag: str
    env: str
    parse: Callable[[str], Any]
    default: Any
    metavar: str
    help: str


_SETTINGS: Final[tuple[_Setting, ...]] = (
    _Setting(
        "listen", "--listen-address", "KUBEPULSE_LISTEN_ADDRESS", _listen_address,
        ("0.0.0.0", DEFAULT_PORT), "HOST:PORT",  # noqa: S104 - see ExporterConfig
        f"address to serve /metrics and /healthz on (default {DEFAULT_LISTEN_ADDRESS})",
    ),
    _Setting(
        "node_name", "--node-name", NODE_NAME_ENV, _node_name, None, "NAME",
        "this node's name, the node label of every series (default: the host name)",
    ),
    _Setting(
        "proc_root", "--proc-root", PROC_ROOT_ENV, _proc_root, "/proc", "DIR",
        "where the host's procfs is mounted (default /proc; /host/proc in the DaemonSet)",
    ),
    _Setting(
        "cgroup_root", "--cgroup-root", CGROUP_ROOT_ENV, _cgroup_root, "/sys/fs/cgroup", "DIR",
        "where the host's cgroupfs is mounted (default /sys/fs/cgroup)",
    ),
    _Setting(
        "sample_interval_ms", "--sample-interval", "KUBEPULSE_SAMPLE_INTERVAL",
        _sample_interval, _MS_PER_SECOND, "DURATION",
        "how often the sampled histograms observe each container, 100ms to 5m (default 1s)",
    ),
    _Setting(
        "top_host_processes", "--top-host-processes", "KUBEPULSE_TOP_HOST_PROCESSES",
        _whole_number(0, _MAX_TOP_HOST_PROCESSES), HOST_PROCESS_TOP_N_DEFAULT, "N",
        "host-process groups with their own series; the rest are folded into 'other' "
        f"(default {HOST_PROCESS_TOP_N_DEFAULT})",
    ),
    _Setting(
        "max_series", "--max-series", "KUBEPULSE_MAX_SERIES",
        _whole_number(0, _MAX_SERIES_LIMIT), 50_000, "N",
        "the most series one scrape publishes (default 50000)",
    ),
    _Setting(
        "kubeconfig", "--kubeconfig", KUBECONFIG_ENV, _kubeconfig, None, "FILE",
        "kubeconfig for the API server (default: in-cluster credentials)",
    ),
    _Setting(
        "mode", "--mode", "KUBEPULSE_MODE", _choice("auto", "cluster", "local"), "auto",
        "{auto,cluster,local}",
        "local: no cluster; cluster: watch this node's pods; auto: cluster when the API "
        "server is reachable and knows this node, else local (default auto)",
    ),
    _Setting(
        "api_qps", "--api-qps", "KUBEPULSE_API_QPS", _api_qps, 5.0, "QPS",
        "average Kubernetes API requests per second of the pod watch (default 5)",
    ),
    _Setting(
        "log_level", "--log-level", "KUBEPULSE_LOG_LEVEL",
        _choice("debug", "info", "warning", "error"), "info", "{debug,info,warning,error}",
        "least severe log level written (default info)",
    ),
    _Setting(
        "log_format", "--log-format", "KUBEPULSE_LOG_FORMAT", _choice("json", "text"), "json",
        "{json,text}", "json: one JSON object per line on stderr; text: readable (default json)",
    ),
)  # fmt: skip


def build_parser(prog: str = "kubepulse-exporter serve") -> argparse.ArgumentParser:
    """The ``serve`` command line: one flag per setting, each help naming its variable."""
    parser = _Parser(
        prog=prog,
        # "--listen" must not silently mean --listen-address: settings are spelt in full.
        allow_abbrev=False,
        description=(
            "Serve this node's container, pod, node and host-process metrics for "
            "Prometheus and the kubepulse adapter. Every flag can also be set by the "
            "environment variable in brackets; a flag wins over its variable."
        ),
        epilog=(
            "Endpoints: /metrics (Prometheus text or OpenMetrics, gzip on request), "
            "/healthz. Other command: `kubepulse-exporter which PID|CGROUP-PATH` says "
            "which pod, container or host group a process or cgroup belongs to."
        ),
    )
    for setting in _SETTINGS:
        parser.add_argument(
            setting.flag,
            dest=setting.name,
            metavar=setting.metavar,
            default=None,
            help=f"{setting.help} [{setting.env}]",
        )
    return parser


def parse_config(
    argv: Sequence[str],
    environ: Mapping[str, str],
    *,
    hostname: Callable[[], str] = socket.gethostname,
) -> ExporterConfig:
    """Parse the ``serve`` flags in ``argv`` and the variables in ``environ``.

    Args:
        argv: the arguments after ``serve`` (no program name).
        environ: the process environment (``os.environ``).
        hostname: where the default node name comes from.

    Raises:
        UsageError: an unknown flag, or a flag without its value.
        ConfigError: one or more values are invalid; every problem is listed.
    """
    arguments = build_parser().parse_args(list(argv))
    values: dict[str, Any] = {}
    origins: dict[str, str] = {}
    problems: list[ConfigProblem] = []
    for setting in _SETTINGS:
        flag_value: str | None = getattr(arguments, setting.name)
        env_value = environ.get(setting.env, "")
        if flag_value is not None:
            raw, origin = flag_value, "flag"
        elif env_value.strip():
            raw, origin = env_value, f"env {setting.env}"
        else:
            values[setting.name] = setting.default
            origins[setting.name] = "default"
            continue
        try:
            values[setting.name] = setting.parse(raw)
        except _InvalidValueError as exc:
            problems.append(ConfigProblem(setting.flag, setting.env, origin, raw, str(exc)))
            continue
        origins[setting.name] = origin
    if values.get("node_name", ...) is None:
        default_name = default_node_name(hostname)
        try:
            values["node_name"] = parse_node_name(default_name)
        except ValueError:
            problems.append(
                ConfigProblem(
                    "--node-name",
                    NODE_NAME_ENV,
                    "default",
                    default_name,
                    f"the host name {default_name!r} is not a valid node name; set the "
                    "Node's name (the DaemonSet passes spec.nodeName through the downward API)",
                )
            )
        origins["node_name"] = "default (host name)"
    if problems:
        raise ConfigError(problems)
    host, port = values.pop("listen")
    # Keyed like describe(), so that the start-up log line pairs values with origins.
    origins["listen_address"] = origins.pop("listen")
    origins["sample_interval"] = origins.pop("sample_interval_ms")
    return ExporterConfig(
        listen_host=host,
        listen_port=port,
        origins=origins,
        warnings=_misspelt_environment(environ),
        **values,
    )


def _misspelt_environment(environ: Mapping[str, str]) -> tuple[str, ...]:
    """Warnings for ``KUBEPULSE_*`` variables that look like a misspelt setting."""
    known = sorted(setting.env for setting in _SETTINGS if setting.env.startswith(_ENV_PREFIX))
    warnings = []
    for name in sorted(environ):
        if not name.startswith(_ENV_PREFIX) or name in known or _FOREIGN_ENV.match(name):
            continue
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.8)
        if close:
            warnings.append(f"ignoring environment variable {name}; did you mean {close[0]}?")
    return tuple(warnings)
