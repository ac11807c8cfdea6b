"""The main demo behind ``./scripts/demo``: real HPAs scaling on kubepulse, on this machine.

What runs, all on loopback and torn down at the end (Ctrl-C included):

- a Kubernetes control plane built from upstream (etcd, kube-apiserver,
  kube-controller-manager with the HPA controller syncing every 5 s, kube-scheduler,
  kwok for two fake nodes), as the e2e tests use it;
- ``examples/instrumented_app.py``: a service whose requests take 0.1 s on a pool of
  workers, with a request counter, a latency histogram and a queue gauge; a capacity
  follower gives it one worker per replica of the ``web`` Deployment;
- ``kubepulse-adapter`` scraping it every second, registered as the custom and external
  metrics APIServices with its own CA as ``caBundle``;
- two HPAs reading kubepulse through kube-apiserver: ``web`` on the p95 of request latency
  over 1 m (target 400m), ``web-forecast`` on the request rate forecast 1 m ahead
  (``kubepulse.io/predict: 1m``, target 20 requests/s), both stabilising scale-down over
  30 s;
- a load generator ramping from 2 to 40 requests/s, then falling back to 3.

Every few seconds a line shows the offered load, what the adapter answers (p95, rate,
forecast: read through the aggregator as the HPA controller reads them) and the replicas
of both Deployments.

    ./scripts/demo                    # sets everything up, about 6 minutes
    python scripts/demo.py --ramp 120 --cooldown 90
    python scripts/demo_local.py      # a smaller demo: the exporter alone, no cluster
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kubepulse.quantity import parse_quantity
from tests.cluster.adapter_service import registered_adapter
from tests.cluster.autoscaling import (
    POOL_LABEL,
    CapacityFollower,
    deployment,
    external_hpa,
    replicas,
)
from tests.cluster.controlplane import ControlPlane, ControlPlaneOptions
from tests.integration.prometheus_harness import app_process, load_process

NAMESPACE = "demo"
RULES = [
    {"name": "web_latency", "metric": "http_request_duration_seconds", "selector": "pod=web",
     "statistic": "p95", "window": "1m", "namespaced": True},
    {"name": "web_rate", "metric": "http_requests_total", "selector": "pod=web",
     "statistic": "rate", "window": "1m", "namespaced": True},
]  # fmt: skip
FORECAST = {"pod": "web", "kubepulse.io/predict": "1m", "kubepulse.io/model": "linear"}
SCALE_DOWN_WINDOW_S = 30
"""Both HPAs scale down only to the highest count recommended over the last 30 s. Without it,
the p95 HPA gives replicas back as soon as the added ones bring latency down, mid-ramp,
and has to take them again (the HPA controller's default is 300 s; 30 s keeps the
demo short)."""


def say(message: str) -> None:
    print(message, flush=True)


def external(cluster: ControlPlane, metric: str, selector: dict[str, str]) -> float | None:
    """One external metric's value through the aggregator, ``None`` while it has none."""
    answer: Any = cluster.request(
        "GET",
        f"/apis/external.metrics.k8s.io/v1beta1/namespaces/{NAMESPACE}/{metric}",
        params={"labelSelector": ",".join(f"{k}={v}" for k, v in selector.items())},
        ok=(200, 404, 503),
    )
    items = answer.get("items") if isinstance(answer, dict) else None
    return float(parse_quantity(items[0]["value"])) if items else None


def shown(value: float | None, unit: str = "") -> str:
    return "   -  " if value is None else f"{value:6.2f}{unit}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ramp", type=float, default=150, help="seconds from 2 to 40 req/s")
    parser.add_argument("--cooldown", type=float, default=120, help="seconds at 3 req/s after")
    parser.add_argument("--every", type=float, default=5, help="seconds between lines")
    arguments = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(130))
    run_dir = Path(tempfile.mkdtemp(prefix="kubepulse-demo-"))
    say(f"starting a control plane on loopback (logs in {run_dir}) ...")
    cluster = ControlPlane(ControlPlaneOptions(run_dir=run_dir / "cluster"))
    try:
        cluster.start()
        cluster.ensure_namespace(NAMESPACE)
        pool = "demo"
        nodes = cluster.create_nodes(2, prefix=pool, labels={POOL_LABEL: pool})
        cluster.wait_for_nodes_ready(nodes)
        with app_process("web", workers=1, service_time_s=0.1) as app:
            target = f"{app.metrics_url};role=pod;namespace={NAMESPACE};pod=web"
            say("starting kubepulse-adapter and registering its APIServices ...")
            workdir = run_dir / "adapter"
            workdir.mkdir()
            with registered_adapter(
                cluster, workdir, static_targets=[target], external_metrics=RULES
            ) as adapter:
                say(f"adapter ready at {adapter.url}; APIServices Available")
                manifests = {
                    "kind": "List",
                    "apiVersion": "v1",
                    "items": [
                        deployment("web", pool),
                        deployment("web-forecast", pool),
                        external_hpa(
                            "web",
                            "web_latency",
                            {"pod": "web"},
                            "400m",
                            scale_down_window_s=SCALE_DOWN_WINDOW_S,
                        ),
                        external_hpa(
                            "web-forecast",
                            "web_rate",
                            FORECAST,
                            "20",
                            scale_down_window_s=SCALE_DOWN_WINDOW_S,
                        ),
                    ],
                }
                cluster.kubectl(
                    "create", f"--namespace={NAMESPACE}", "-f", "-",
                    input_text=json.dumps(manifests),
                )  # fmt: skip
                with CapacityFollower(cluster, NAMESPACE, "web", app.port):
                    run_load(cluster, app.work_url, arguments)
        say("done; tearing everything down")
        return 0
    except KeyboardInterrupt:
        say("interrupted; tearing everything down")
        return 130
    finally:
        cluster.stop()


def run_load(cluster: ControlPlane, url: str, arguments: argparse.Namespace) -> None:
    say(
        "\n  time  offered   p95 latency   rate    forecast(+1m)   replicas: web (p95)  "
        "web-forecast (rate forecast)"
    )
    phases = [
        ("warm", 2.0, 2.0, 30.0),
        ("ramp", 2.0, 40.0, arguments.ramp),
        ("cool", 3.0, 3.0, arguments.cooldown),
    ]
    started = time.monotonic()
    first_scale: dict[str, float] = {}
    for _name, low, high, seconds in phases:
        phase_start = time.monotonic()
        with load_process(url, rate=low, to_rate=high, duration_s=seconds + 5):
            while (elapsed := time.monotonic() - phase_start) < seconds:
                offered = low + (high - low) * elapsed / seconds
                p95 = external(cluster, "web_latency", {"pod": "web"})
                rate = external(cluster, "web_rate", {"pod": "web"})
                forecast = external(cluster, "web_rate", FORECAST)
                counts = {n: replicas(cluster, NAMESPACE, n) for n in ("web", "web-forecast")}
                now = time.monotonic() - started
                for name, count in counts.items():
                    if count > 1 and name not in first_scale:
                        first_scale[name] = now
                say(
                    f"{now:6.0f}s {offered:6.1f}/s {shown(p95, ' s')}   {shown(rate)}/s "
                    f"{shown(forecast)}/s        {counts['web']:>2}"
                    f"                  {counts['web-forecast']:>2}"
                )
                time.sleep(arguments.every)
    say("")
    for name, why in (("web", "p95 latency"), ("web-forecast", "the rate forecast")):
        when = first_scale.get(name)
        say(
            f"{name}: first scaled up at {when:.0f} s on {why}"
            if when is not None
            else f"{name}: never scaled up"
        )


if __name__ == "__main__":
    sys.exit(main())
