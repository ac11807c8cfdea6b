"""The analysis commands of ``kubectl pulse``: breaches, pressure, fragmentation, quota,
recommend, report and hpa.

Each command is one analysis of :data:`kubepulse.analysis.registry.ANALYSES`, with its
parameters as flags (``thresholdPercent`` is ``--threshold-percent``). By default the
command asks the kubepulse adapter through kube-apiserver (``analysis.kubepulse.io``),
which answers from its own 24 h of history; ``--local`` collects the objects with the
user's kubeconfig and runs the analysis in this process, with history from
``--prometheus-url`` or, failing that, metrics-server.

Scope follows kubectl: ``-n NAMESPACE`` narrows a command to one namespace, ``-A`` (the
default for cluster-wide analyses) covers all of them; ``report`` needs a namespace
and takes the kubeconfig context's namespace when ``-n`` is not given.

Output: ``-o table`` (default), ``csv``, ``json`` or ``yaml``; json and yaml print the
whole API object, table and csv the command's rows (:mod:`kubepulse.cli.tables`).
Progress is shown on standard error when it is a terminal (``--progress`` forces it).
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final, TextIO

from kubepulse.analysis.registry import ANALYSES, find_analysis
from kubepulse.analysis.resources import (
    Analysis,
    ParamKind,
    Scope,
    parse_params,
)
from kubepulse.cli.output import OUTPUT_FORMATS, Progress, write_document, write_rows
from kubepulse.cli.remote import fetch_analysis
from kubepulse.cli.tables import table_for
from kubepulse.errors import KubepulseValueError
from kubepulse.kubeconnect import current_namespace, load_cluster_connection

__all__ = ["add_analysis_commands", "truncation_note"]

_DEFAULT_TIMEOUT_S: Final = 60.0


def _param_help(analysis: Analysis, name: str) -> str:
    param = analysis.param(name)
    extra = []
    if param.choices:
        extra.append(f"one of {', '.join(param.choices)}")
    if param.default is not None:
        extra.append(f"default {param.default}")
    text = param.help + (f" ({'; '.join(extra)})" if extra else "")
    return text.replace("%", "%%")  # argparse formats help with %


def _add_command(commands: Any, analysis: Analysis) -> None:
    command = commands.add_parser(
        analysis.command,
        help=analysis.summary,
        description=f"{analysis.summary} ({analysis.kind}, resource {analysis.resource}).",
    )
    if analysis.named:
        command.add_argument("name", help="the object to analyse (e.g. a Deployment's name)")
    for param in analysis.params:
        if param.kind is ParamKind.BOOLEAN:
            command.add_argument(
                param.flag, dest=f"param_{param.name}", action=argparse.BooleanOptionalAction,
                default=None, help=_param_help(analysis, param.name),
            )  # fmt: skip
            continue
        command.add_argument(
            param.flag, dest=f"param_{param.name}", metavar=param.kind.value.upper(),
            help=_param_help(analysis, param.name),
        )  # fmt: skip
    if analysis.scope is not Scope.CLUSTER:
        command.add_argument(
            "-n", "--namespace", help="the namespace (default: all, or the context's namespace)"
        )
    if analysis.scope is Scope.BOTH:
        command.add_argument(
            "-A", "--all-namespaces", action="store_true", help="every namespace (the default)"
        )
    command.add_argument("-o", "--output", choices=OUTPUT_FORMATS, default="table")
    command.add_argument("--kubeconfig", help="path to the kubeconfig (default: $KUBECONFIG)")
    command.add_argument("--context", help="the kubeconfig context to use")
    command.add_argument(
        "--local",
        action="store_true",
        help="run the analysis in this process instead of asking the kubepulse adapter",
    )
    command.add_argument(
        "--prometheus-url",
        help="with --local: read usage history from this Prometheus (default: metrics-server)",
    )
    command.add_argument(
        "--request-timeout", type=float, default=_DEFAULT_TIMEOUT_S,
        help=f"seconds to wait for the answer (default {_DEFAULT_TIMEOUT_S:g})",
    )  # fmt: skip
    command.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="show progress on standard error (default: when it is a terminal)",
    )
    command.set_defaults(run=_run, analysis_resource=analysis.resource)


def add_analysis_commands(commands: Any) -> None:
    """Add one subcommand per analysis to ``commands``."""
    for analysis in ANALYSES:
        _add_command(commands, analysis)


def _namespace(arguments: argparse.Namespace, analysis: Analysis) -> str | None:
    namespace: str | None = getattr(arguments, "namespace", None)
    if analysis.scope is Scope.CLUSTER:
        return None
    if getattr(arguments, "all_namespaces", False):
        if namespace:
            raise KubepulseValueError("give either -n NAMESPACE or -A, not both")
        return None
    if namespace:
        return namespace
    if analysis.scope is Scope.NAMESPACED:
        return current_namespace(
            Path(arguments.kubeconfig) if arguments.kubeconfig else None, arguments.context
        )
    return None


def _flag_text(value: str | bool) -> str:
    """A flag's value as the API's query parameter text (switches are true or false)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def _parse_flags(analysis: Analysis, raw: dict[str, str]) -> dict[str, Any]:
    """:func:`parse_params`, with errors naming the flag (``--threshold-percent``)."""
    try:
        return parse_params(analysis, raw)
    except KubepulseValueError as error:
        message = str(error)
        for param in sorted(analysis.params, key=lambda p: len(p.name), reverse=True):
            message = re.sub(rf"\b{param.name}\b", param.flag, message)
        raise KubepulseValueError(message) from error


def _run(arguments: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    analysis = find_analysis(arguments.analysis_resource)
    raw = {
        param.name: _flag_text(value)
        for param in analysis.params
        if (value := getattr(arguments, f"param_{param.name}")) is not None
    }
    params = _parse_flags(analysis, raw)  # a bad flag fails here, before any network
    namespace = _namespace(arguments, analysis)
    name: str | None = getattr(arguments, "name", None)
    shown = err.isatty() if arguments.progress is None else arguments.progress
    progress = Progress(err, enabled=shown)
    kubeconfig = Path(arguments.kubeconfig) if arguments.kubeconfig else None
    if arguments.local:
        from kubepulse.monitor import K8sResourceMonitor  # noqa: PLC0415 - only for --local

        monitor = K8sResourceMonitor(prometheus_url=arguments.prometheus_url)
        with monitor.connect(kubeconfig=kubeconfig, context=arguments.context, watch=False):
            document = monitor.analysis_document(
                analysis, namespace=namespace, name=name, params=params, progress=progress
            )
    else:
        if arguments.prometheus_url:
            raise KubepulseValueError("--prometheus-url needs --local")
        connection = load_cluster_connection(kubeconfig, context=arguments.context)
        progress.step(f"asking the kubepulse adapter for {analysis.resource} ...")
        document = fetch_analysis(
            connection,
            analysis,
            namespace=namespace,
            name=name,
            params=raw,
            timeout=arguments.request_timeout,
        )
    progress.done()
    if arguments.output in ("json", "yaml"):
        write_document(document, arguments.output, out)
    else:
        table = table_for(analysis.resource)
        write_rows(
            table.rows(document),
            table.columns,
            arguments.output,
            out,
            empty_message=table.empty_message,
        )
        note = truncation_note(document)
        if note is not None:
            err.write(note + "\n")
    return 0


def truncation_note(document: Mapping[str, Any]) -> str | None:
    """What ``--top`` left out of a table, for standard error; None when nothing was cut.

    The JSON and YAML outputs carry the same facts in ``truncated``; a table would
    otherwise not show that its lists are the first ``--top`` items of longer ones.
    """
    truncated = document.get("truncated")
    if not isinstance(truncated, Mapping) or not truncated:
        return None
    lists = ", ".join(f"{name} ({count:,} items)" for name, count in sorted(truncated.items()))
    return f"note: --top listed only the first items of {lists}; leave out --top to list them all"
