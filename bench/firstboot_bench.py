"""Figures: API requests and wall time of first boot.

    .venv/bin/python -m bench.firstboot_bench [--devices 64] [--repeat 5]
    .venv/bin/python -m bench.firstboot_bench --cluster [--repeat 3]

One node: a fresh fake cluster each time (TLS on 127.0.0.1, the pcidevices controller
and the kubelet simulated), one NVIDIA GPU kept on the host, N devices bound to
vfio-pci, the first boot of a server node (admin kubeconfig: it carries out its own
request) run as its own process (`python -m installer_ext firstboot`; the unit runs
`installer-ext firstboot`) and once in-process (without interpreter start-up). Prints requests by kind, the
wall time of each run, and the rerun (done marker: no request).

--cluster: the three-node cluster of tests/kube/test_multinode.py (a first node and two
joined agents on tests.fakesys machines, the real planner and binder, the pcidevices
controller simulated on the fake kernel, the server's reconcile timer every 50 ms),
from the first install to every node done: wall time and API requests by identity.
"""

from __future__ import annotations

import argparse
import collections
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

from tests.kube.certs import make_pki
from tests.kube.conftest import FAST, REPO, fake_tool
from tests.kube.fakeapi import FakeApiServer
from tests.kube.hosts import Fn, gpu_addresses, make_host
from tests.kube.sim import harvester_cluster


@dataclass
class Figures:
    devices: int
    requests: int
    by_kind: dict[str, int]
    wall_s: float
    rerun_requests: int


PLURALS = {"settings", "addons", "pcidevices", "pcideviceclaims", "daemonsets", "runtimeclasses", "nodes"}


def _kind(path: str) -> str:
    segs = path.strip("/").split("/")
    if segs[-1] in PLURALS:
        return f"{segs[-1]} (collection)"
    if len(segs) >= 2 and segs[-2] in PLURALS:
        return segs[-2]
    return path  # discovery


def measure(devices: int, workdir: str, pki=None, subprocess_run: bool = True) -> Figures:
    pki = pki or make_pki(f"{workdir}/pki")
    with FakeApiServer(pki) as api:
        bound = [Fn(a, "10de:2204", group=100 + i) for i, a in enumerate(gpu_addresses(devices))]
        host = make_host(f"{workdir}/root", "bench-0", bound, [Fn("0000:01:00.0", "10de:2206", driver="nvidia")])
        harvester_cluster(api, [host])
        smi = fake_tool(f"{workdir}/bin/nvidia-smi", "exit 0\n")
        kc = api.kubeconfig(f"{workdir}/rke2.yaml")
        args = ["--root", host.root, "--kubeconfig", kc, "--role", "server", "--nvidia-smi", smi, "--quiet", *FAST]
        t0 = time.monotonic()
        if subprocess_run:
            p = subprocess.run([sys.executable, "-m", "installer_ext", "firstboot", *args], cwd=REPO,
                               capture_output=True, text=True, timeout=120)
            rc, err = p.returncode, p.stderr
        else:
            from installer_ext.cli import main

            rc, err = main(["firstboot", *args]), ""
        wall = time.monotonic() - t0
        if rc != 0:
            raise SystemExit(f"first boot failed ({rc}): {err}")
        mine = [r for r in api.log if "firstboot" in r.agent]
        kinds = collections.Counter(f"{r.method} {_kind(r.path)}" for r in mine)
        n = len(api.log)
        from installer_ext.cli import main as again

        assert again(["firstboot", *args]) == 0
        return Figures(devices, len(mine), dict(sorted(kinds.items())), wall, len(api.log) - n)


def measure_cluster(workdir: str, pki) -> tuple[float, dict[str, tuple[int, int]], int, int]:
    """(wall seconds, {who: (requests, writes)}, requests in all, writes in all) for the
    three-node cluster. Reads depend on timing (waits poll); writes do not."""
    from tests.kube.cluster_sim import run_cluster
    from tests.kube.test_multinode import PLANNED

    with FakeApiServer(pki) as api:
        t0 = time.monotonic()
        sim = run_cluster(api, pki, workdir, ("harv-0", "harv-1", "harv-2"), None, expect=PLANNED)
        wall = time.monotonic() - t0
        if not all(n.done() for n in sim.nodes.values()):
            raise SystemExit("cluster first boot did not finish")
        who: dict[str, list[int]] = {}
        for r in api.log:
            if "reconcile;" in r.agent:
                key = f"reconcile timer on harv-0 (admin, {len(sim.timer_passes)} passes)"  # type: ignore[attr-defined]
            elif "firstboot;" in r.agent:
                node = r.agent.split("node=")[1].rstrip(")")
                key = f"first boot of {node} ({'kubelet' if r.user.startswith('system:node:') else 'admin'})"
            else:
                continue
            counts = who.setdefault(key, [0, 0])
            counts[0] += 1
            counts[1] += r.method != "GET"
        return (wall, {k: (v[0], v[1]) for k, v in sorted(who.items())}, sum(v[0] for v in who.values()),
                sum(v[1] for v in who.values()))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--devices", type=int, default=64)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--cluster", action="store_true", help="the three-node cluster instead of one node")
    args = ap.parse_args(argv)
    if args.cluster:
        with tempfile.TemporaryDirectory() as tmp:
            pki = make_pki(f"{tmp}/pki")
            runs = sorted((measure_cluster(f"{tmp}/c{i}", pki) for i in range(args.repeat)), key=lambda r: r[0])
        walls = [r[0] for r in runs]
        print(f"3-node cluster (1 server, 2 joined agents), install to every node done: wall time median "
              f"{statistics.median(walls):.2f}s (min {walls[0]:.2f}s, max {walls[-1]:.2f}s, {len(runs)} runs); "
              f"installer-ext's API requests per run {[r[2] for r in runs]}, of which writes {[r[3] for r in runs]}")
        print("the median run, requests (writes) by who:")
        for who, (n, w) in runs[len(runs) // 2][1].items():
            print(f"  {n:4d} ({w:3d})  {who}")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        pki = make_pki(f"{tmp}/pki")
        for mode in (True, False):
            runs = [measure(args.devices, f"{tmp}/{mode}{i}", pki, subprocess_run=mode) for i in range(args.repeat)]
            walls = sorted(r.wall_s for r in runs)
            f = runs[0]
            what = "as a process (python -m installer_ext firstboot)" if mode else "in-process (no interpreter start)"
            print(f"{args.devices} bound devices, {what}: {f.requests} API requests, wall time median "
                  f"{statistics.median(walls):.3f}s (min {walls[0]:.3f}s, max {walls[-1]:.3f}s, {len(runs)} runs); "
                  f"rerun after done: {f.rerun_requests} requests")
        for kind, count in f.by_kind.items():
            print(f"  {count:4d}  {kind}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
