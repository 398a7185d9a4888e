"""`installer-ext firstboot` against the fake API server: what ends up in the cluster."""

from __future__ import annotations

import json
import os

import pytest

from installer_ext.firstboot.objects import pcidevice_name, plugin_label
from tests.fakesys import build
from tests.fakesys import machines as fake_machines
from tests.kube.conftest import argv, fake_tool, run_inprocess
from tests.kube.fakeapi import FakeApiServer
from tests.kube.hosts import Fn, bind_status, gpu_addresses, make_host, make_plan
from tests.kube.sim import harvester_cluster

NVIDIA_GPU = Fn("0000:01:00.0", "10de:2206", driver="nvidia", group=20)
AMD_GPU = Fn("0000:03:00.0", "1002:7310", driver="amdgpu", group=21)


def bound(n: int = 2) -> list[Fn]:
    return [Fn(a, "10de:2204", group=30 + i) for i, a in enumerate(gpu_addresses(n))]


def test_nvidia_host_end_to_end(api: FakeApiServer, kubeconfig: str, tmp_path, capsys, nvidia_smi_ok: str) -> None:
    host = make_host(str(tmp_path / "root"), "node1", bound(2), [NVIDIA_GPU])
    harvester_cluster(api, [host], gpus={"node1": {"nvidia": 1}})
    rc, err = run_inprocess(argv(host, kubeconfig, nvidia_smi=nvidia_smi_ok), capsys)
    assert rc == 0, err

    assert api.get("settings", "pci-pt-enable")["value"] == "true"
    assert api.get("settings", "gpu-enable")["value"] == "true"
    assert api.get("addons", "pcidevices-controller", "harvester-system")["spec"]["enabled"] is True

    claims = api.list("pcideviceclaims")
    assert [c["metadata"]["name"] for c in claims] == ["node1-000040000", "node1-000040001"]
    for c, fn in zip(claims, host.bound):
        dev = api.get("pcidevices", pcidevice_name("node1", fn.address))
        assert c["spec"] == {"address": fn.address, "nodeName": "node1", "userName": "installer-ext"}
        assert c["metadata"]["ownerReferences"] == [{"apiVersion": "devices.harvesterhci.io/v1beta1",
                                                     "kind": "PCIDevice", "name": dev["metadata"]["name"],
                                                     "uid": dev["metadata"]["uid"]}]
        assert c["metadata"]["labels"] == {"nodename": "node1"}

    ds = api.get("daemonsets", "nvidia-device-plugin-daemonset", "kube-system")
    pod = ds["spec"]["template"]["spec"]
    assert pod["containers"][0]["image"] == "nvcr.io/nvidia/k8s-device-plugin:v0.20.0"
    assert pod["runtimeClassName"] == "nvidia" and pod["nodeSelector"] == {plugin_label("nvidia"): "true"}
    assert api.get("runtimeclasses", "nvidia")["handler"] == "nvidia"
    assert api.get("daemonsets", "amdgpu-device-plugin-daemonset", "kube-system") is None
    applies = api.requests("PATCH", "daemonsets|runtimeclasses")
    assert {r.content_type for r in applies} == {"application/apply-patch+yaml"}
    assert all(r.query == {"fieldManager": "installer-ext", "force": "true"} for r in applies)

    node = api.get("nodes", "node1")
    assert node["metadata"]["labels"] == {"kubernetes.io/hostname": "node1", plugin_label("nvidia"): "true",
                                          "installer-ext.harvesterhci.io/first-boot": "done"}
    request = json.loads(node["metadata"]["annotations"]["installer-ext.harvesterhci.io/request"])
    assert [d["address"] for d in request["devices"]] == [f.address for f in host.bound]
    answer = json.loads(node["metadata"]["annotations"]["installer-ext.harvesterhci.io/result"])
    assert (answer["request"], answer["state"], answer["by"]) == (request["digest"], "done", "node1")
    done = host.done()
    assert done["allocatable"] == {"nvidia.com/gpu": 1} and done["plugins"] == ["nvidia"]
    assert done["claims"] == ["node1-000040000", "node1-000040001"] and done["failed"] == []
    assert "nvidia.com/gpu allocatable 1" in err and "first boot done on node1" in err
    assert "waiting for the API server" not in err  # it was up at once


def test_done_marker_means_no_work_at_all(api: FakeApiServer, tmp_path, capsys) -> None:
    host = make_host(str(tmp_path / "root"), "node1", bound(1))
    os.makedirs(host.state_dir)
    with open(os.path.join(host.state_dir, "done"), "w") as f:
        f.write("{}")
    bad = tmp_path / "bad.yaml"
    bad.write_text("{{{")  # not even read
    rc, err = run_inprocess(argv(host, str(bad)), capsys)
    assert rc == 0 and api.log == [] and "already done" in err


def test_amd_host_with_kfd(api: FakeApiServer, kubeconfig: str, tmp_path, capsys) -> None:
    host = make_host(str(tmp_path / "root"), "node1", bound(1), [AMD_GPU], kfd=True)
    harvester_cluster(api, [host])
    missing_smi = str(tmp_path / "no-such-nvidia-smi")
    rc, err = run_inprocess(argv(host, kubeconfig, nvidia_smi=missing_smi), capsys)
    assert rc == 0, err
    ds = api.get("daemonsets", "amdgpu-device-plugin-daemonset", "kube-system")
    assert ds["spec"]["template"]["spec"]["containers"][0]["image"] == "docker.io/rocm/k8s-device-plugin:1.31.0.9"
    assert api.get("daemonsets", "nvidia-device-plugin-daemonset", "kube-system") is None
    assert api.get("runtimeclasses", "nvidia") is None
    assert host.done()["allocatable"] == {"amd.com/gpu": 1}


def test_amd_without_kfd_is_a_recorded_failure(api: FakeApiServer, kubeconfig: str, tmp_path, capsys) -> None:
    host = make_host(str(tmp_path / "root"), "node1", bound(1), [AMD_GPU], kfd=False)
    harvester_cluster(api, [host])
    rc, err = run_inprocess(argv(host, kubeconfig), capsys)
    assert rc == 1
    assert "installer-ext: first boot step gpu failed: device plugin not confirmed: amd:" in err
    assert "kfd missing (amdgpu not loaded)" in err
    assert api.list("daemonsets") == [] and host.done() is None
    assert len(api.list("pcideviceclaims")) == 1  # the other steps still did their work
    assert host.state("cluster")["status"] == "done"


def test_mixed_host_gets_both_plugins(api: FakeApiServer, kubeconfig: str, tmp_path, capsys, nvidia_smi_ok) -> None:
    host = make_host(str(tmp_path / "root"), "node1", bound(1), [NVIDIA_GPU, AMD_GPU], kfd=True)
    harvester_cluster(api, [host])
    rc, err = run_inprocess(argv(host, kubeconfig, nvidia_smi=nvidia_smi_ok), capsys)
    assert rc == 0, err
    assert {d["metadata"]["name"] for d in api.list("daemonsets")} == {
        "nvidia-device-plugin-daemonset", "amdgpu-device-plugin-daemonset"}
    labels = api.get("nodes", "node1")["metadata"]["labels"]
    assert labels[plugin_label("nvidia")] == "true" and labels[plugin_label("amd")] == "true"
    assert host.done()["allocatable"] == {"amd.com/gpu": 1, "nvidia.com/gpu": 1}


def test_no_host_gpu_no_plugin(api: FakeApiServer, kubeconfig: str, tmp_path, capsys) -> None:
    host = make_host(str(tmp_path / "root"), "node1", bound(2), [])
    harvester_cluster(api, [host])
    rc, err = run_inprocess(argv(host, kubeconfig), capsys)
    assert rc == 0, err
    assert api.list("daemonsets") == [] and api.list("runtimeclasses") == []
    assert api.get("settings", "gpu-enable")["value"] == "false"
    assert plugin_label("nvidia") not in api.get("nodes", "node1")["metadata"]["labels"]
    assert host.done()["plugins"] == [] and host.state("allocatable")["status"] == "skipped"
    assert host.state("gpu")["status"] == "skipped"


def test_hung_nvidia_smi_is_a_failure_never_an_amd_install(api: FakeApiServer, kubeconfig: str, tmp_path, capsys) -> None:
    host = make_host(str(tmp_path / "root"), "node1", bound(1), [NVIDIA_GPU], kfd=True,
                     plan=make_plan(bound(1), [NVIDIA_GPU], plugins=["amd", "nvidia"]))
    harvester_cluster(api, [host])
    hung = fake_tool(str(tmp_path / "hung" / "nvidia-smi"), "sleep 30 &\nwait\n")
    rc, err = run_inprocess(argv(host, kubeconfig, "--nvidia-smi-timeout", "0.3", nvidia_smi=hung), capsys)
    assert rc == 1
    assert "no answer within 0.3s (killed)" in err
    assert api.list("daemonsets") == [], "a hung nvidia-smi must not lead to any plugin"
    probe = host.state("gpu")["result"]["probes"]
    assert probe == [{"plugin": "nvidia", "gpus": ["0000:01:00.0"], "ok": False,
                      "reason": f"{hung}: no answer within 0.3s (killed)"}]
    # the driver comes up; the unit's next run finishes the job, redoing only what is left
    before = len(api.log)
    ok = fake_tool(str(tmp_path / "ok" / "nvidia-smi"), "exit 0\n")
    rc, err = run_inprocess(argv(host, kubeconfig, nvidia_smi=ok), capsys)
    assert rc == 0, err
    assert "step gpu: done" in err and "step handover: already done" not in err
    rerun = api.log[before:]
    # the new request (now with the plugin) is carried out again: nothing already there is written again
    assert [r.method for r in rerun if "/settings" in r.path and r.method != "GET"] == []
    assert [r for r in rerun if r.method == "POST" and r.path.endswith("/pcideviceclaims")] == []
    assert host.done()["plugins"] == ["nvidia"]


def test_failing_nvidia_smi_reports_its_exit(api: FakeApiServer, kubeconfig: str, tmp_path, capsys) -> None:
    host = make_host(str(tmp_path / "root"), "node1", [], [NVIDIA_GPU])
    harvester_cluster(api, [host])
    bad = fake_tool(str(tmp_path / "nvidia-smi"), "echo 'NVIDIA-SMI has failed because it couldn''t communicate with the NVIDIA driver' >&2\nexit 9\n")
    rc, err = run_inprocess(argv(host, kubeconfig, nvidia_smi=bad), capsys)
    assert rc == 1 and "exit status 9: NVIDIA-SMI has failed" in err


def test_missing_bind_status_falls_back_to_sysfs(api: FakeApiServer, kubeconfig: str, tmp_path, capsys) -> None:
    fns = bound(3)
    fns[1] = Fn(fns[1].address, fns[1].ids, driver="nouveau", group=fns[1].group)  # not bound after all
    host = make_host(str(tmp_path / "root"), "node1", fns, [], status=None)
    harvester_cluster(api, [host])
    rc, err = run_inprocess(argv(host, kubeconfig), capsys)
    assert rc == 0, err
    claimed = sorted(c["spec"]["address"] for c in api.list("pcideviceclaims"))
    assert claimed == [fns[0].address, fns[2].address]
    rec = host.state("request")["result"]
    assert rec["source"] == "sysfs"
    assert rec["not_bound"] == [{"address": fns[1].address, "status": "not-bound", "reason": "driver is nouveau"}]


def test_failed_and_skipped_devices_in_the_bind_status_are_not_claimed(api: FakeApiServer, kubeconfig: str,
                                                                       tmp_path, capsys) -> None:
    fns = bound(3)
    status = bind_status(fns[:1], extra=[
        {"address": fns[1].address, "vendor_id": "10de", "device_id": "2204", "status": "failed",
         "reason": "group 31 has an endpoint the plan does not cover", "driver": "nvidia", "previous_driver": "nvidia"},
        {"address": fns[2].address, "vendor_id": "10de", "device_id": "2204", "status": "already-bound",
         "reason": None, "driver": "vfio-pci", "previous_driver": None},
    ])
    host = make_host(str(tmp_path / "root"), "node1", fns, [], status=status)
    harvester_cluster(api, [host])
    rc, err = run_inprocess(argv(host, kubeconfig), capsys)
    assert rc == 0, err
    assert sorted(c["spec"]["address"] for c in api.list("pcideviceclaims")) == [fns[0].address, fns[2].address]
    assert host.state("request")["result"]["not_bound"][0]["reason"].startswith("group 31")


def test_corrupt_bind_status_is_a_warning_and_sysfs_decides(api: FakeApiServer, kubeconfig: str, tmp_path, capsys) -> None:
    host = make_host(str(tmp_path / "root"), "node1", bound(2), [], status='{"version": 1, "devi')
    harvester_cluster(api, [host])
    rc, err = run_inprocess(argv(host, kubeconfig), capsys)
    assert rc == 0, err
    assert len(api.list("pcideviceclaims")) == 2
    assert "bind-status.json: unusable" in err and host.done()["warnings"][0].endswith("checked sysfs instead")


def test_binder_skipped_this_boot_defers_the_claims(api: FakeApiServer, kubeconfig: str, tmp_path, capsys) -> None:
    host = make_host(str(tmp_path / "root"), "node1", bound(2), [],
                     status=bind_status([], skipped="installer_ext.skip=1 on the kernel command line"))
    harvester_cluster(api, [host])
    rc, err = run_inprocess(argv(host, kubeconfig), capsys)
    assert rc == 1 and "first boot step request failed: the binder skipped this boot (installer_ext.skip=1" in err
    assert api.list("pcideviceclaims") == [], "claims would make the controller bind what the user asked to leave"
    assert "installer-ext.harvesterhci.io/request" not in (api.get("nodes", "node1")["metadata"].get("annotations") or {})
    assert host.status()["state"] == "failed" and "skipped this boot" in host.status()["message"]


def test_missing_addon_is_waited_for_and_never_recorded_done(api: FakeApiServer, kubeconfig: str, tmp_path,
                                                                capsys) -> None:
    """rancherd creates the Addon after the API is up; one that never comes is a
    failure with its reason, never a step recorded done (it used to be "absent",
    done, and the claims skipped for good)."""
    host = make_host(str(tmp_path / "root"), "node1", bound(1), [])
    harvester_cluster(api, [host], addon=False)
    api.unserved.add("devices.harvesterhci.io")  # no addon, so no pcidevices CRDs either
    rc, err = run_inprocess(argv(host, kubeconfig, "--addon-wait", "0.1", "--cluster-wait", "0.3"), capsys)
    assert rc == 1
    assert "Addon harvester-system/pcidevices-controller not created yet (rancherd creates it after the API is up)" in err
    assert "waiting for the Addon harvester-system/pcidevices-controller, attempt 2" in err
    assert host.state("cluster")["status"] == "failed" and host.done() is None
    status = host.status()
    assert status["state"] == "failed" and "not created yet" in status["message"]
    assert api.list("pcideviceclaims") == []


def test_addon_created_late_then_claims(api: FakeApiServer, kubeconfig: str, tmp_path, capsys) -> None:
    host = make_host(str(tmp_path / "root"), "node1", bound(2), [])
    harvester_cluster(api, [host], addon=False)
    from tests.kube.sim import seed_harvester

    def rancherd(server: FakeApiServer, req) -> None:
        if len(server.requests("GET", "/addons/pcidevices-controller$")) == 3 and server.get(
                "addons", "pcidevices-controller", "harvester-system") is None:
            seed_harvester(server, [], addon=True)

    api.observers.insert(0, rancherd)
    rc, err = run_inprocess(argv(host, kubeconfig), capsys)
    assert rc == 0, err
    assert err.count("not created yet (rancherd creates it after the API is up)") == 3
    assert host.cluster()["addons"] == {"pcidevices-controller": "enabled"}
    assert len(api.list("pcideviceclaims")) == 2


def test_pcidevices_appear_later(api: FakeApiServer, kubeconfig: str, tmp_path, capsys) -> None:
    host = make_host(str(tmp_path / "root"), "node1", bound(2), [])
    harvester_cluster(api, [host], appear_after_lists=3)
    rc, err = run_inprocess(argv(host, kubeconfig), capsys)
    assert rc == 0, err
    assert "waiting for the PCIDevices of node1, attempt 2" in err
    assert len(api.list("pcideviceclaims")) == 2


def test_pcidevices_never_appear_then_a_rerun_finishes(api: FakeApiServer, kubeconfig: str, tmp_path, capsys) -> None:
    host = make_host(str(tmp_path / "root"), "node1", bound(2), [])
    harvester_cluster(api, [host], appear_after_lists=10_000)
    rc, err = run_inprocess(argv(host, kubeconfig, "--claims-wait", "0.1", "--cluster-wait", "0.3"), capsys)
    assert rc == 1
    assert "still waiting after 0.3s: no PCIDevice with an IOMMU group yet for node1-000040000, node1-000040001" in err
    assert host.done() is None and api.list("pcideviceclaims") == []
    api.webhooks = True
    for fn in host.inventory():
        from tests.kube.sim import pcidevice

        api.put(pcidevice("node1", fn))
    rc, err = run_inprocess(argv(host, kubeconfig), capsys)
    assert rc == 0 and len(api.list("pcideviceclaims")) == 2


def test_existing_objects_are_kept_and_converged(api: FakeApiServer, kubeconfig: str, tmp_path, capsys) -> None:
    host = make_host(str(tmp_path / "root"), "node1", bound(3), [])
    harvester_cluster(api, [host])
    api.put({"apiVersion": "harvesterhci.io/v1beta1", "kind": "Setting",
             "metadata": {"name": "pci-pt-enable", "annotations": {"kept": "yes"}}, "default": "false", "value": "false"})
    from tests.kube.sim import pcidevice

    for fn in host.inventory():
        api.put(pcidevice("node1", fn))
    mine = api.get("pcidevices", pcidevice_name("node1", host.bound[0].address))
    api.put({"apiVersion": "devices.harvesterhci.io/v1beta1", "kind": "PCIDeviceClaim",
             "metadata": {"name": mine["metadata"]["name"]},
             "spec": {"address": host.bound[0].address, "nodeName": "node1", "userName": "admin"}})
    other = pcidevice_name("node1", host.bound[1].address)
    api.put({"apiVersion": "devices.harvesterhci.io/v1beta1", "kind": "PCIDeviceClaim", "metadata": {"name": other},
             "spec": {"address": "0000:99:00.0", "nodeName": "node9", "userName": "admin"}})
    rc, err = run_inprocess(argv(host, kubeconfig), capsys)
    assert rc == 0, err
    setting = api.get("settings", "pci-pt-enable")
    assert (setting["value"], setting["default"], setting["metadata"]["annotations"]) == ("true", "false", {"kept": "yes"})
    assert host.cluster()["settings"]["pci-pt-enable"] == "updated"
    assert api.get("pcideviceclaims", mine["metadata"]["name"])["spec"]["userName"] == "admin"  # left alone
    assert api.get("pcideviceclaims", other)["spec"]["nodeName"] == "node9"  # never overwritten
    res = host.cluster()["claims"]
    assert (len(res["created"]), res["existing"]) == (1, [mine["metadata"]["name"]])
    assert res["conflicts"] == [f"{other}: claim exists for node9/0000:99:00.0"]
    assert any("claim exists for node9" in w for w in host.done()["warnings"])


def test_realistic_machine_from_fakesys(api: FakeApiServer, kubeconfig: str, tmp_path, capsys, nvidia_smi_ok) -> None:
    """The intel workstation (tests.fakesys): its RTX 3080 and HDMI audio passed through
    (bound by the binder), nothing kept on the host."""
    root = str(tmp_path / "ws")
    build(fake_machines.intel_workstation(), root)
    gpu = [Fn("0000:01:00.0", "10de:2206", group=1), Fn("0000:01:00.1", "10de:1aef", "040300", group=1)]
    host = make_host(root, "ws1", gpu, [])
    harvester_cluster(api, [host])
    rc, err = run_inprocess(argv(host, kubeconfig, nvidia_smi=nvidia_smi_ok), capsys)
    assert rc == 0, err
    assert sorted(c["metadata"]["name"] for c in api.list("pcideviceclaims")) == ["ws1-000001000", "ws1-000001001"]


def test_node_registered_late_is_waited_for(api: FakeApiServer, kubeconfig: str, tmp_path, capsys, nvidia_smi_ok) -> None:
    host = make_host(str(tmp_path / "root"), "late", [], [NVIDIA_GPU])
    harvester_cluster(api, [])
    from tests.kube.sim import FakeKubelet, seed_harvester

    FakeKubelet(api, {"late": {"nvidia": 2}})
    gets = {"n": 0}

    def register(server: FakeApiServer, req) -> None:
        if req.path == "/api/v1/nodes/late" and req.status == 404:
            gets["n"] += 1
            if gets["n"] == 2:
                seed_harvester(server, ["late"], addon=False)

    api.observers.insert(0, register)
    rc, err = run_inprocess(argv(host, kubeconfig, nvidia_smi=nvidia_smi_ok), capsys)
    assert rc == 0, err
    assert "node late not registered yet" in err and host.done()["allocatable"] == {"nvidia.com/gpu": 2}


def test_state_records_are_json_with_inputs(api: FakeApiServer, kubeconfig: str, tmp_path, capsys) -> None:
    host = make_host(str(tmp_path / "root"), "node1", bound(1), [])
    harvester_cluster(api, [host])
    assert run_inprocess(argv(host, kubeconfig), capsys)[0] == 0
    rec = host.state("cluster")
    digest = host.state("request")["result"]["digest"]
    assert rec["inputs"] == {"node": "node1", "request": digest, "identity": "admin"}
    assert oct(os.stat(os.path.join(host.state_dir, "steps", "cluster.json")).st_mode & 0o777) == "0o600"
    with open(os.path.join(host.state_dir, "done")) as f:
        assert json.load(f)["node"] == "node1"
    assert sorted(os.listdir(host.state_dir)) == ["done", "lock", "status.json", "steps"]  # no temp files left


@pytest.mark.parametrize("flag", ["--state-dir", "--plan"])
def test_explicit_paths_override_root_defaults(api: FakeApiServer, kubeconfig: str, tmp_path, capsys, flag: str) -> None:
    host = make_host(str(tmp_path / "root"), "node1", [], [])
    harvester_cluster(api, [host])
    target = str(tmp_path / "elsewhere")
    if flag == "--plan":
        os.rename(host.plan_path, target)
    rc, err = run_inprocess(argv(host, kubeconfig, flag, target), capsys)
    assert rc == 0, err
    state = target if flag == "--state-dir" else host.state_dir
    assert os.path.exists(os.path.join(state, "done"))


def test_a_node_without_gpus_never_turns_gpu_enable_off(api: FakeApiServer, kubeconfig: str, tmp_path, capsys) -> None:
    """Settings are cluster-wide, plans per node: "false" creates, never downgrades."""
    first = make_host(str(tmp_path / "a"), "a", bound(1), [])
    harvester_cluster(api, [first])
    assert run_inprocess(argv(first, kubeconfig), capsys)[0] == 0
    assert api.get("settings", "gpu-enable")["value"] == "false"  # created: the first node decides
    api.mutate("settings", "gpu-enable", lambda o: o.update(value="true"))  # a GPU node joined
    second = make_host(str(tmp_path / "b"), "b", [], [])
    from tests.kube.sim import seed_harvester

    seed_harvester(api, ["b"], addon=False)
    rc, err = run_inprocess(argv(second, kubeconfig), capsys)
    assert rc == 0, err
    assert api.get("settings", "gpu-enable")["value"] == "true"
    assert second.cluster()["settings"] == {"gpu-enable": "kept", "pci-pt-enable": "unchanged"}


def test_nvidia_host_gpu_on_a_stock_node_is_left_to_the_gpu_operator(api: FakeApiServer, kubeconfig: str, tmp_path,
                                                                     capsys) -> None:
    """A stock Harvester node has no NVIDIA driver and no nvidia-smi: first boot says once
    what is missing, labels the node for Harvester's bare-metal GPU workloads (the GPU
    Operator's node) and finishes, instead of failing and restarting for ever."""
    host = make_host(str(tmp_path / "root"), "node1", bound(1), [NVIDIA_GPU])
    harvester_cluster(api, [host], gpus={"node1": {"nvidia": 1}})
    rc, err = run_inprocess(argv(host, kubeconfig, nvidia_smi=str(tmp_path / "no-such-nvidia-smi")), capsys)
    assert rc == 0, err
    assert err.count("deploy the NVIDIA GPU Operator") == 1
    labels = api.get("nodes", "node1")["metadata"]["labels"]
    assert labels["harvesterhci.io/gpu-baremetal-workloads"] == "true" and plugin_label("nvidia") not in labels
    assert api.list("daemonsets") == [] and api.list("runtimeclasses") == []  # the Operator brings its own
    done = host.done()
    assert done["plugins"] == [] and done["operator"]["gpus"] == ["0000:01:00.0"]
    assert host.state("allocatable")["status"] == "skipped"
    assert host.status()["state"] == "done" and any("GPU Operator" in s["reason"] for s in host.status()["steps"])


def test_an_agent_that_needs_nothing_does_not_wait_for_the_cluster(api: FakeApiServer, pki, tmp_path, capsys) -> None:
    """passthrough off on a joined node: its plan only has "false" Settings, which a
    server's first boot creates anyway; the agent finishes without a request."""
    from tests.kube.certs import Pki, node_client_cert

    from dataclasses import replace

    plan = replace(make_plan([], []), enabled=False, settings={"pci-pt-enable": "false", "gpu-enable": "false"},
                   addons={"pcidevices-controller": False}, claims=False)
    host = make_host(str(tmp_path / "root"), "harv-5", [], [], plan=plan)
    harvester_cluster(api, [host])
    crt, key = node_client_cert(pki, "harv-5")
    kc = api.kubeconfig(str(tmp_path / "kubelet.kubeconfig"), cert_pem=Pki.read(crt), key_pem=Pki.read(key))
    rc, err = run_inprocess(argv(host, str(tmp_path / "no-rke2.yaml"), "--kubelet-kubeconfig", kc, role="agent"),
                            capsys)
    assert rc == 0, err
    assert "as kubelet" in err and host.state("cluster")["status"] == "skipped"
    assert "installer-ext.harvesterhci.io/request" not in (api.get("nodes", "harv-5")["metadata"].get("annotations") or {})
    assert not [r for r in api.requests_by("system:node:harv-5") if r.status == 403]
