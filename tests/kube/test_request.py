"""The request a node publishes is data the reconciler validates, and a node's request
can only touch that node's own objects (a joined node is not trusted with more than its
kubelet credentials give it)."""

from __future__ import annotations

import json

import pytest

from installer_ext.firstboot import request as rq
from installer_ext.firstboot.objects import REQUEST_ANNOTATION, RESULT_ANNOTATION, STATE_LABEL
from tests.kube.conftest import argv, run_inprocess
from tests.kube.fakeapi import FakeApiServer
from tests.kube.hosts import Fn, make_host
from tests.kube.sim import harvester_cluster, pcidevice, seed_harvester


def good() -> dict:
    return rq.Request(settings={"pci-pt-enable": "true"}, addons={"pcidevices-controller": True}, claims=True,
                      devices=[rq.DeviceRequest("0000:41:00.0", "10de", "2204", "nvidia")],
                      sriov=[rq.SriovRequest("0000:5e:00.0", 8, True)], plugins=["amd"]).body()


def test_round_trip_and_digest() -> None:
    req = rq.parse(json.dumps(good()))
    assert req.devices[0].driver == "nvidia" and req.sriov[0].num_vfs == 8
    text = req.to_annotation()
    assert rq.parse(text).digest == req.digest
    assert json.loads(text)["digest"] == req.digest


BAD = [
    ("version", lambda d: d.update(version=2), "version 2 is not 1"),
    ("unknown key", lambda d: d.update(exec="rm -rf /"), "unknown key 'exec'"),
    ("setting", lambda d: d["settings"].update({"backup-target": "x"}), "not a setting installer-ext writes"),
    ("setting value", lambda d: d["settings"].update({"pci-pt-enable": "yes"}), 'is not "true" or "false"'),
    ("addon", lambda d: d["addons"].update({"rancher-vcluster": True}), "not an addon installer-ext enables"),
    ("path address", lambda d: d["devices"][0].update(address="0000:41:00.0/../../x"), "address: not a PCI address"),
    ("newline", lambda d: d["devices"][0].update(address="0000:41:00.0\n"), "address: not a PCI address"),
    ("twice", lambda d: d["devices"].append(dict(d["devices"][0])), "0000:41:00.0 twice"),
    ("driver vfio", lambda d: d["devices"][0].update(driver="vfio-pci"), "driver: not a host driver name"),
    ("driver path", lambda d: d["devices"][0].update(driver="../x"), "driver: not a host driver name"),
    ("ids", lambda d: d["devices"][0].update(vendorId="10DE"), "vendorId: not 4 hex digits"),
    ("extra device key", lambda d: d["devices"][0].update(node="harv-0"), "needs exactly"),
    ("vfs", lambda d: d["sriov"][0].update(numVFs=100000), "numVFs: not 1..4096"),
    ("vfs bool", lambda d: d["sriov"][0].update(numVFs=True), "numVFs: not 1..4096"),
    ("plugin", lambda d: d.update(plugins=["evil"]), "plugins: only amd, nvidia"),
    ("many devices", lambda d: d.update(devices=[{"address": f"0000:{i // 256:02x}:{(i // 8) % 32:02x}.{i % 8}",
                                                  "vendorId": "10de", "deviceId": "2204", "driver": ""}
                                                 for i in range(1025)]), "not a list of at most 1024"),
    ("digest", lambda d: d.update(digest="0" * 16), "digest does not match"),
]


@pytest.mark.parametrize("case, edit, expect", BAD, ids=[b[0] for b in BAD])
def test_hostile_requests_are_refused(case, edit, expect) -> None:
    doc = good()
    edit(doc)
    with pytest.raises(rq.BadRequest, match=expect.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        rq.parse(json.dumps(doc))


@pytest.mark.parametrize("text", [None, 7, "", "{", "[]", "x" * (rq.MAX_ANNOTATION_BYTES + 1)])
def test_garbage_is_refused(text) -> None:
    with pytest.raises(rq.BadRequest):
        rq.parse(text)


def test_reconciler_answers_an_invalid_request_and_does_nothing(api: FakeApiServer, kubeconfig: str, tmp_path,
                                                                capsys) -> None:
    host = make_host(str(tmp_path / "root"), "harv-0", [], [])
    harvester_cluster(api, [host])
    seed_harvester(api, ["harv-9"], addon=False)
    api.mutate("nodes", "harv-9", lambda o: o["metadata"].update(
        annotations={REQUEST_ANNOTATION: '{"version": 1, "devices": [{"address": "../../etc"}]}'},
        labels={**o["metadata"]["labels"], STATE_LABEL: "pending"}))
    n = len(api.log)
    rc, err = run_inprocess(argv(host, kubeconfig, "--reconcile"), capsys)
    assert rc == 0, err
    node = api.get("nodes", "harv-9")["metadata"]
    answer = json.loads(node["annotations"][RESULT_ANNOTATION])
    assert answer["state"] == "failed" and "invalid request on node harv-9: devices[0]: needs exactly" in answer["reason"]
    assert node["labels"][STATE_LABEL] == "done"  # not tried again by every pass
    writes = [f"{r.method} {r.path}" for r in api.log[n:] if r.method != "GET"]
    assert writes == ["PATCH /api/v1/nodes/harv-9"]
    with open(f"{host.state_dir}/reconcile.json") as f:
        assert json.load(f)["nodes"]["harv-9"]["state"] == "failed"


def test_a_request_reaches_only_the_nodes_own_devices(api: FakeApiServer, kubeconfig: str, tmp_path, capsys) -> None:
    """harv-9 asks for an address that is a device of harv-0: the reconciler looks for
    harv-9's PCIDevice of that address only, and claims nothing of harv-0's."""
    host = make_host(str(tmp_path / "root"), "harv-0", [], [])
    harvester_cluster(api, [host])
    seed_harvester(api, ["harv-9"], addon=False)
    api.put(pcidevice("harv-0", Fn("0000:41:00.0")))
    req = rq.Request(claims=True, addons={"pcidevices-controller": True},
                     devices=[rq.DeviceRequest("0000:41:00.0", "10de", "2206", "nvidia")])
    api.mutate("nodes", "harv-9", lambda o: o["metadata"].update(
        annotations={REQUEST_ANNOTATION: req.to_annotation()}, labels={STATE_LABEL: "pending"}))
    rc, err = run_inprocess(argv(host, kubeconfig, "--reconcile", "--claims-wait", "0.05"), capsys)
    assert rc == 0, err
    answer = json.loads(api.get("nodes", "harv-9")["metadata"]["annotations"][RESULT_ANNOTATION])
    assert answer["state"] == "waiting" and "no PCIDevice with an IOMMU group yet for harv-9-000041000" in answer["reason"]
    assert api.list("pcideviceclaims") == []
    assert api.get("pcidevices", "harv-0-000041000")["metadata"]["annotations"]["harvesterhci.io/pcideviceDriver"] \
        == "vfio-pci"  # harv-0's device untouched
    assert api.get("nodes", "harv-9")["metadata"]["labels"][STATE_LABEL] == "pending"  # the next pass tries again
