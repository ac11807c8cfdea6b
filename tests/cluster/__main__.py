"""Run the e2e control plane by hand.

    python -m tests.cluster tools
    python -m tests.cluster up [--nodes N] [--pods M] [--metrics-server] [--dir D]

``up`` starts etcd, kube-apiserver, kube-controller-manager, kube-scheduler and
kwok on loopback, prints the kubeconfig path and the ``export`` lines for a
shell, and waits until Ctrl-C (or SIGTERM), then stops everything it started.
Run it from the repository root (``tests`` is imported as a package).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from tests.cluster.controlplane import (
    CONTROL_PLANE_TOOLS,
    METRICS_SERVER_TOOLS,
    OTHER_TOOLS,
    ControlPlane,
    ControlPlaneError,
    ControlPlaneOptions,
    find_tool,
    install_termination_handlers,
    tools_bin_dir,
)


def _version(path: Path, name: str) -> str:
    """First line of the tool's version output, or why there is none."""
    argv = {
        "kubectl": [str(path), "version", "--client"],
        "helm": [str(path), "version", "--short"],
        "etcdctl": [str(path), "version"],
    }.get(name, [str(path), "--version"])
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"(cannot run: {exc})"
    lines = (result.stdout or result.stderr).strip().splitlines()
    return lines[0] if lines else f"(no version output, exit {result.returncode})"


def cmd_tools(_args: argparse.Namespace) -> int:
    """Print which tools are found and where; exit 1 when a control-plane tool is missing."""
    print(f"tools directory: {tools_bin_dir()}")
    missing_required = []
    for group, names in (
        ("control plane", CONTROL_PLANE_TOOLS),
        ("metrics-server tests", METRICS_SERVER_TOOLS),
        ("other tiers", OTHER_TOOLS),
    ):
        print(f"\n{group}:")
        for name in names:
            path = find_tool(name)
            if path is None:
                print(f"  {name:<24} MISSING")
                if group != "other tiers":
                    missing_required.append(name)
            else:
                print(f"  {name:<24} {path}  [{_version(path, name)}]")
    if missing_required:
        print(
            f"\nmissing: {', '.join(missing_required)}. "
            "Run scripts/install-test-tools.sh to build them.",
            file=sys.stderr,
        )
        return 1
    return 0


def cmd_up(args: argparse.Namespace) -> int:
    """Start a control plane, optionally fill it, print how to use it, wait for Ctrl-C."""
    install_termination_handlers()
    run_dir = Path(args.dir).resolve() if args.dir else None
    if run_dir is not None and run_dir.exists() and any(run_dir.iterdir()):
        print(f"{run_dir} is not empty; pass a new or empty --dir", file=sys.stderr)
        return 2
    cluster = ControlPlane(ControlPlaneOptions(run_dir=run_dir, keep_run_dir=args.keep))
    try:
        print("starting etcd, kube-apiserver, controller-manager, scheduler, kwok ...", flush=True)
        cluster.start()
        print(f"control plane ready in {cluster.timings.phases['total']:.1f} s", flush=True)
        if args.metrics_server:
            cluster.enable_metrics_server()
            print(
                f"metrics-server registered in {cluster.timings.phases['metrics-server']:.1f} s",
                flush=True,
            )
        figures: dict[str, float] = {}
        if args.nodes:
            start = time.monotonic()
            nodes = cluster.create_nodes(args.nodes)
            figures["nodes_created_s"] = round(time.monotonic() - start, 2)
            cluster.wait_for_nodes_ready(nodes, timeout=300)
            figures["nodes_ready_s"] = round(time.monotonic() - start, 2)
            print(f"{args.nodes} kwok nodes Ready in {figures['nodes_ready_s']:.1f} s", flush=True)
        if args.pods:
            if not args.nodes:
                print("--pods needs --nodes to run on", file=sys.stderr)
                return 2
            cluster.ensure_namespace(args.namespace)
            start = time.monotonic()
            cluster.create_pods(args.pods, namespace=args.namespace, prefix="pod")
            figures["pods_created_s"] = round(time.monotonic() - start, 2)
            cluster.wait_for_pods_running(args.namespace, args.pods, timeout=900)
            figures["pods_running_s"] = round(time.monotonic() - start, 2)
            print(
                f"{args.pods} pods created in {figures['pods_created_s']:.1f} s, "
                f"all Running in {figures['pods_running_s']:.1f} s (namespace {args.namespace})",
                flush=True,
            )
        _print_usage(cluster)
        if args.json:
            print(json.dumps({"startup": cluster.timings.phases, **figures}), flush=True)
        if args.exit_after_start:
            return 0
        # Sleeping on an Event keeps the main thread interruptible by Ctrl-C.
        threading.Event().wait()
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
    except ControlPlaneError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        print("stopping the control plane ...", file=sys.stderr, flush=True)
        cluster.stop()
        leftovers = cluster.leftover_processes()
        if leftovers:
            print(f"processes still running: {leftovers}", file=sys.stderr)
        if run_dir is not None or args.keep:
            print(f"run directory kept: {cluster.run_dir}", file=sys.stderr)
    return 0


def _print_usage(cluster: ControlPlane) -> None:
    env = cluster.env()
    print(
        "\n"
        f"kubeconfig:  {cluster.kubeconfig}\n"
        f"API server:  {cluster.api_url}\n"
        f"logs:        {cluster.logs_dir}\n"
        "\nIn another shell:\n"
        f"  export KUBECONFIG={env['KUBECONFIG']}\n"
        f"  export PATH={tools_bin_dir()}:$PATH\n"
        "  kubectl get nodes\n"
        "\nCtrl-C stops every process started here.",
        flush=True,
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tests.cluster",
        description="A real Kubernetes control plane on loopback for kubepulse's e2e tests.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    tools = commands.add_parser("tools", help="show which test tools are installed")
    tools.set_defaults(func=cmd_tools)

    up = commands.add_parser("up", help="start a control plane and wait for Ctrl-C")
    up.add_argument("--nodes", type=int, default=0, help="kwok nodes to create (default 0)")
    up.add_argument(
        "--pods",
        type=int,
        default=0,
        help="pods to create through kube-scheduler after the nodes, timed (default 0)",
    )
    up.add_argument("--namespace", default="load", help="namespace for --pods (default load)")
    up.add_argument(
        "--metrics-server",
        action="store_true",
        help="also start metrics-server as the v1beta1.metrics.k8s.io APIService",
    )
    up.add_argument(
        "--dir",
        help="run directory (certificates, kubeconfig, logs, etcd data); kept afterwards. "
        "Default: a temporary directory, removed on exit",
    )
    up.add_argument("--keep", action="store_true", help="keep the temporary run directory")
    up.add_argument("--json", action="store_true", help="also print the timings as one JSON line")
    up.add_argument(
        "--exit-after-start",
        action="store_true",
        help="stop right after start-up (and --nodes/--pods): for timing runs and CI smoke checks",
    )
    up.set_defaults(func=cmd_up)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
