"""First boot against Harvester's pcidevices controller (tests/kube/controller.py, each
behaviour cited there): orphan unbinding at controller start, the driver annotation
recorded at PCIDevice creation and used on disable, SRIOVNetworkDevice creation and
its numVFs reconcile, the claim webhook; and the node's reboot after first boot.

The nodes are tests.fakesys machines planned by the real planner and bound by the real
binder at each boot, on a simulated kernel the controller writes to as well.
"""

from __future__ import annotations

import json
import os

import pytest

from installer_ext import paths
from installer_ext.firstboot.objects import PCIDEVICE_DRIVER_ANNOTATION
from tests.kube.certs import Pki
from tests.kube.cluster_sim import ClusterSim, ReconcileTimer, epyc_agent, start_firstboot, workstation_server
from tests.kube.conftest import FAST
from tests.kube.fakeapi import FakeApiServer

SERVER_DEVICES = ["0000:01:00.0", "0000:01:00.1", "0000:03:00.0"]  # RTX 3080, its audio, the I210
AGENT_GPU = ["0000:03:00.0", "0000:03:00.1"]
PF = "0000:02:00.1"
VFS = ["0000:02:0a.0", "0000:02:0a.1", "0000:02:0a.2", "0000:02:0a.3"]


def firstboot_inprocess(node, capsys, *extra: str) -> tuple[int, str]:
    from installer_ext.cli import main

    rc = main(["firstboot", *node.firstboot_args(*FAST, "--nvidia-smi", os.path.join(node.root, "no-nvidia-smi"), *extra)])
    return rc, capsys.readouterr().err


def drivers(node, addresses: list[str]) -> dict[str, str | None]:
    return {a: node.kernel.driver_of(a) for a in addresses}


def claim_names(api: FakeApiServer, node: str) -> list[str]:
    return sorted(c["metadata"]["name"] for c in api.list("pcideviceclaims") if c["spec"]["nodeName"] == node)


@pytest.fixture
def server_only(api: FakeApiServer, pki: Pki, tmp_path):
    with ClusterSim(api, pki, str(tmp_path), [workstation_server()], addon_after=3) as sim:
        sim.install_and_boot("harv-0")
        yield sim
    assert sim.errors == []


def test_server_first_boot_with_the_controller(server_only: ClusterSim, api: FakeApiServer, capsys) -> None:
    sim, node = server_only, server_only.nodes["harv-0"]
    rc, err = firstboot_inprocess(node, capsys)
    assert rc == 0, err
    assert claim_names(api, "harv-0") == ["harv-0-000001000", "harv-0-000001001", "harv-0-000003000"]
    sim.settle(lambda: all(d == "vfio-pci" for d in drivers(node, SERVER_DEVICES).values()), what="devices on vfio-pci")
    events = node.controller.log.events
    # our binder ran first, so the controller recorded vfio-pci ...
    assert "pcidevice created harv-0-000003000 (vfio-pci)" in events
    # ... and first boot put back what the binder recorded before binding
    notes = {d["metadata"]["name"]: d["metadata"]["annotations"][PCIDEVICE_DRIVER_ANNOTATION]
             for d in api.list("pcidevices") if d["metadata"]["name"].startswith("harv-0-00000")}
    assert {n: notes[n] for n in ("harv-0-000001000", "harv-0-000001001", "harv-0-000003000")} == {
        "harv-0-000001000": "nvidia", "harv-0-000001001": "snd_hda_intel", "harv-0-000003000": "igb"}
    assert not [e for e in events if e.startswith("orphan")]
    record = json.load(open(paths.under(node.root, paths.CONTROLLER_RECORD_FILE)))
    assert sorted(record["devices"]) == SERVER_DEVICES
    status = node.status()
    assert status["state"] == "done" and status["attempt"] == 1


def test_controller_restart_after_first_boot_leaves_the_devices_on_vfio(server_only: ClusterSim, api: FakeApiServer,
                                                                       capsys) -> None:
    sim, node = server_only, server_only.nodes["harv-0"]
    assert firstboot_inprocess(node, capsys)[0] == 0
    sim.settle(lambda: all(d == "vfio-pci" for d in drivers(node, SERVER_DEVICES).values()), what="bound")
    before = node.controller.starts
    sim.restart_controller("harv-0")
    assert node.controller.starts == before + 1
    assert drivers(node, SERVER_DEVICES) == dict.fromkeys(SERVER_DEVICES, "vfio-pci")
    assert not [e for e in node.controller.log.events if e.startswith("orphan")]


def test_controller_restart_before_the_claims_unbinds_then_the_claims_bind_again(
        server_only: ClusterSim, api: FakeApiServer, capsys) -> None:
    """The window first boot cannot close: the controller created the PCIDevices (our
    devices on vfio-pci, no claim yet) and restarts: unbindOrphanedPCIDevices takes them
    off vfio-pci. The claims made afterwards make the controller bind them again."""
    sim, node = server_only, server_only.nodes["harv-0"]
    api.put({"apiVersion": "harvesterhci.io/v1beta1", "kind": "Addon",
             "metadata": {"name": "pcidevices-controller", "namespace": "harvester-system"},
             "spec": {"enabled": True, "chart": "harvester-pcidevices-controller", "repo": "", "version": "0.4.1",
                      "valuesContent": ""}})
    sim.settle(lambda: api.get("pcidevices", "harv-0-000003000") is not None, what="PCIDevices created")
    sim.restart_controller("harv-0")
    orphans = sorted(e for e in node.controller.log.events if e.startswith("orphan unbound"))
    assert orphans == [f"orphan unbound {a}" for a in SERVER_DEVICES]
    assert drivers(node, SERVER_DEVICES) == dict.fromkeys(SERVER_DEVICES, None)
    rc, err = firstboot_inprocess(node, capsys)
    assert rc == 0, err
    sim.settle(lambda: all(d == "vfio-pci" for d in drivers(node, SERVER_DEVICES).values()), what="bound again")


def test_disabling_a_claim_gives_the_device_back_to_its_host_driver(server_only: ClusterSim, api: FakeApiServer,
                                                                   capsys) -> None:
    sim, node = server_only, server_only.nodes["harv-0"]
    assert firstboot_inprocess(node, capsys)[0] == 0
    sim.settle(lambda: node.kernel.driver_of("0000:03:00.0") == "vfio-pci", what="bound")
    assert node.kernel.override_of("0000:03:00.0") is None  # first boot released it
    api.delete("pcideviceclaims", "harv-0-000003000")  # "Disable passthrough" in Harvester's UI
    sim.settle(lambda: api.get("pcideviceclaims", "harv-0-000003000") is None, what="claim gone")
    assert node.kernel.driver_of("0000:03:00.0") == "igb"
    assert "gave back 0000:03:00.0 to igb" in node.controller.log.events
    assert api.get("pcidevices", "harv-0-000003000")["status"]["kernelDriverInUse"] == "igb"


def test_disabling_a_claim_after_a_reboot_gives_the_device_back(server_only: ClusterSim, api: FakeApiServer,
                                                              capsys) -> None:
    """At every later boot the binder binds the device again with driver_override set (as
    the udev rule does); for a claimed device it releases the override once vfio-pci holds
    it, so "Disable passthrough" still works after a reboot (the control below shows what
    a left override does)."""
    sim, node = server_only, server_only.nodes["harv-0"]
    assert firstboot_inprocess(node, capsys)[0] == 0
    sim.settle(lambda: node.kernel.driver_of("0000:03:00.0") == "vfio-pci", what="bound")
    sim.reboot("harv-0")
    assert node.kernel.driver_of("0000:03:00.0") == "vfio-pci"
    assert node.kernel.override_of("0000:03:00.0") is None
    api.delete("pcideviceclaims", "harv-0-000003000")
    sim.settle(lambda: api.get("pcideviceclaims", "harv-0-000003000") is None, what="claim gone")
    assert node.kernel.driver_of("0000:03:00.0") == "igb"


def test_why_driver_override_must_go_once_vfio_holds_the_device(server_only: ClusterSim, api: FakeApiServer,
                                                               capsys) -> None:
    """The control of the test above: with driver_override still vfio-pci (what the udev
    rule and the binder leave on every boot) the kernel refuses the bind back to the host
    driver (ENODEV) and the claim hangs in deletion with the device on no driver. So the
    override is released at the handover (and the binder must release it after binding
    on later boots: docs/firstboot.md)."""
    sim, node = server_only, server_only.nodes["harv-0"]
    assert firstboot_inprocess(node, capsys)[0] == 0
    sim.settle(lambda: node.kernel.driver_of("0000:03:00.0") == "vfio-pci", what="bound")
    node.kernel.io.write(os.path.join(node.kernel.devdir("0000:03:00.0"), "driver_override"), "vfio-pci")
    api.delete("pcideviceclaims", "harv-0-000003000")
    sim.settle(lambda: any("0000:03:00.0: disable: No such device" in e for e in node.controller.log.errors),
               what="disable refused by the kernel")
    claim = api.get("pcideviceclaims", "harv-0-000003000")
    assert claim is not None and claim["metadata"]["deletionTimestamp"]
    assert node.kernel.driver_of("0000:03:00.0") is None


def test_claim_webhook_needs_the_pcidevice_with_a_group(api: FakeApiServer, kubeconfig: str) -> None:
    """The fake's claim webhook, as pcideviceclaim.go Create: first boot waits for the
    PCIDevice (with its IOMMU group) instead of meeting these."""
    from installer_ext.firstboot.objects import PCIDEVICECLAIMS
    from installer_ext.kube import kubeconfig as kcfg
    from installer_ext.kube.client import KubeClient
    from installer_ext.kube.errors import ApiError

    claim = {"apiVersion": "devices.harvesterhci.io/v1beta1", "kind": "PCIDeviceClaim",
             "metadata": {"name": "n1-000041000"}, "spec": {"address": "0000:41:00.0", "nodeName": "n1"}}
    with KubeClient(kcfg.load(kubeconfig), attempts=1) as c:
        with pytest.raises(ApiError) as exc:
            c.create(PCIDEVICECLAIMS, claim)
        assert (exc.value.status, exc.value.message) == (500, 'admission webhook "pcidevices.harvesterhci.io" denied '
                                                              'the request: pcidevices.devices.harvesterhci.io '
                                                              '"n1-000041000" not found')
        api.put({"apiVersion": "devices.harvesterhci.io/v1beta1", "kind": "PCIDevice",
                 "metadata": {"name": "n1-000041000"}, "status": {"address": "0000:41:00.0", "iommuGroup": ""}})
        with pytest.raises(ApiError) as exc:
            c.create(PCIDEVICECLAIMS, claim)
        assert exc.value.message.endswith("pcidevice n1-000041000 has no iommuGroup available")
        api.pcidevices_webhook_up = False  # no controller pod serves it: failurePolicy Ignore
        c.create(PCIDEVICECLAIMS, claim)


def test_addon_operation_in_progress_is_retried(server_only: ClusterSim, api: FakeApiServer, capsys) -> None:
    """Harvester's addon webhook refuses every change while an operation on the Addon is
    in progress; first boot retries until it ends."""
    node = server_only.nodes["harv-0"]
    api.put({"apiVersion": "harvesterhci.io/v1beta1", "kind": "Addon",
             "metadata": {"name": "pcidevices-controller", "namespace": "harvester-system"},
             "spec": {"enabled": False, "chart": "harvester-pcidevices-controller", "repo": "", "version": "0.4.1",
                      "valuesContent": ""},
             "status": {"status": "AddonUpdating", "conditions": [{"type": "InProgress", "status": "True"}]}})
    refused = {"n": 0}

    def upgrade_finishes(server: FakeApiServer, req) -> None:
        if req.method == "PATCH" and req.path.endswith("/addons/pcidevices-controller") and req.status == 400:
            refused["n"] += 1
            if refused["n"] == 3:
                server.mutate("addons", "pcidevices-controller", lambda o: o.update(status={"status": "",
                              "conditions": [{"type": "InProgress", "status": "False"}]}), "harvester-system")

    api.observers.insert(0, upgrade_finishes)
    rc, err = firstboot_inprocess(node, capsys)
    assert rc == 0, err
    assert refused["n"] == 3
    assert err.count("an existing operation is in progress on addon pcidevices-controller") >= 3
    assert node.done() is not None


@pytest.fixture
def two_nodes(api: FakeApiServer, pki: Pki, tmp_path):
    with ClusterSim(api, pki, str(tmp_path), [workstation_server(), epyc_agent()], addon_after=3) as sim:
        for name in sim.nodes:
            sim.install_and_boot(name)
        yield sim
    assert sim.errors == []


def agent_first_boot(sim: ClusterSim) -> tuple[int, str]:
    server, agent = sim.nodes["harv-0"], sim.nodes["harv-1"]
    with ReconcileTimer(server):
        p = start_firstboot(agent)
        _, err = p.communicate(timeout=180)
    return p.returncode, err


def test_sriov_through_the_controller_then_reboots(two_nodes: ClusterSim, api: FakeApiServer, capsys) -> None:
    sim = two_nodes
    server, agent = sim.nodes["harv-0"], sim.nodes["harv-1"]
    assert firstboot_inprocess(server, capsys)[0] == 0
    rc, err = agent_first_boot(sim)
    assert rc == 0, err
    assert "as kubelet" in err  # the joined agent had no admin kubeconfig
    assert not [r for r in api.requests_by("system:node:harv-1") if r.status == 403]

    # the controller made the object (numVFs 0) and set our VFs back to 0 before first
    # boot asked for them: upstream behaviour, then the VFs come back through the object
    events = agent.controller.log.events
    assert "sriovnetworkdevice created harv-1-enp2s0f1" in events and "numvfs 0000:02:00.1 4 -> 0" in events
    assert api.get("sriovnetworkdevices", "harv-1-enp2s0f0") is None  # the management NIC
    obj = api.get("sriovnetworkdevices", "harv-1-enp2s0f1")
    assert obj["spec"]["numVFs"] == 4 and obj["status"]["vfAddresses"] == VFS
    assert claim_names(api, "harv-1") == ["harv-1-0000020a0", "harv-1-0000020a1", "harv-1-0000020a2",
                                          "harv-1-0000020a3", "harv-1-000003000", "harv-1-000003001"]
    sim.settle(lambda: all(d == "vfio-pci" for d in drivers(agent, VFS + AGENT_GPU).values()), what="agent bound")
    assert agent.kernel.driver_of("0000:04:00.0") == "amdgpu"  # kept for containers
    assert api.get("daemonsets", "amdgpu-device-plugin-daemonset", "kube-system") is not None
    assert agent.done()["allocatable"] == {"amd.com/gpu": 1}
    record = json.load(open(paths.under(agent.root, paths.CONTROLLER_RECORD_FILE)))
    assert record["sriov"] == {PF: {"object": "harv-1-enp2s0f1", "num_vfs": 4}}
    creates = {r.body for r in api.requests("POST", "/pcideviceclaims$") if r.status == 201}
    assert len(creates) == len(api.list("pcideviceclaims"))  # each claim created once
    uids = {c["metadata"]["name"]: c["metadata"]["uid"] for c in api.list("pcideviceclaims")}

    # reboot: the binder leaves sriov_numvfs to the controller, which brings the VFs back
    result = sim.reboot("harv-1")
    assert result.ok, result.message
    assert not [p for p, _ in agent.kernel.io.writes if p.endswith("sriov_numvfs")]
    assert [s.reason for s in result.status.sriov][0].startswith("sriov_numvfs is the pcidevices controller's")
    sim.settle(lambda: all(d == "vfio-pci" for d in drivers(agent, VFS + AGENT_GPU).values()), what="bound after reboot")
    assert {c["metadata"]["name"]: c["metadata"]["uid"] for c in api.list("pcideviceclaims")} == uids
    assert agent.controller.log.errors == []

    # the user changes the count in Harvester (disable, then enable with 2): no fight at the next boot
    api.mutate("sriovnetworkdevices", "harv-1-enp2s0f1", lambda o: o["spec"].update(numVFs=0))
    sim.settle(lambda: agent.kernel.numvfs(PF) == 0, what="disabled")
    api.mutate("sriovnetworkdevices", "harv-1-enp2s0f1", lambda o: o["spec"].update(numVFs=2))
    sim.settle(lambda: agent.kernel.numvfs(PF) == 2, what="2 VFs")
    assert sim.reboot("harv-1").ok
    sim.settle(lambda: agent.kernel.numvfs(PF) == 2 and agent.controller.running, what="2 VFs after reboot")
    assert agent.controller.log.errors == []

    # the control: a binder that still wrote the plan's count would fight the controller
    os.remove(paths.under(agent.root, paths.CONTROLLER_RECORD_FILE))
    sim.reboot("harv-1")
    assert agent.kernel.numvfs(PF) == 4  # the binder's count, from the plan
    sim.settle(lambda: any("sriov_numvfs 2: Device or resource busy" in e for e in agent.controller.log.errors),
               what="EBUSY from the controller")
