"""A simulated Kubernetes node on disk: a procfs and a cgroup v2 tree that agree.

Writes, under one directory::

    <root>/proc/<pid>/{stat,statm,cgroup}   every process, as the kernel formats them
    <root>/proc/{stat,meminfo,pressure/*}    node CPU, memory and PSI
    <root>/sys/fs/cgroup/...                  cgroup v2, systemd driver, containerd
    <root>/var/lib/kubelet/                   the kubelet root (ephemeral storage)

so that the exporter can be pointed at it with ``--proc-root <root>/proc
--cgroup-root <root>/sys/fs/cgroup`` and scan a node of any size on any machine. The
default is the kubelet's default pod limit, 110 pods, and 1,000 processes:

- every pod has a sandbox (``pause``, one process) and one to three app containers with
  one to four processes each, spread over the three QoS classes, each container with
  the files the kernel writes in a container's cgroup (``cpu.stat``, ``memory.*``,
  ``pids.current``, ``*.pressure``…) and a pod-level cgroup holding their sum;
- the runtime: ``containerd`` and one ``containerd-shim`` per pod in
  ``containerd.service``;
- kernel threads (``kworker/…``, flagged ``PF_KTHREAD``), and host processes under
  ``system.slice`` (``kubelet``, ``sshd``, ``journald``…) in about forty command
  groups, up to the requested number of processes.

The content is deterministic for a given ``seed``. Files do not change between
scrapes: the tree measures what reading and publishing a node costs, not what the
values are.

    python bench/fake_node.py /tmp/node --pods 110 --processes 1000
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["FakeContainer", "FakeNode", "FakePod", "generate_fake_node"]

_QOS_CLASSES = ("Guaranteed", "Burstable", "BestEffort")
_HOST_COMMANDS = (
    "systemd", "kubelet", "sshd", "systemd-journal", "chronyd", "dbus-daemon", "rsyslogd",
    "cron", "agetty", "systemd-udevd", "systemd-logind", "systemd-resolve", "systemd-network",
    "polkitd", "udisksd", "multipathd", "iscsid", "atd", "snapd", "unattended-upgr",
    "node-problem-de", "fluent-bit", "falco", "bash", "sleep", "sudo", "python3", "perl",
    "awk", "containerd-stre", "nscd", "ntpd", "auditd", "irqbalance", "lvmetad", "haveged",
    "rpcbind", "nfsd", "mdadm", "smartd",
)  # fmt: skip
_KERNEL_THREADS = 60
_PF_KTHREAD = 0x00200000
_USER_PROCESS_FLAGS = 4194560
_PAGE_SIZE = 4096
_CLOCK_TICKS = 100
_MIB = 1024 * 1024
_CONTROLLERS = "cpuset cpu io memory hugetlb pids rdma misc\n"


@dataclass
class FakeContainer:
    """One container cgroup of a fake pod."""

    container_id: str
    command: str
    pids: list[int] = field(default_factory=list)
    sandbox: bool = False
    cpu_usec: int = 0
    memory_bytes: int = 0


@dataclass
class FakePod:
    """One pod of the fake node."""

    uid: str
    qos_class: str
    containers: list[FakeContainer] = field(default_factory=list)

    @property
    def app_containers(self) -> list[FakeContainer]:
        """The containers the exporter reports (every one but the sandbox)."""
        return [container for container in self.containers if not container.sandbox]


@dataclass
class FakeNode:
    """What :func:`generate_fake_node` wrote, for checks and reports."""

    root: Path
    pods: list[FakePod]
    runtime_processes: int
    kernel_threads: int
    host_processes: dict[str, int]
    """Host-process command name to the number of processes with it."""

    @property
    def proc_root(self) -> Path:
        """``--proc-root`` for the exporter."""
        return self.root / "proc"

    @property
    def cgroup_root(self) -> Path:
        """``--cgroup-root`` for the exporter."""
        return self.root / "sys" / "fs" / "cgroup"

    @property
    def processes(self) -> int:
        """Every process directory under :attr:`proc_root`."""
        pod_processes = sum(len(c.pids) for pod in self.pods for c in pod.containers)
        return (
            pod_processes
            + self.runtime_processes
            + self.kernel_threads
            + sum(self.host_processes.values())
        )

    def summary(self) -> dict[str, int]:
        """Counts, for reports."""
        return {
            "pods": len(self.pods),
            "app_containers": sum(len(pod.app_containers) for pod in self.pods),
            "sandboxes": len(self.pods),
            "processes": self.processes,
            "runtime_processes": self.runtime_processes,
            "kernel_threads": self.kernel_threads,
            "host_processes": sum(self.host_processes.values()),
            "host_process_groups": len(self.host_processes),
        }


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


class _ProcWriter:
    """Writes /proc/<pid> directories with consecutive PIDs."""

    def __init__(self, proc_root: Path, rng: random.Random) -> None:
        self.proc_root = proc_root
        self.rng = rng
        self.next_pid = 1

    def add(
        self,
        comm: str,
        cgroup_path: str,
        *,
        ppid: int = 1,
        kernel_thread: bool = False,
        threads: int = 1,
    ) -> int:
        pid = self.next_pid
        self.next_pid += 1
        rng = self.rng
        utime = 0 if kernel_thread else rng.randrange(0, 500_000)
        stime = rng.randrange(0, 50_000)
        rss_pages = 0 if kernel_thread else rng.randrange(100, 60_000)
        flags = _PF_KTHREAD | 0x8040 if kernel_thread else _USER_PROCESS_FLAGS
        start_ticks = 200 + pid * 7
        vsize = 0 if kernel_thread else rss_pages * _PAGE_SIZE * 3
        # proc(5) fields 3..52 after "pid (comm)".
        fields = [
            "S", ppid, pid, pid, 0, -1, flags, 4123, 0, 12, 0, utime, stime, 0, 0, 20, 0,
            threads, 0, start_ticks, vsize, rss_pages, 18446744073709551615, 0, 0, 0, 0, 0,
            0, 0, 4096, 17131, 0, 0, 0, 17, pid % 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ]  # fmt: skip
        directory = self.proc_root / str(pid)
        _write(directory / "stat", f"{pid} ({comm}) {' '.join(map(str, fields))}\n")
        _write(directory / "comm", f"{comm}\n")
        size = max(rss_pages * 3, 1)
        _write(directory / "statm", f"{size} {rss_pages} {rss_pages // 4} 53 0 {size // 3} 0\n")
        _write(directory / "cgroup", f"0::{cgroup_path}\n")
        return pid


def _pressure(rng: random.Random, *, full: bool = True) -> str:
    some = rng.randrange(0, 10**9)
    full_total = rng.randrange(0, some + 1) if full else 0
    return (
        f"some avg10=0.00 avg60=0.00 avg300=0.00 total={some}\n"
        f"full avg10=0.00 avg60=0.00 avg300=0.00 total={full_total}\n"
    )


def _write_cgroup(
    directory: Path,
    *,
    rng: random.Random,
    pids: list[int],
    threads: int,
    cpu_usec: int,
    memory_bytes: int,
    cpu_limit_cores: float | None,
    memory_limit_bytes: int | None,
) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    inactive_file = memory_bytes // 8
    anon = memory_bytes * 3 // 4
    file_bytes = memory_bytes - anon
    periods = cpu_usec // 100_000
    throttled = periods // 50 if cpu_limit_cores is not None else 0
    files = {
        "cgroup.controllers": _CONTROLLERS,
        "cgroup.type": "domain\n",
        "cgroup.procs": "".join(f"{pid}\n" for pid in pids),
        "cgroup.threads": "".join(f"{pid}\n" for pid in pids),
        "cpu.stat": (
            f"usage_usec {cpu_usec}\nuser_usec {cpu_usec * 7 // 10}\n"
            f"system_usec {cpu_usec * 3 // 10}\ncore_sched.force_idle_usec 0\n"
            f"nr_periods {periods}\nnr_throttled {throttled}\n"
            f"throttled_usec {throttled * 20_000}\nnr_bursts 0\nburst_usec 0\n"
        ),
        "cpu.max": (
            "max 100000\n"
            if cpu_limit_cores is None
            else f"{int(cpu_limit_cores * 100_000)} 100000\n"
        ),
        "cpu.weight": "100\n",
        "memory.current": f"{memory_bytes}\n",
        "memory.max": "max\n" if memory_limit_bytes is None else f"{memory_limit_bytes}\n",
        "memory.stat": (
            f"anon {anon}\nfile {file_bytes}\nkernel {memory_bytes // 100}\n"
            f"shmem 0\nfile_mapped {file_bytes // 3}\ninactive_anon {anon // 4}\n"
            f"active_anon {anon - anon // 4}\ninactive_file {inactive_file}\n"
            f"active_file {file_bytes - inactive_file}\nunevictable 0\n"
            f"pgfault {rng.randrange(10**6)}\npgmajfault {rng.randrange(100)}\n"
        ),
        "memory.events": f"low 0\nhigh 0\nmax 0\noom 0\noom_kill {rng.choice((0, 0, 0, 1))}\n",
        "memory.swap.current": "0\n",
        "pids.current": f"{threads}\n",
        "cpu.pressure": _pressure(rng),
        "memory.pressure": _pressure(rng),
        "io.pressure": _pressure(rng),
    }
    for name, text in files.items():
        (directory / name).write_text(text, encoding="utf-8")


def _pod_slice(qos_class: str, uid: str) -> str:
    underscored = uid.replace("-", "_")
    if qos_class == "Guaranteed":
        return f"/kubepods.slice/kubepods-pod{underscored}.slice"
    parent = qos_class.lower()
    return f"/kubepods.slice/kubepods-{parent}.slice/kubepods-{parent}-pod{underscored}.slice"


def _write_node_files(proc_root: Path, rng: random.Random, cpus: int) -> None:
    # user nice system idle iowait irq softirq steal guest guest_nice, in ticks.
    per_cpu = [
        [
            rng.randrange(10**6, 10**7), 0, rng.randrange(10**5, 10**6),
            rng.randrange(10**7, 10**8), rng.randrange(10**4), 0, rng.randrange(10**4), 0, 0, 0,
        ]
        for _ in range(cpus)
    ]  # fmt: skip
    total = [sum(column) for column in zip(*per_cpu, strict=True)]
    lines = ["cpu  " + " ".join(map(str, total))]
    lines += [f"cpu{index} " + " ".join(map(str, row)) for index, row in enumerate(per_cpu)]
    lines += ["intr 1 0", "ctxt 123456", "btime 1714380000", "processes 4000"]
    _write(proc_root / "stat", "\n".join(lines) + "\n")
    _write(
        proc_root / "meminfo",
        "MemTotal:       65843200 kB\nMemFree:        12000000 kB\n"
        "MemAvailable:   40000000 kB\nBuffers:          400000 kB\nCached:         20000000 kB\n",
    )
    for resource in ("cpu", "memory", "io"):
        _write(proc_root / "pressure" / resource, _pressure(rng, full=resource != "cpu"))


def generate_fake_node(
    root: str | os.PathLike[str],
    *,
    pods: int = 110,
    processes: int = 1000,
    cpus: int = 16,
    seed: int = 0,
) -> FakeNode:
    """Write a fake node under ``root`` (created if missing) and describe it.

    Raises:
        ValueError: ``processes`` is too small for the pods, shims and kernel threads
            (about ten per pod); the message gives the minimum.
    """
    rng = random.Random(seed)  # test data, not secrets
    base = Path(root)
    proc_root = base / "proc"
    cgroup_root = base / "sys" / "fs" / "cgroup"
    (base / "var" / "lib" / "kubelet").mkdir(parents=True, exist_ok=True)
    _write(cgroup_root / "cgroup.controllers", _CONTROLLERS)
    _write(cgroup_root / "cgroup.subtree_control", "cpuset cpu io memory hugetlb pids\n")
    for slice_path in ("kubepods.slice", "kubepods.slice/kubepods-burstable.slice",
                       "kubepods.slice/kubepods-besteffort.slice", "system.slice",
                       "system.slice/containerd.service", "init.scope", "user.slice"):  # fmt: skip
        _write(cgroup_root / slice_path / "cgroup.controllers", _CONTROLLERS)
    _write_node_files(proc_root, rng, cpus)
    writer = _ProcWriter(proc_root, rng)
    writer.add("systemd", "/init.scope")

    kernel_threads = min(_KERNEL_THREADS, max(processes // 20, 0))
    for index in range(kernel_threads):
        writer.add(f"kworker/{index % cpus}:{index // cpus}", "/", ppid=2, kernel_thread=True)
    containerd = writer.add("containerd", "/system.slice/containerd.service", threads=40)

    fake_pods: list[FakePod] = []
    for pod_index in range(pods):
        uid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        qos_class = _QOS_CLASSES[pod_index % len(_QOS_CLASSES)]
        pod = FakePod(uid=uid, qos_class=qos_class)
        shim = writer.add("containerd-shim", "/system.slice/containerd.service", ppid=1, threads=12)
        pod_slice = _pod_slice(qos_class, uid)
        commands = [("pause", 1, True)] + [
            (rng.choice(("nginx", "java", "python3", "node", "envoy", "redis-server")),
             rng.randint(1, 4), False)
            for _ in range(rng.randint(1, 3))
        ]  # fmt: skip
        for command, process_count, sandbox in commands:
            container = FakeContainer(
                container_id=f"{rng.getrandbits(256):064x}", command=command, sandbox=sandbox
            )
            scope = f"{pod_slice}/cri-containerd-{container.container_id}.scope"
            for _ in range(process_count):
                container.pids.append(writer.add(command, scope, ppid=shim, threads=4))
            container.cpu_usec = rng.randrange(10**6, 10**10) if not sandbox else 40_000
            container.memory_bytes = (
                rng.randrange(16 * _MIB, 2048 * _MIB) if not sandbox else 400 * 1024
            )
            pod.containers.append(container)
        fake_pods.append(pod)
    runtime_processes = 1 + pods
    del containerd

    used = writer.next_pid - 1
    remaining = processes - used
    if remaining < 0:
        raise ValueError(
            f"{processes} processes are too few for {pods} pods: their containers, shims, "
            f"containerd, systemd and {kernel_threads} kernel threads already need {used}"
        )
    host_processes: dict[str, int] = {"systemd": 1}
    for index in range(remaining):
        command = _HOST_COMMANDS[index % len(_HOST_COMMANDS)]
        service = command.replace("/", "-")
        writer.add(command, f"/system.slice/{service}.service")
        host_processes[command] = host_processes.get(command, 0) + 1

    for pod in fake_pods:
        _write_pod_cgroups(cgroup_root, pod, rng)
    return FakeNode(
        root=base,
        pods=fake_pods,
        runtime_processes=runtime_processes,
        kernel_threads=kernel_threads,
        host_processes=host_processes,
    )


def _write_pod_cgroups(cgroup_root: Path, pod: FakePod, rng: random.Random) -> None:
    pod_slice = _pod_slice(pod.qos_class, pod.uid)
    pod_dir = cgroup_root / pod_slice.lstrip("/")
    limited = pod.qos_class == "Guaranteed"
    for container in pod.containers:
        limit_bytes = container.memory_bytes * 2 if limited and not container.sandbox else None
        _write_cgroup(
            pod_dir / f"cri-containerd-{container.container_id}.scope",
            rng=rng,
            pids=container.pids,
            threads=len(container.pids) * 4,
            cpu_usec=container.cpu_usec,
            memory_bytes=container.memory_bytes,
            cpu_limit_cores=2.0 if limited and not container.sandbox else None,
            memory_limit_bytes=limit_bytes,
        )
    _write_cgroup(
        pod_dir,
        rng=rng,
        pids=[],
        threads=sum(len(c.pids) * 4 for c in pod.containers),
        cpu_usec=sum(c.cpu_usec for c in pod.containers) + 1000,
        memory_bytes=sum(c.memory_bytes for c in pod.containers) + 64 * 1024,
        cpu_limit_cores=2.0 * len(pod.app_containers) if limited else None,
        memory_limit_bytes=(
            sum(c.memory_bytes * 2 for c in pod.app_containers) if limited else None
        ),
    )


def main(argv: list[str] | None = None) -> int:
    """Write a fake node and print its counts as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", help="directory to write the node under")
    parser.add_argument("--pods", type=int, default=110)
    parser.add_argument("--processes", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    arguments = parser.parse_args(argv)
    node = generate_fake_node(
        arguments.root, pods=arguments.pods, processes=arguments.processes, seed=arguments.seed
    )
    json.dump(
        {
            "proc_root": str(node.proc_root),
            "cgroup_root": str(node.cgroup_root),
            **node.summary(),
        },
        sys.stdout,
        indent=2,
    )
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
