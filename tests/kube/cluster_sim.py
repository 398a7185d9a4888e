"""A whole Harvester cluster around the fake API server, for the multi-node tests.

Each `SimNode` is one machine: a fake sysfs tree built from a tests.fakesys machine,
the plan the real planner makes for it, the real binder run at each boot against the
simulated kernel (`ControllerKernel`), the files a Harvester node has (rancherd's
config with its role, /etc/hostname, RKE2's admin kubeconfig on a server, the kubelet's
kubeconfig on every node) and the pcidevices controller's pod (controller.py).

`ClusterSim` plays the rest of Harvester, on a ticker thread (tests wait for states,
never for time):
- rancherd creates the pcidevices-controller Addon late (after `addon_after` ticks,
  disabled: harvester/addons pkg/templates/pcidevices-controller.yaml `enabled: false`
  unless the install config enables it);
- Harvester's addon controller: an enabled Addon goes through AddonEnabling with the
  InProgress condition True for `deploy_ticks` ticks, then AddonDeploySuccessful
  (harvester/harvester pkg/controller/master/addon/addon_processing.go
  processEnableAddon / processEnablingAddon; the webhook refuses updates meanwhile);
- the addon's DaemonSet: once deployed, a controller pod starts on every joined node
  (a Node object exists), again after a node reboots, and when a test restarts it;
- the kubelets: a labelled node with its device plugin's DaemonSet shows the GPUs in
  its allocatable (sim.FakeKubelet).
"""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import yaml

from installer_ext import paths
from installer_ext.boot.binder import bind
from installer_ext.boot.options import Options as BindOptions
from installer_ext.plan.model import Plan
from tests.fakesys.builder import Machine, build
from tests.kube.certs import Pki, node_client_cert
from tests.kube.controller import ControllerKernel, PciDevicesController
from tests.kube.fakeapi import FakeApiServer, Request, Rule
from tests.kube.hosts import state_json
from tests.kube.sim import FakeKubelet
from tests.planning import plan_for

ADDON = ("addons", "pcidevices-controller", "harvester-system")


@dataclass
class NodeSpec:
    name: str
    machine: Callable[[], Machine]
    section: dict[str, Any]  # the pciPassthrough section
    install: dict[str, Any]  # the install section (disk, management NIC)
    role: str  # server | agent
    management: tuple[str, ...]  # NICs of mgmt-br / mgmt-bo
    native: dict[str, str] = field(default_factory=dict)  # vendor:device -> driver the tree does not show
    kfd: bool = False  # amdgpu loaded: /sys/class/kfd
    gpus: dict[str, int] = field(default_factory=dict)  # plugin -> GPUs the kubelet will show


class SimNode:
    def __init__(self, spec: NodeSpec, root: str, api: FakeApiServer, pki: Pki) -> None:
        self.spec = spec
        self.name = spec.name
        self.root = root
        self.api = api
        self.pki = pki
        self.kernel: ControllerKernel | None = None
        self.plan: Plan | None = None
        self.boots = 0
        self.bind_results: list[Any] = []
        self.controller: PciDevicesController | None = None

    # -- install ---------------------------------------------------------------------------
    def install(self) -> Plan:
        """What the installer does: plan on the machine, write plan.json and the node's
        identity files."""
        build(self.spec.machine(), self.root)
        self.plan = plan_for(self.root, self.spec.section, self.spec.install)
        path = paths.under(self.root, paths.PLAN_FILE)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            json.dump(self.plan.to_json(), f, indent=2)
        etc = os.path.join(self.root, "etc")
        os.makedirs(os.path.join(etc, "rancher", "rancherd"), exist_ok=True)
        with open(os.path.join(etc, "hostname"), "w") as f:
            f.write(self.name + "\n")
        # harvester/harvester pkg/installer/config/templates/rancherd-config.yaml
        role = "cluster-init" if self.spec.role == "server" else "agent"
        with open(os.path.join(etc, "rancher", "rancherd", "config.yaml"), "w") as f:
            yaml.safe_dump({"role": role, "nodeName": self.name}, f)
        return self.plan

    @property
    def admin_kubeconfig(self) -> str:
        return os.path.join(self.root, "etc", "rancher", "rke2", "rke2.yaml")

    @property
    def kubelet_kubeconfig(self) -> str:
        return os.path.join(self.root, "var", "lib", "rancher", "rke2", "agent", "kubelet.kubeconfig")

    @property
    def state_dir(self) -> str:
        return paths.under(self.root, paths.FIRSTBOOT_STATE_DIR)

    def write_kubeconfigs(self) -> None:
        """RKE2 writes these once it runs: the admin one on a server only."""
        if self.spec.role == "server":
            os.makedirs(os.path.dirname(self.admin_kubeconfig), exist_ok=True)
            self.api.kubeconfig(self.admin_kubeconfig)
        agent = os.path.dirname(self.kubelet_kubeconfig)
        os.makedirs(agent, exist_ok=True)
        crt, key = node_client_cert(self.pki, self.name)
        for src, dst in ((crt, "client-kubelet.crt"), (key, "client-kubelet.key"), (self.pki.ca_cert, "server-ca.crt")):
            shutil.copyfile(src, os.path.join(agent, dst))
        # k3s pkg/daemons/control/deps/deps.go kubeconfigTemplate: file references
        doc = {
            "apiVersion": "v1", "kind": "Config",
            "clusters": [{"name": "local", "cluster": {"server": self.api.url,
                                                         "certificate-authority": os.path.join(agent, "server-ca.crt")}}],
            "contexts": [{"name": "Default", "context": {"cluster": "local", "namespace": "default", "user": "user"}}],
            "current-context": "Default", "preferences": {},
            "users": [{"name": "user", "user": {"client-certificate": os.path.join(agent, "client-kubelet.crt"),
                                                  "client-key": os.path.join(agent, "client-kubelet.key")}}],
        }
        with open(self.kubelet_kubeconfig, "w") as f:
            yaml.safe_dump(doc, f, sort_keys=False)

    # -- boot ------------------------------------------------------------------------------
    def boot(self) -> Any:
        """A (re)boot: the kernel's state starts over (devices on their native drivers,
        no VFs, nothing in /run), the persistent files stay, the binder runs."""
        for d in ("sys", "proc", "run", "dev"):
            shutil.rmtree(os.path.join(self.root, d), ignore_errors=True)
        build(self.spec.machine(), self.root)
        if self.spec.kfd:
            os.makedirs(os.path.join(self.root, "sys", "class", "kfd", "kfd"), exist_ok=True)
        native = dict(self.spec.native)
        k = ControllerKernel(self.root, native=native, vfio_ids=tuple(self.plan.vfio_ids if self.plan else ()))
        for drv in set(native.values()):
            k.load_driver(drv)
        self.kernel = k
        self.boots += 1
        result = bind(BindOptions(root=self.root, io=k.io, clock=k.clock, out=io.StringIO(), timeout=2.0))
        self.bind_results.append(result)
        if self.controller is not None:
            self.controller.kernel = k
        return result

    def register(self) -> None:
        """The kubelet registers the Node (kubernetes.io/hostname, as kubelets label)."""
        if self.api.get("nodes", self.name) is None:
            self.api.put({"apiVersion": "v1", "kind": "Node",
                          "metadata": {"name": self.name, "labels": {"kubernetes.io/hostname": self.name}},
                          "status": {"allocatable": {"cpu": "16", "memory": "65536Mi", "pods": "110"}}})

    def firstboot_args(self, *extra: str) -> list[str]:
        return ["--root", self.root, "--kubeconfig", self.admin_kubeconfig, "--kubelet-kubeconfig",
                self.kubelet_kubeconfig, *extra]

    def done(self) -> dict | None:
        return state_json(self.state_dir, "done")

    def status(self) -> dict | None:
        return state_json(self.state_dir, "status.json")


class ClusterSim:
    def __init__(self, api: FakeApiServer, pki: Pki, tmp: str, specs: list[NodeSpec], addon_after: int = 5,
                 deploy_ticks: int = 3, interval: float = 0.01) -> None:
        self.api = api
        self.nodes = {s.name: SimNode(s, os.path.join(tmp, s.name), api, pki) for s in specs}
        self.addon_after = addon_after
        self.deploy_ticks = deploy_ticks
        self.interval = interval
        self.ticks = 0
        self.lock = threading.RLock()
        self._deploying = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.down: set[str] = set()  # nodes whose controller pod is held down by the test
        self.errors: list[str] = []
        api.unserved.add("devices.harvesterhci.io")  # the addon's CRDs come with its first pod
        self.kubelet = FakeKubelet(api, {s.name: dict(s.gpus) for s in specs if s.gpus}, after_gets=1)
        for n in self.nodes.values():
            n.controller = PciDevicesController(api, n.name, None, n.spec.management)  # type: ignore[arg-type]

    # -- the world's clock -----------------------------------------------------------------
    def start(self) -> ClusterSim:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def __enter__(self) -> ClusterSim:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception as exc:  # noqa: BLE001 - a sim bug must show, not kill the thread silently
                self.errors.append(repr(exc))
            time.sleep(self.interval)

    def tick(self) -> None:
        with self.lock:
            self.ticks += 1
            self._rancherd()
            deployed = self._addon_controller()
            for n in self.nodes.values():
                c = n.controller
                assert c is not None
                if n.kernel is None:
                    continue
                joined = self.api.get("nodes", n.name) is not None
                if deployed and joined and not c.running and n.name not in self.down:
                    c.start()
                c.tick()

    def _rancherd(self) -> None:
        if self.ticks >= self.addon_after and self.api.get(*ADDON) is None:
            self.api.put({"apiVersion": "harvesterhci.io/v1beta1", "kind": "Addon",
                          "metadata": {"name": ADDON[1], "namespace": ADDON[2]},
                          "spec": {"enabled": False, "repo": "http://harvester-cluster-repo.cattle-system.svc/charts",
                                   "chart": "harvester-pcidevices-controller", "version": "0.4.1",
                                   "valuesContent": ""}})

    def _addon_controller(self) -> bool:
        addon = self.api.get(*ADDON)
        if addon is None or not (addon.get("spec") or {}).get("enabled"):
            return False
        st = (addon.get("status") or {}).get("status")
        if st == "AddonDeploySuccessful":
            return True
        if st != "AddonEnabling":
            self._deploying = 0
            self.api.mutate(ADDON[0], ADDON[1], lambda o: o.update(status={
                "status": "AddonEnabling", "conditions": [{"type": "InProgress", "status": "True"}]}), ADDON[2])
            return False
        self._deploying += 1
        if self._deploying >= self.deploy_ticks:
            self.api.mutate(ADDON[0], ADDON[1], lambda o: o.update(status={
                "status": "AddonDeploySuccessful",
                "conditions": [{"type": "InProgress", "status": "False"}, {"type": "Completed", "status": "True"}]}),
                ADDON[2])
            return True
        return False

    # -- what tests do to the world -----------------------------------------------------------
    def install_and_boot(self, name: str) -> SimNode:
        with self.lock:
            n = self.nodes[name]
            n.install()
            n.boot()
            n.write_kubeconfigs()
            n.register()
            return n

    def reboot(self, name: str) -> Any:
        with self.lock:
            n = self.nodes[name]
            assert n.controller is not None
            n.controller.stop()  # the pod dies with the node; the DaemonSet starts it again
            return n.boot()

    def restart_controller(self, name: str) -> None:
        with self.lock:
            c = self.nodes[name].controller
            assert c is not None
            c.stop()
            c.start()

    def settle(self, predicate: Callable[[], bool], timeout: float = 60.0, what: str = "") -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with self.lock:
                if predicate():
                    return
            time.sleep(self.interval)
        raise AssertionError(f"not reached within {timeout:g}s: {what}; sim errors: {self.errors[-3:]}")


# -- the nodes of the cluster tests ------------------------------------------------------------

def workstation_server(name: str = "harv-0") -> NodeSpec:
    """The first node (rancherd `cluster-init`): RTX 3080 + its HDMI audio and the spare
    I210 to VMs (bound by id at boot)."""
    from tests.fakesys.machines import intel_workstation, node_of
    from tests.planning import WORKSTATION_INSTALL

    return NodeSpec(name, lambda: node_of(intel_workstation()),
                    {"enabled": True, "devices": [{"address": "0000:01:00.0"}, {"address": "0000:03:00.0"}]},
                    WORKSTATION_INSTALL, "server", ("eno1",))


def epyc_agent(name: str = "harv-1") -> NodeSpec:
    """A joined agent: one Radeon Pro to VMs, the other kept for containers (ROCm plugin),
    X710 port 1 with 4 VFs for VMs (port 0 carries the management network)."""
    from tests.fakesys.machines import amd_epyc_server, node_of
    from tests.planning import EPYC_INSTALL

    return NodeSpec(name, lambda: node_of(amd_epyc_server()),
                    {"enabled": True, "gpuDrivers": True, "devices": [{"address": "0000:03:00.0"}],
                     "hostGpus": [{"address": "0000:04:00.0"}],
                     "sriov": [{"address": "0000:02:00.1", "numVfs": 4, "vfsToVfio": True}]},
                    EPYC_INSTALL, "agent", ("enp2s0f0",), native={"8086:154c": "iavf"}, kfd=True, gpus={"amd": 1})


def dual_gpu_agent(name: str = "harv-2") -> NodeSpec:
    """A joined agent: one RTX 3080 to VMs, the other kept for containers on a stock node
    without the NVIDIA driver (left to the GPU Operator)."""
    from tests.fakesys.machines import intel_dual_gpu, node_of
    from tests.planning import WORKSTATION_INSTALL

    return NodeSpec(name, lambda: node_of(intel_dual_gpu()),
                    {"enabled": True, "gpuDrivers": True, "devices": [{"address": "0000:01:00.0"}],
                     "hostGpus": [{"address": "0000:02:00.0"}]},
                    WORKSTATION_INSTALL, "agent", ("eno1",))


def start_firstboot(node: SimNode, *extra: str) -> Any:
    import subprocess
    import sys

    from tests.kube.conftest import FAST, REPO

    missing = os.path.join(node.root, "no-nvidia-smi")  # a stock node: no NVIDIA driver, no nvidia-smi
    return subprocess.Popen([sys.executable, "-m", "installer_ext", "firstboot", *node.firstboot_args(
        *FAST, "--nvidia-smi", missing, *extra)], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


class ReconcileTimer:
    """installer-ext-reconcile.timer on a server node: `firstboot --reconcile` again and
    again, each pass its own process (as the timer's oneshot service)."""

    def __init__(self, node: SimNode, interval: float = 0.1) -> None:
        self.node = node
        self.interval = interval
        self.passes: list[tuple[int, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.proc: Any = None

    def __enter__(self) -> ReconcileTimer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=60)

    def _run(self) -> None:
        while not self._stop.is_set():
            p = self.proc = start_firstboot(self.node, "--reconcile")
            _, err = p.communicate(timeout=120)
            self.passes.append((p.returncode, err))
            self._stop.wait(self.interval)


class Supervisor(threading.Thread):
    """systemd's Restart=on-failure for one node's first boot."""

    def __init__(self, node: SimNode) -> None:
        super().__init__(daemon=True)
        self.node = node
        self.runs: list[tuple[int, str]] = []
        self.proc: Any = None
        self.lock = threading.Lock()

    def run(self) -> None:
        while len(self.runs) < 12:
            with self.lock:
                self.proc = start_firstboot(self.node)
            _, err = self.proc.communicate(timeout=300)
            self.runs.append((self.proc.returncode, err))
            if self.proc.returncode == 0 or os.path.exists(os.path.join(self.node.state_dir, "gave-up")):
                return

    def kill(self) -> None:
        with self.lock:
            p = self.proc
        if p is not None and p.poll() is None:
            os.kill(p.pid, signal.SIGKILL)
            p.wait(timeout=30)


@dataclass
class Kill:
    """SIGKILL the process of `who` (a node's first boot, or "timer" for the server's
    reconcile pass) at the first request matching `match`, before the server handles
    it or after the write landed (before the reply)."""

    who: str
    when: str  # before | after
    match: Callable[[SimNode, Request], bool]
    label: str
    fired: bool = False


def run_cluster(api: FakeApiServer, pki: Pki, tmp: str, order: tuple[str, ...], kill: Kill | None,
                expect: dict[str, dict[str, str]], restart_controller: str | None = None) -> ClusterSim:
    """The three-node cluster: nodes installed, booted and their first boots started in
    `order` (the server's reconcile timer from its install on), `kill` applied once,
    until every node's supervisor is done and every device of `expect` is on vfio-pci."""
    sim = ClusterSim(api, pki, tmp, [workstation_server(), epyc_agent(), dual_gpu_agent()], addon_after=5)
    sups: dict[str, Supervisor] = {}
    timer: ReconcileTimer | None = None

    def killer(req: Request) -> None:
        if kill is None or kill.fired:
            return
        who = "reconcile; by=harv-0" if kill.who == "timer" else f"node={kill.who})"
        if who not in req.agent or not kill.match(sim.nodes.get(kill.who, sim.nodes["harv-0"]), req):
            return
        kill.fired = True
        if kill.who == "timer":
            p = timer.proc if timer is not None else None
            if p is not None and p.poll() is None:
                os.kill(p.pid, signal.SIGKILL)
        else:
            sups[kill.who].kill()

    if kill is not None:
        api.add_rule(Rule(times=None, **{kill.when: killer}))
    with sim:
        try:
            for name in order:
                node = sim.install_and_boot(name)
                if node.spec.role == "server":
                    timer = ReconcileTimer(node, interval=0.05).__enter__()
                sups[name] = Supervisor(node)
                sups[name].start()
            if restart_controller:
                sim.settle(lambda: sim.nodes[restart_controller].controller.running, timeout=120, what="controller up")
                sim.restart_controller(restart_controller)
            for s in sups.values():
                s.join(timeout=400)
            sim.settle(lambda: all(n.kernel.driver_of(a) == "vfio-pci" for name, n in sim.nodes.items()
                                   for a in expect.get(name, {})), timeout=120, what="every planned device on vfio-pci")
        finally:
            if timer is not None:
                timer.__exit__(None, None, None)
    sim.supervisors = sups  # type: ignore[attr-defined]
    sim.timer_passes = timer.passes if timer is not None else []  # type: ignore[attr-defined]
    return sim


