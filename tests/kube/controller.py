"""Harvester's pcidevices controller on one node, simulated against the fake kernel and
the fake API server, so the tests prove that first boot coexists with it.

Every behaviour is copied from harvester/pcidevices, branch master @bdd8025 (tag
v1.8.1 has the same code for these functions); the function is named where it is
reproduced. The controller acts on the node's kernel through the same sysfs store
handlers the real one writes (`drivers/<drv>/bind|unbind`, `drivers/vfio-pci/new_id`,
`sriov_numvfs`), simulated by `ControllerKernel` (tests.fakekernel.FakeKernel plus the
two handlers the binder never uses).

Order at pod start (pkg/controller/setup.go Setup): CRDs created; `pcideviceclaim.Register`
runs `unbindOrphanedPCIDevices` before anything is started; then the informers start
and every handler sees the existing objects. Upstream runs the SRIOVNetworkDevice
handler and the node reconcile concurrently (2 workers each); the simulation runs the
SRIOVNetworkDevice handler first, then the node reconcile, then the claims (see
docs/firstboot.md: the other order can drop VF PCIDevices on a reboot, an upstream race
installer-ext cannot fix without fighting the controller).
"""

from __future__ import annotations

import errno
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from installer_ext.firstboot.objects import NODE_LABEL, PCIDEVICE_DRIVER_ANNOTATION, pcidevice_name
from tests.fakekernel import VFIO, FakeKernel, _oserr
from tests.kube.fakeapi import FakeApiServer

DEVICES_GROUP = "devices.harvesterhci.io"
FINALIZER = "wrangler.cattle.io/PCIDeviceClaimOnRemove"  # wrangler OnRemove's finalizer for the handler name
PARENT_SRIOV_LABEL = "harvesterhci.io/parent-sriov-network-device"  # v1beta1.ParentSRIOVNetworkDevice
INTERFACE_ANNOTATION = "sriov.devices.harvesterhi.io/interface-name"  # nichelper interfaceAnnotation (sic)
SRIOV_ENABLED, SRIOV_DISABLED = "sriovNetworkDeviceEnabled", "sriovNetworkDeviceDisabled"
BRIDGE_CLASS = "0604"  # pcidevice.go pciBridgeClassID


class ControllerKernel(FakeKernel):
    """FakeKernel with the store handlers the controller uses:

    - `drivers/<drv>/bind` ADDR (drivers/base/bus.c bind_store): ENODEV unless the
      driver matches the device (drivers/pci/pci-driver.c pci_match_device: with
      driver_override set only that driver matches; else the dynamic ids, then the
      driver's id table), EBUSY when the device already has a driver
      (drivers/base/dd.c __driver_probe_device);
    - `drivers/vfio-pci/new_id` "VVVV DDDD" (pci-driver.c new_id_store): adds a dynamic
      id and probes every device without a driver (driver_attach), which again honours
      driver_override; EEXIST for an id already there.
    """

    def override_of(self, address: str) -> str | None:
        v = self._attr(address, "driver_override")
        return None if v in ("", "(null)") else v

    def _matches(self, driver: str, address: str) -> bool:
        override = self.override_of(address)
        if override is not None:
            return override == driver
        ids = self.ids(address)
        if driver == VFIO:
            return ids in self.vfio_ids
        return self.native.get(ids) == driver

    def store(self, path: str, value: str) -> None:
        real = os.path.realpath(path)
        rel = os.path.relpath(real, self.sys)
        parent, name = os.path.dirname(rel), os.path.basename(rel)
        arg = value[:-1] if value.endswith("\n") else value
        if os.path.dirname(parent) == os.path.join("bus", "pci", "drivers") and name in ("bind", "new_id"):
            driver = os.path.basename(parent)
            if name == "bind":
                if arg not in self.addresses():
                    raise _oserr(errno.ENODEV, path)
                if not self._matches(driver, arg):
                    raise _oserr(errno.ENODEV, path)
                if self.driver_of(arg) is not None:
                    raise _oserr(errno.EBUSY, path)
                self._keep(real, value)
                self.attach(arg, driver)
                return
            parts = arg.split()
            if driver != VFIO or len(parts) < 2:
                raise _oserr(errno.EINVAL, path)
            ids = f"{int(parts[0], 16):04x}:{int(parts[1], 16):04x}"
            if ids in self.vfio_ids:
                raise _oserr(errno.EEXIST, path)
            self.vfio_ids.add(ids)
            self._keep(real, value)
            for a in self.addresses():
                if self.driver_of(a) is None and self.ids(a) == ids:
                    self.probe(a)
            return
        super().store(path, value)

    def nics(self) -> dict[str, str]:
        """ifname -> PCI address of every NIC with a netdev (ghw.Network())."""
        out = {}
        for a in self.addresses():
            net = os.path.join(self.devdir(a), "net")
            if os.path.isdir(net):
                for ifname in os.listdir(net):
                    out[ifname] = a
        return out

    def numvfs(self, pf: str) -> int:
        return int(self._attr(pf, "sriov_numvfs"))

    def sriov_capable(self, address: str) -> bool:
        return os.path.exists(os.path.join(self.devdir(address), "sriov_totalvfs"))

    def vfs(self, pf: str) -> list[str]:
        return sorted(os.path.basename(os.readlink(os.path.join(self.devdir(pf), f"virtfn{i}")))
                      for i in range(self.numvfs(pf)))

    def class_of(self, address: str) -> str:
        return self._attr(address, "class")[2:6]


@dataclass
class ControllerLog:
    events: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


class PciDevicesController:
    """The controller's pod on one node. `start()` is a pod start, `tick()` one pass of
    its handlers, `stop()` the pod going away (its writes stop, nothing is undone)."""

    def __init__(self, api: FakeApiServer, node: str, kernel: ControllerKernel,
                 management_nics: tuple[str, ...] = (), vlan_nics: tuple[str, ...] = ()) -> None:
        self.api = api
        self.node = node
        self.kernel = kernel
        self.mgmt = set(management_nics)
        self.vlan = set(vlan_nics)
        self.running = False
        self.starts = 0
        self.lock = threading.RLock()
        self.log = ControllerLog()

    # -- API helpers (the controller's own writes: status subresource, labels) -------------
    def _list(self, plural: str, mine: Callable[[dict[str, Any]], bool] | None = None) -> list[dict[str, Any]]:
        items = self.api.list(plural)
        return [o for o in items if mine is None or mine(o)]

    def _put(self, obj: dict[str, Any]) -> None:
        self.api.put(obj)

    def _sysfs(self, *parts: str) -> str:
        return os.path.join(self.kernel.pci, *parts)

    def _write(self, path: str, value: str) -> None:
        self.kernel.io.write(path, value)

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        with self.lock:
            self.api.unserved.discard(DEVICES_GROUP)  # crd.Create(ctx, cfg) in Setup
            self.starts += 1
            self.log.events.append("start")
            self._unbind_orphans()
            self.running = True
            self._sriov_handlers()
            self._reconcile_node()
            self._claims()

    def stop(self) -> None:
        with self.lock:
            self.running = False
            self.log.events.append("stop")

    def tick(self) -> None:
        with self.lock:
            if not self.running:
                return
            self._reconcile_node()
            self._sriov_handlers()
            self._claims()

    # -- pcideviceclaim.Register -> unbindOrphanedPCIDevices --------------------------------
    def _unbind_orphans(self) -> None:
        claims = self._list("pcideviceclaims")
        for pd in self._list("pcidevices"):
            st = pd.get("status") or {}
            if st.get("kernelDriverInUse") != VFIO or st.get("nodeName") != self.node:
                continue
            if self._claimed(pd, claims):
                continue
            addr = st["address"]
            if addr in self.kernel.addresses() and self.kernel.driver_of(addr) == VFIO:
                self._write(self._sysfs("drivers", VFIO, "unbind"), addr)
                self.log.events.append(f"orphan unbound {addr}")

    def _claimed(self, pd: dict[str, Any], claims: list[dict[str, Any]]) -> bool:
        """pciDeviceIsClaimed, quirks included: it walks every claim, and the first claim
        without ownerReferences ends the walk with "not claimed"."""
        for pdc in claims:
            if (pd.get("status") or {}).get("nodeName") != self.node:
                continue
            refs = pdc["metadata"].get("ownerReferences")
            if not refs:
                return False
            if refs[0].get("name") == pd["metadata"]["name"]:
                return True
        return False

    # -- nodes.reconcileNodeDevices: ReconcilePCIDevices + SetupSriovDevices ----------------
    def _skip_addresses(self) -> set[str]:
        """nichelper.IdentifyHarvesterManagedNIC (management NICs, VLAN uplinks, NICs
        whose VFs are in use: ListNICSInUseBySRIOV) + pcidevice.IdentifyPCIBridgeDevices."""
        k = self.kernel
        skip = set()
        for ifname, addr in k.nics().items():
            if ifname in self.mgmt or ifname in self.vlan:
                skip.add(addr)
            elif k.sriov_capable(addr) and k.numvfs(addr) > 0:
                skip.add(addr)
        skip |= {a for a in k.addresses() if k.class_of(a) == BRIDGE_CLASS}
        return skip

    def _reconcile_node(self) -> None:
        k = self.kernel
        skip = self._skip_addresses()
        real = [a for a in k.addresses() if a not in skip]
        sriov_objs = self._list("sriovnetworkdevices", lambda o: (o.get("spec") or {}).get("nodeName") == self.node)
        vf_owner = {n: o["metadata"]["name"] for o in sriov_objs for n in (o.get("status") or {}).get("vfPCIDevices") or []}
        for a in real:
            name = pcidevice_name(self.node, a)
            cur = self.api.get("pcidevices", name)
            driver = k.driver_of(a) or ""
            status = {"address": a, "vendorId": k.ids(a)[:4], "deviceId": k.ids(a)[5:], "classId": k.class_of(a),
                      "iommuGroup": str(k.group_of(a)) if k.group_of(a) is not None else "", "nodeName": self.node,
                      "resourceName": f"fake.com/{k.ids(a)[5:]}", "description": "fake", "kernelDriverInUse": driver}
            if cur is None:
                # NewPCIDeviceForHostname: the driver in use now is recorded once, here
                labels = {NODE_LABEL: self.node}
                if name in vf_owner:
                    labels[PARENT_SRIOV_LABEL] = vf_owner[name]  # QuerySRIOVNetworkDeviceOwnership
                self._put({"apiVersion": f"{DEVICES_GROUP}/v1beta1", "kind": "PCIDevice",
                           "metadata": {"name": name, "labels": labels,
                                        "annotations": {PCIDEVICE_DRIVER_ANNOTATION: driver}},
                           "status": status})
                self.log.events.append(f"pcidevice created {name} ({driver or 'no driver'})")
            elif cur.get("status") != status:
                self.api.mutate("pcidevices", name, lambda o, s=status: o.update(status=s))  # UpdateStatus
        present = set(real)
        for pd in self._list("pcidevices", lambda o: (o["metadata"].get("labels") or {}).get(NODE_LABEL) == self.node):
            if (pd.get("status") or {}).get("address") not in present:
                self.api.delete("pcidevices", pd["metadata"]["name"])
                self.log.events.append(f"pcidevice deleted {pd['metadata']['name']}")
        # sriovdevice.SetupSriovDevices with nichelper.GenerateSRIOVNics
        wanted = {}
        for ifname, addr in k.nics().items():
            if ifname in self.mgmt or ifname in self.vlan or not k.sriov_capable(addr):
                continue
            wanted[f"{self.node}-{ifname}".lower()] = (ifname, addr)
        have = {o["metadata"]["name"]: o for o in sriov_objs}
        for name, (ifname, addr) in sorted(wanted.items()):
            if name not in have:
                self._put({"apiVersion": f"{DEVICES_GROUP}/v1beta1", "kind": "SRIOVNetworkDevice",
                           "metadata": {"name": name, "labels": {NODE_LABEL: self.node},
                                        "annotations": {INTERFACE_ANNOTATION: ifname}},
                           "spec": {"address": addr, "nodeName": self.node, "numVFs": 0}})
                self.log.events.append(f"sriovnetworkdevice created {name}")
        for name in sorted(set(have) - set(wanted)):
            self.api.delete("sriovnetworkdevices", name)

    # -- sriovdevice.reconcileSriovDevice ----------------------------------------------------
    def _sriov_handlers(self) -> None:
        k = self.kernel
        for obj in self._list("sriovnetworkdevices", lambda o: (o.get("spec") or {}).get("nodeName") == self.node):
            spec, name = obj.get("spec") or {}, obj["metadata"]["name"]
            pf, want = spec.get("address"), spec.get("numVFs") or 0
            if pf not in k.addresses():
                continue
            status = dict(obj.get("status") or {})
            cur = k.numvfs(pf)
            try:
                if want == 0:  # ensureDeviceIsDisabled
                    if cur != 0:
                        self._write(os.path.join(k.devdir(pf), "sriov_numvfs"), "0")
                        self.log.events.append(f"numvfs {pf} {cur} -> 0")
                        status.update(status=SRIOV_DISABLED)
                        status.pop("vfAddresses", None)
                else:  # ensureDeviceIsConfigured: writes the count straight (no 0 first)
                    if cur != want:
                        self._write(os.path.join(k.devdir(pf), "sriov_numvfs"), str(want))
                        self.log.events.append(f"numvfs {pf} {cur} -> {want}")
                    vfs = k.vfs(pf)
                    status.update(status=SRIOV_ENABLED, vfAddresses=vfs,
                                  vfPCIDevices=[pcidevice_name(self.node, v) for v in vfs])
            except OSError as exc:
                self.log.errors.append(f"{name}: sriov_numvfs {want}: {exc.strerror}")
                continue
            if status != (obj.get("status") or {}):
                self.api.mutate("sriovnetworkdevices", name, lambda o, s=status: o.update(status=s))

    # -- pcideviceclaim: reconcilePCIDeviceClaims, OnRemove ----------------------------------
    def _claims(self) -> None:
        for pdc in self._list("pcideviceclaims", lambda o: (o.get("spec") or {}).get("nodeName") == self.node):
            name = pdc["metadata"]["name"]
            if pdc["metadata"].get("deletionTimestamp"):
                self._on_remove(pdc)
                continue
            if FINALIZER not in (pdc["metadata"].get("finalizers") or []):
                self.api.mutate("pcideviceclaims", name,
                                lambda o: o["metadata"].setdefault("finalizers", []).append(FINALIZER))
            self._enable(pdc)

    def _device_for(self, pdc: dict[str, Any]) -> dict[str, Any] | None:
        refs = pdc["metadata"].get("ownerReferences")
        if not refs:  # getPCIDeviceForClaim: "Cannot find PCIDevice that owns ..."
            self.log.errors.append(f"{pdc['metadata']['name']}: no owner")
            return None
        return self.api.get("pcidevices", refs[0]["name"])

    def _enable(self, pdc: dict[str, Any]) -> None:
        k = self.kernel
        pd = self._device_for(pdc)
        if pd is None:
            return
        st = pd.get("status") or {}
        addr = st.get("address")
        if addr not in k.addresses():
            return
        group = k.group_of(addr)
        if str(group) != st.get("iommuGroup"):  # checkGroupMap
            self.log.errors.append(f"{addr}: group mismatch: sys {group} pd {st.get('iommuGroup')}")
            return
        try:
            if k.driver_of(addr) != VFIO:  # attemptToEnablePassthrough
                in_use = (st.get("kernelDriverInUse") or "").strip()
                if in_use and k.driver_of(addr) == in_use:
                    self._write(self._sysfs("drivers", in_use, "unbind"), addr)
                original = (pd["metadata"].get("annotations") or {}).get(PCIDEVICE_DRIVER_ANNOTATION)
                if original and k.driver_of(addr) == original:
                    self._write(self._sysfs("drivers", original, "unbind"), addr)
                # bindDeviceToVFIOPCIDriver: new_id (EEXIST ignored), then bind
                try:
                    self._write(self._sysfs("drivers", VFIO, "new_id"), f"{st['vendorId']} {st['deviceId']}")
                except OSError as exc:
                    if exc.errno != errno.EEXIST:
                        raise
                if k.driver_of(addr) != VFIO:
                    self._write(self._sysfs("drivers", VFIO, "bind"), addr)
                self.log.events.append(f"bound {addr} to vfio-pci")
                self.api.mutate("pcidevices", pd["metadata"]["name"],
                                lambda o: o["status"].update(kernelDriverInUse=VFIO))
        except OSError as exc:
            self.log.errors.append(f"{addr}: enable: {exc.strerror} ({exc.filename})")
            return
        if not (pdc.get("status") or {}).get("passthroughEnabled"):
            self.api.mutate("pcideviceclaims", pdc["metadata"]["name"], lambda o, d=st.get("kernelDriverInUse") or "": o.update(
                status={"passthroughEnabled": True, "kernelDriverToUnbind": d}))

    def _on_remove(self, pdc: dict[str, Any]) -> None:
        """OnRemove -> disablePassthrough: unbind from vfio-pci, then
        bindDeviceToOriginalDriver (the annotation; none or "": left unbound)."""
        k = self.kernel
        name = pdc["metadata"]["name"]
        pd = self._device_for(pdc)
        if pd is not None:
            addr = (pd.get("status") or {}).get("address")
            original = (pd["metadata"].get("annotations") or {}).get(PCIDEVICE_DRIVER_ANNOTATION)
            try:
                if k.driver_of(addr) == VFIO:
                    self._write(self._sysfs("drivers", VFIO, "unbind"), addr)
                if original and k.driver_of(addr) != original:
                    self._write(self._sysfs("drivers", original, "bind"), addr)
                    self.api.mutate("pcidevices", pd["metadata"]["name"],
                                    lambda o: o["status"].update(kernelDriverInUse=original))
                self.log.events.append(f"gave back {addr} to {original or 'no driver'}")
            except OSError as exc:
                # the handler returns the error: wrangler retries, the finalizer stays
                self.log.errors.append(f"{addr}: disable: {exc.strerror} ({exc.filename})")
                return
        self.api.mutate("pcideviceclaims", name,
                        lambda o: o["metadata"].update(finalizers=[f for f in o["metadata"].get("finalizers") or []
                                                                   if f != FINALIZER]))
