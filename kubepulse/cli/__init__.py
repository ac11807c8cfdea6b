"""``kubectl pulse``: the command line of kubepulse.

Installed as the ``kubectl-pulse`` console script, so kubectl finds it as a plugin and
``kubectl pulse <command>`` works:

- ``kubectl pulse breaches|pressure|fragmentation|quota|recommend|report|hpa``: the analyzers, asked
  of the adapter through kube-apiserver (``analysis.kubepulse.io``) or run in-process
  with ``--local`` (see :mod:`kubepulse.cli.analyses`);
- ``kubectl pulse checkpoint inspect PATH``: what an adapter checkpoint file holds;
- ``kubectl pulse version``: the installed version.

Exit codes: 0 success, 1 the command failed (the message says why and what to do),
2 bad usage.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TextIO

from kubepulse import __version__
from kubepulse.cli.analyses import add_analysis_commands
from kubepulse.cli.checkpoint import add_checkpoint_commands
from kubepulse.errors import KubepulseError

__all__ = ["main"]


def _version(_: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    out.write(f"kubepulse {__version__}\n")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kubectl pulse",
        description="Container-aware resource metrics and analysis for Kubernetes.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    add_analysis_commands(commands)
    add_checkpoint_commands(commands)
    version = commands.add_parser("version", help="print the installed kubepulse version")
    version.set_defaults(run=_version)
    return parser


def main(
    argv: Sequence[str] | None = None, out: TextIO | None = None, err: TextIO | None = None
) -> int:
    """Run ``kubectl pulse`` with ``argv`` (default: the process's arguments)."""
    arguments = _parser().parse_args(argv)
    errors = err or sys.stderr
    try:
        status: int = arguments.run(arguments, out or sys.stdout, errors)
    except KubepulseError as error:
        print(f"error: {error}", file=errors)
        return 1
    return status
