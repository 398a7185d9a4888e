"""Fake node roots for first-boot tests: a minimal sysfs, the plan, the bind status.

`write_sysfs` writes only what first boot reads (vendor, device, class, uevent and the
driver link of each function, /sys/class/kfd for amdgpu); `tests.fakesys` builds whole
machines where a test wants a realistic one.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

from installer_ext import paths
from installer_ext.plan.model import Passthrough, Plan


@dataclass(frozen=True)
class Fn:
    address: str
    ids: str = "10de:2206"
    cls: str = "030000"
    driver: str | None = "vfio-pci"
    group: int = 1

    @property
    def vendor(self) -> str:
        return self.ids.split(":")[0]

    @property
    def device(self) -> str:
        return self.ids.split(":")[1]


def write_sysfs(root: str, fns: list[Fn], kfd: bool = False) -> None:
    for fn in fns:
        dev = os.path.join(root, "sys", "devices", "pci0000:00", fn.address)
        os.makedirs(dev, exist_ok=True)
        for name, value in (("vendor", f"0x{fn.vendor}"), ("device", f"0x{fn.device}"), ("class", f"0x{fn.cls}")):
            with open(os.path.join(dev, name), "w") as f:
                f.write(value + "\n")
        with open(os.path.join(dev, "uevent"), "w") as f:
            f.write((f"DRIVER={fn.driver}\n" if fn.driver else "") + f"PCI_CLASS={int(fn.cls, 16):X}\n"
                    f"PCI_ID={fn.ids.upper()}\nPCI_SLOT_NAME={fn.address}\n")
        bus = os.path.join(root, "sys", "bus", "pci", "devices")
        os.makedirs(bus, exist_ok=True)
        link = os.path.join(bus, fn.address)
        if not os.path.lexists(link):
            os.symlink(os.path.relpath(dev, bus), link)
        if fn.driver:
            drv = os.path.join(root, "sys", "bus", "pci", "drivers", fn.driver)
            os.makedirs(drv, exist_ok=True)
            os.symlink(os.path.relpath(drv, dev), os.path.join(dev, "driver"))
    if kfd:
        os.makedirs(os.path.join(root, "sys", "class", "kfd", "kfd"), exist_ok=True)


def gpu_addresses(n: int, bus_base: int = 0x40) -> list[str]:
    """n distinct addresses, 8 functions per slot, 32 slots per bus."""
    out = []
    for i in range(n):
        bus, slot, fn = bus_base + i // 256, (i // 8) % 32, i % 8
        out.append(f"0000:{bus:02x}:{slot:02x}.{fn}")
    return out


@dataclass
class Host:
    root: str
    node: str
    bound: list[Fn]
    host_gpus: list[Fn] = field(default_factory=list)
    plan: Plan | None = None

    @property
    def plan_path(self) -> str:
        return paths.under(self.root, paths.PLAN_FILE)

    @property
    def state_dir(self) -> str:
        return paths.under(self.root, paths.FIRSTBOOT_STATE_DIR)

    @property
    def status_path(self) -> str:
        return paths.under(self.root, paths.BIND_STATUS_FILE)

    def inventory(self) -> list[Fn]:
        """What the pcidevices controller lists for this node."""
        return self.bound + self.host_gpus

    def state(self, step: str) -> dict:
        with open(os.path.join(self.state_dir, "steps", f"{step}.json")) as f:
            return json.load(f)

    def cluster(self) -> dict:
        """What the reconciler did for this node (the cluster step's details)."""
        return self.state("cluster")["result"]["details"]

    def status(self) -> dict:
        with open(os.path.join(self.state_dir, "status.json")) as f:
            return json.load(f)

    def done(self) -> dict | None:
        return state_json(self.state_dir, "done")


def state_json(state_dir: str, name: str) -> dict | None:
    """A JSON file of a node's first-boot state dir (`done`, `status.json`), None when
    it is not written yet."""
    try:
        with open(os.path.join(state_dir, name)) as f:
            return json.load(f)
    except FileNotFoundError:
        return None


def make_plan(bound: list[Fn], host_gpus: list[Fn], plugins: list[str] | None = None, claims: bool = True) -> Plan:
    if plugins is None:
        plugins = sorted({{"10de": "nvidia", "1002": "amd"}.get(g.vendor, "") for g in host_gpus} - {""})
    return Plan(
        enabled=True,
        gpu_drivers=bool(host_gpus),
        cpu_vendor="intel",
        iommu_state="enabled",
        groups_predicted=False,
        passthrough=[Passthrough(f.address, f.vendor, f.device, f.group, "selected", "address", "gpu") for f in bound],
        host_gpus=[g.address for g in host_gpus],
        settings={"pci-pt-enable": "true", "gpu-enable": "true" if host_gpus else "false"},
        addons={"pcidevices-controller": True},
        claims=claims,
        device_plugins=plugins,
    )


def bind_status(bound: list[Fn], extra: list[dict] | None = None, skipped: str | None = None) -> dict:
    devices = [
        {"address": f.address, "vendor_id": f.vendor, "device_id": f.device, "status": "bound", "reason": None,
         "driver": "vfio-pci", "previous_driver": "nvidia"}
        for f in bound
    ]
    return {"version": 1, "skipped": skipped is not None, "skip_reason": skipped,
            "devices": [] if skipped else devices + (extra or []), "sriov": []}


def record_previous_drivers(root: str, fns: list[Fn], driver: str | None) -> None:
    """The binder's persistent record of the drivers the devices had before it bound
    them (installer_ext.boot.record.Record, as `bind` writes it)."""
    from installer_ext.boot.record import Record

    rec = Record(root)
    for f in fns:
        rec.remember(f.address, f.vendor, f.device, driver, None)
    rec.save()


def make_host(root: str, node: str, bound: list[Fn], host_gpus: list[Fn] = (), *, kfd: bool = False,
              status: dict | None | str = "auto", plan: Plan | None = None, hostname_file: bool = True) -> Host:
    host_gpus = list(host_gpus)
    write_sysfs(root, bound + host_gpus, kfd=kfd)
    plan = plan or make_plan(bound, host_gpus)
    os.makedirs(os.path.dirname(paths.under(root, paths.PLAN_FILE)), exist_ok=True)
    with open(paths.under(root, paths.PLAN_FILE), "w") as f:
        json.dump(plan.to_json(), f, indent=2)
    if status == "auto":
        status = bind_status(bound)
        record_previous_drivers(root, bound, "nvidia")
    if status is not None:
        p = paths.under(root, paths.BIND_STATUS_FILE)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "w") as f:
            f.write(status if isinstance(status, str) else json.dumps(status))
    if hostname_file:
        os.makedirs(os.path.join(root, "etc"), exist_ok=True)
        with open(os.path.join(root, "etc", "hostname"), "w") as f:
            f.write(node + "\n")
    return Host(root, node, list(bound), host_gpus, plan)
