"""A small simulator of the kernel's answers to PCI sysfs writes, on a fake tree.

`FakeKernel(root).io` is a `SysfsIO` whose writes are checked and applied the way the
kernel's store handlers do (drivers/base/bus.c, drivers/pci/pci-sysfs.c, iov.c):

- `drivers/X/unbind` ADDR: ENODEV unless ADDR is bound to X; removes the device's
  `driver` link, the driver's ADDR entry and `DRIVER=` from uevent.
- `drivers_probe` ADDR: ENODEV for an unknown device; nothing if it is bound; else
  binds it to `driver_override` when set (if that driver is loaded), else to vfio-pci if
  its ids were given to vfio-pci (`vfio-pci.ids=`), else to its native driver; a VF whose
  PF has `sriov_drivers_autoprobe` 0 is probed only with an override. Links as the
  kernel makes them (`driver -> ../../../bus/pci/drivers/vfio-pci`, relative).
- `driver_override`: stores the value without its newline, empty clears (`(null)`).
- `sriov_numvfs` N: EINVAL (not a number), ERANGE (> sriov_totalvfs), ENOENT (PF without
  driver), EBUSY (non-zero to another non-zero). Creates/removes VF directories next to
  the PF with `physfn`/`virtfnN` links, bus links and IOMMU groups (a new group per VF,
  or the PF's group), and probes new VFs when autoprobe is 1.
- `sriov_drivers_autoprobe` 0/1.
Any other write raises `UnexpectedWrite`: the binder must touch nothing else.

Write-only attributes (`unbind`, `drivers_probe`) keep the last value written, so a
test can read what the binder wrote. `stall` holds addresses whose probe never binds;
`defer[address] = n` completes a probe only after `n` calls to `tick()` (the fake
clock's sleep calls it), as an asynchronous probe would.
"""

from __future__ import annotations

import errno
import os
import shutil

from installer_ext.boot.sysio import SysfsIO
from installer_ext.clock import Clock
from installer_ext.host.address import PCI_ADDRESS_RE, vf_address

VFIO = "vfio-pci"
DRIVER_FILES = ("bind", "unbind", "new_id", "remove_id")


class UnexpectedWrite(AssertionError):
    pass


class KernelIO(SysfsIO):
    def __init__(self, kernel: FakeKernel) -> None:
        super().__init__()
        self.kernel = kernel
        self.reads: list[str] = []

    def write(self, path: str, value: str) -> None:
        self.writes.append((path, value))
        self.kernel.store(path, value)

    def read(self, path: str, limit: int = 4096) -> str | None:
        self.reads.append(path)
        return super().read(path, limit)

    def readlink(self, path: str) -> str | None:
        self.reads.append(path)
        return super().readlink(path)

    def listdir(self, path: str) -> list[str] | None:
        self.reads.append(path)
        return super().listdir(path)

    def isdir(self, path: str) -> bool:
        self.reads.append(path)
        return super().isdir(path)


class FakeClock(Clock):
    """Time moves only when the code under test sleeps; each sleep ticks the kernel."""

    def __init__(self, kernel: FakeKernel | None = None) -> None:
        self.t = 1000.0
        self.sleeps = 0
        self.kernel = kernel

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.sleeps += 1
        self.t += max(seconds, 0.0)
        if self.kernel is not None:
            self.kernel.tick()


def _oserr(code: int, path: str) -> OSError:
    return OSError(code, os.strerror(code), path)


class FakeKernel:
    def __init__(self, root: str, native: dict[str, str] | None = None, vfio_ids: tuple[str, ...] = (),
                 vf_own_groups: bool = True) -> None:
        self.root = os.path.abspath(root)
        self.sys = os.path.join(self.root, "sys")
        self.pci = os.path.join(self.sys, "bus", "pci")
        self.io = KernelIO(self)
        self.clock = FakeClock(self)
        # vendor:device -> the driver whose id table matches it; learned from the tree.
        self.native: dict[str, str] = {}
        for a in self.addresses():
            drv = self.driver_of(a)
            if drv and drv != VFIO:
                self.native.setdefault(self.ids(a), drv)
        self.native.update(native or {})
        self.vfio_ids = set(vfio_ids)
        self.vf_own_groups = vf_own_groups
        self.stall: set[str] = set()
        self.defer: dict[str, int] = {}
        self._pending: dict[str, list] = {}

    # --- reading the tree ---
    def addresses(self) -> list[str]:
        return sorted(os.listdir(os.path.join(self.pci, "devices")))

    def devdir(self, address: str) -> str:
        return os.path.realpath(os.path.join(self.pci, "devices", address))

    def _attr(self, address: str, name: str) -> str:
        with open(os.path.join(self.devdir(address), name)) as f:
            return f.read().strip()

    def ids(self, address: str) -> str:
        return f"{int(self._attr(address, 'vendor'), 16):04x}:{int(self._attr(address, 'device'), 16):04x}"

    def driver_of(self, address: str) -> str | None:
        link = os.path.join(self.devdir(address), "driver")
        return os.path.basename(os.readlink(link)) if os.path.islink(link) else None

    def override_of(self, address: str) -> str | None:
        v = self._attr(address, "driver_override")
        return None if v == "(null)" else v

    def loaded(self, driver: str) -> bool:
        return os.path.isdir(os.path.join(self.pci, "drivers", driver))

    def group_of(self, address: str) -> int | None:
        link = os.path.join(self.devdir(address), "iommu_group")
        return int(os.path.basename(os.readlink(link))) if os.path.islink(link) else None

    # --- changing the machine, as the kernel would ---
    def load_driver(self, driver: str) -> None:
        d = os.path.join(self.pci, "drivers", driver)
        os.makedirs(d, exist_ok=True)
        for f in DRIVER_FILES:
            open(os.path.join(d, f), "a").close()

    def _set_uevent_driver(self, address: str, driver: str | None) -> None:
        path = os.path.join(self.devdir(address), "uevent")
        lines = [ln for ln in open(path).read().splitlines() if not ln.startswith("DRIVER=")]
        if driver:
            lines.insert(0, f"DRIVER={driver}")
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")

    def attach(self, address: str, driver: str) -> None:
        dev = self.devdir(address)
        drv = os.path.join(self.pci, "drivers", driver)
        os.symlink(os.path.relpath(drv, dev), os.path.join(dev, "driver"))
        os.symlink(os.path.relpath(dev, drv), os.path.join(drv, address))
        self._set_uevent_driver(address, driver)

    def detach(self, address: str) -> None:
        driver = self.driver_of(address)
        if driver is None:
            return
        os.remove(os.path.join(self.devdir(address), "driver"))
        os.remove(os.path.join(self.pci, "drivers", driver, address))
        self._set_uevent_driver(address, None)

    def _match(self, address: str) -> str | None:
        override = self.override_of(address)
        if override is not None:
            return override if self.loaded(override) else None
        physfn = os.path.join(self.devdir(address), "physfn")
        if os.path.islink(physfn):
            pf = os.path.basename(os.readlink(physfn))
            if self._attr(pf, "sriov_drivers_autoprobe") == "0":
                return None
        ids = self.ids(address)
        if ids in self.vfio_ids and self.loaded(VFIO):
            return VFIO
        drv = self.native.get(ids)
        return drv if drv and self.loaded(drv) else None

    def probe(self, address: str) -> None:
        if self.driver_of(address) is not None or address in self.stall:
            return
        drv = self._match(address)
        if drv is None:
            return
        if self.defer.get(address):
            self._pending[address] = [self.defer.pop(address), drv]
            return
        self.attach(address, drv)

    def tick(self) -> None:
        for address, pending in list(self._pending.items()):
            pending[0] -= 1
            if pending[0] <= 0:
                del self._pending[address]
                if self.driver_of(address) is None:
                    self.attach(address, pending[1])

    # --- the store handlers ---
    def store(self, path: str, value: str) -> None:
        real = os.path.realpath(path)
        rel = os.path.relpath(real, self.sys)
        name = os.path.basename(real)
        arg = value[:-1] if value.endswith("\n") else value
        if rel == os.path.join("bus", "pci", "drivers_probe"):
            if arg not in self.addresses():
                raise _oserr(errno.ENODEV, path)
            self._keep(real, value)
            self.probe(arg)
            return
        parent = os.path.dirname(rel)
        if os.path.dirname(parent) == os.path.join("bus", "pci", "drivers") and name == "unbind":
            driver = os.path.basename(parent)
            if arg not in self.addresses() or self.driver_of(arg) != driver:
                raise _oserr(errno.ENODEV, path)
            self._keep(real, value)
            self.detach(arg)
            return
        address = os.path.basename(os.path.dirname(real))
        if not PCI_ADDRESS_RE.match(address) or address not in self.addresses():
            raise UnexpectedWrite(f"write {value!r} to {rel}")
        if name == "driver_override":
            if len(arg) >= 4096:
                raise _oserr(errno.EINVAL, path)
            self._keep(real, (arg or "(null)") + "\n")
        elif name == "sriov_drivers_autoprobe":
            if arg not in ("0", "1"):
                raise _oserr(errno.EINVAL, path)
            self._keep(real, arg + "\n")
        elif name == "sriov_numvfs":
            self._numvfs(address, arg, path)
        else:
            raise UnexpectedWrite(f"write {value!r} to {rel}")

    @staticmethod
    def _keep(path: str, text: str) -> None:
        with open(path, "w") as f:
            f.write(text)

    def _numvfs(self, pf: str, arg: str, path: str) -> None:
        if not arg.isdigit():
            raise _oserr(errno.EINVAL, path)
        n = int(arg)
        cur = int(self._attr(pf, "sriov_numvfs"))
        if n > int(self._attr(pf, "sriov_totalvfs")):
            raise _oserr(errno.ERANGE, path)
        if n == cur:
            return
        if self.driver_of(pf) is None:
            raise _oserr(errno.ENOENT, path)
        if n and cur:
            raise _oserr(errno.EBUSY, path)
        if n == 0:
            for i in range(cur):
                self._remove_vf(pf, i)
        else:
            for i in range(n):
                self._add_vf(pf, i)
        self._keep(os.path.join(self.devdir(pf), "sriov_numvfs"), f"{n}\n")
        if n and self._attr(pf, "sriov_drivers_autoprobe") == "1":
            for i in range(n):
                self.probe(os.path.basename(os.readlink(os.path.join(self.devdir(pf), f"virtfn{i}"))))

    def _new_group(self) -> int:
        base = os.path.join(self.sys, "kernel", "iommu_groups")
        return max((int(g) for g in os.listdir(base)), default=-1) + 1

    def _add_vf(self, pf: str, index: int) -> None:
        pfdir = self.devdir(pf)
        vf = vf_address(pf, int(self._attr(pf, "sriov_offset")), int(self._attr(pf, "sriov_stride")), index)
        assert vf is not None
        vid = f"{int(self._attr(pf, 'vendor'), 16):04x}"
        did = f"{int(self._attr(pf, 'sriov_vf_device'), 16):04x}"
        cls = self._attr(pf, "class")
        d = os.path.join(os.path.dirname(pfdir), vf)
        os.makedirs(d)
        files = {
            "vendor": f"0x{vid}\n", "device": f"0x{did}\n", "class": f"{cls}\n",
            "driver_override": "(null)\n", "reset_method": "flr\n",
            "uevent": f"PCI_CLASS={int(cls, 16):X}\nPCI_ID={vid.upper()}:{did.upper()}\nPCI_SLOT_NAME={vf}\n",
        }
        for name, text in files.items():
            self._keep(os.path.join(d, name), text)
        cfg = bytearray(64)
        cfg[0:2] = int(vid, 16).to_bytes(2, "little")
        cfg[2:4] = int(did, 16).to_bytes(2, "little")
        with open(os.path.join(d, "config"), "wb") as f:
            f.write(bytes(cfg))
        os.symlink(os.path.relpath(pfdir, d), os.path.join(d, "physfn"))
        os.symlink(os.path.relpath(d, pfdir), os.path.join(pfdir, f"virtfn{index}"))
        os.symlink(os.path.relpath(self.pci, d), os.path.join(d, "subsystem"))
        os.symlink(os.path.relpath(d, os.path.join(self.pci, "devices")), os.path.join(self.pci, "devices", vf))
        group = self._new_group() if self.vf_own_groups else self.group_of(pf)
        if group is not None:
            gdir = os.path.join(self.sys, "kernel", "iommu_groups", str(group))
            os.makedirs(os.path.join(gdir, "devices"), exist_ok=True)
            os.symlink(os.path.relpath(gdir, d), os.path.join(d, "iommu_group"))
            os.symlink(os.path.relpath(d, os.path.join(gdir, "devices")), os.path.join(gdir, "devices", vf))

    def _remove_vf(self, pf: str, index: int) -> None:
        link = os.path.join(self.devdir(pf), f"virtfn{index}")
        vf = os.path.basename(os.readlink(link))
        self.detach(vf)
        group = self.group_of(vf)
        if group is not None:
            gdir = os.path.join(self.sys, "kernel", "iommu_groups", str(group))
            os.remove(os.path.join(gdir, "devices", vf))
            if not os.listdir(os.path.join(gdir, "devices")):
                shutil.rmtree(gdir)
        d = self.devdir(vf)
        os.remove(os.path.join(self.pci, "devices", vf))
        os.remove(link)
        shutil.rmtree(d)


# --- plan JSON for the binder's tests (the planner's output, written by hand) ---

def pt(address: str, ids: str, group: int | None = None, bind: str = "address", driver: str | None = None,
       why: str = "selected", vf_of: str | None = None, predicted: bool = False, kind: str = "other") -> dict:
    vendor, device = ids.split(":")
    return {
        "address": address, "vendor_id": vendor, "device_id": device, "iommu_group": group,
        "why": why, "bind_at_boot": bind, "kind": kind, "class_id": None, "group_predicted": predicted,
        "vf_of": vf_of, "driver": driver, "module": None,
    }


def grp(devices: list[str], passthrough: list[str], left: list[str] = (), gid: int | None = None,
        predicted: bool = False) -> dict:
    return {"id": gid, "predicted": predicted, "devices": list(devices), "passthrough": list(passthrough),
            "left": list(left)}


def sriov_entry(address: str, num_vfs: int, vfs_to_vfio: bool = True, ids: str = "", vf_device: str | None = None,
                total: int = 0, vfs: list[str] = ()) -> dict:
    vendor, device = ids.split(":") if ids else ("", "")
    return {"address": address, "num_vfs": num_vfs, "vfs_to_vfio": vfs_to_vfio, "vendor_id": vendor,
            "device_id": device, "total_vfs": total, "vf_device_id": vf_device, "vfs": list(vfs)}


def plan_json(passthrough: list[dict] = (), sriov: list[dict] = (), groups: list[dict] = ()) -> dict:
    return {
        "version": 1, "enabled": True, "gpu_drivers": False,
        "host": {"cpu_vendor": "intel", "iommu_state": "enabled", "groups_predicted": False},
        "passthrough": list(passthrough), "host_gpus": [], "sriov": list(sriov), "kernel_args": [],
        "vfio_ids": [], "refused": [], "warnings": [], "settings": {}, "addons": {}, "claims": False,
        "device_plugins": [], "groups": list(groups), "modules": [],
    }


def write_plan(root: str, data: dict | str) -> str:
    import json

    path = os.path.join(root, "oem", "installer-ext", "plan.json")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(data if isinstance(data, str) else json.dumps(data, indent=1))
    return path
