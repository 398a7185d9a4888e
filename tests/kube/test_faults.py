"""Faults: an API server that is down, slow, failing, contended; TLS mismatch; bad input."""

from __future__ import annotations

import os

import pytest

from installer_ext.kube.backoff import Clock

from tests.kube.certs import Pki
from tests.kube.conftest import argv, run_inprocess, start_subprocess
from tests.kube.fakeapi import FakeApiServer, Request, Rule
from tests.kube.hosts import Fn, gpu_addresses, make_host
from tests.kube.sim import harvester_cluster


def simple_host(tmp_path, api: FakeApiServer, n: int = 2, node: str = "node1"):
    host = make_host(str(tmp_path / node), node, [Fn(a) for a in gpu_addresses(n)], [])
    harvester_cluster(api, [host])
    return host


# -- waiting for the API -----------------------------------------------------------------------

def test_api_down_for_the_first_attempts(api: FakeApiServer, kubeconfig: str, tmp_path, capsys) -> None:
    host = simple_host(tmp_path, api)
    api.refuse_connections(4)
    rc, err = run_inprocess(argv(host, kubeconfig, "--retries", "1"), capsys)
    assert rc == 0, err
    progress = [line for line in err.splitlines() if "waiting for the API server, attempt" in line]
    assert [line.split("attempt ")[1].split(" ")[0] for line in progress] == ["1", "2", "3", "4"]
    assert "API server {} is ready (attempt 5".format(api.url) in err
    assert len(api.list("pcideviceclaims")) == 2


def test_harvester_not_deployed_yet(api: FakeApiServer, kubeconfig: str, tmp_path, capsys) -> None:
    host = simple_host(tmp_path, api)
    api.unserved.add("harvesterhci.io")

    def deploy(server: FakeApiServer, req: Request) -> None:
        if len(server.requests("GET", "^/apis/harvesterhci.io/v1beta1$")) >= 3:
            server.unserved.discard("harvesterhci.io")

    api.observers.append(deploy)
    rc, err = run_inprocess(argv(host, kubeconfig), capsys)
    assert rc == 0, err
    assert err.count("settings not served yet (Harvester deploying)") == 3


def test_api_never_up_gives_up_at_the_deadline(pki: Pki, tmp_path, capsys) -> None:
    with FakeApiServer(pki) as gone:
        kc = gone.kubeconfig(str(tmp_path / "rke2.yaml"))
        host = make_host(str(tmp_path / "root"), "node1", [], [])
    rc, err = run_inprocess(argv(host, kc, "--deadline", "0.2"), capsys)
    assert rc == 1
    last = err.strip().splitlines()[-1]
    assert last.startswith("installer-ext: API server not ready after 0.2s (")
    assert last.endswith("connection refused")
    assert "Traceback" not in err and host.done() is None


def test_kubeconfig_written_late_is_waited_for(api: FakeApiServer, tmp_path, capsys, monkeypatch) -> None:
    host = simple_host(tmp_path, api)
    path = str(tmp_path / "rke2.yaml")
    real_sleep = Clock.sleep

    def sleep_then_rke2_writes_it(self: Clock, seconds: float) -> None:
        if not os.path.exists(path):
            api.kubeconfig(path)  # RKE2 came up while we slept
        real_sleep(self, seconds)

    monkeypatch.setattr(Clock, "sleep", sleep_then_rke2_writes_it)
    rc, err = run_inprocess(argv(host, path), capsys)
    assert rc == 0, err
    assert f"attempt 1 (0s elapsed): {path} not written yet (RKE2 server starting)" in err
    assert "is ready (attempt 2" in err


def test_kubeconfig_never_written(tmp_path, capsys) -> None:
    host = make_host(str(tmp_path / "root"), "node1", [], [])
    rc, err = run_inprocess(argv(host, str(tmp_path / "rke2.yaml"), "--deadline", "0.05"), capsys)
    assert rc == 1 and "rke2.yaml not written yet (RKE2 server starting)" in err.strip().splitlines()[-2]


# -- TLS ------------------------------------------------------------------------------------------

def test_tls_mismatch_is_one_clear_line_at_once(api: FakeApiServer, other_pki: Pki, tmp_path, capsys) -> None:
    host = simple_host(tmp_path, api)
    kc = api.kubeconfig(str(tmp_path / "wrong-ca.yaml"), ca_pem=Pki.read(other_pki.ca_cert))
    rc, err = run_inprocess(argv(host, kc, "--deadline", "30"), capsys)
    assert rc == 1
    errors = [line for line in err.splitlines() if line.startswith("installer-ext:")]
    assert errors == [f"installer-ext: TLS: the API server {api.url} is not verified by the CA in {kc}: "
                      f"certificate verify failed: {errors[0].rsplit(': ', 1)[1]}"]
    assert "waiting for the API server" not in err  # no 30 s of pointless retries
    assert api.log == []  # nothing got past the handshake


def test_unauthorized_token_fails_fast(pki: Pki, tmp_path, capsys) -> None:
    with FakeApiServer(pki, token="right") as api:
        host = simple_host(tmp_path, api)
        kc = api.kubeconfig(str(tmp_path / "k.yaml"), token="wrong")
        rc, err = run_inprocess(argv(host, kc, "--deadline", "30"), capsys)
    assert rc == 1 and f"refused the credentials in {kc}: 401 Unauthorized" in err


# -- failing, slow and contended API ---------------------------------------------------------------

def test_500s_are_absorbed(api: FakeApiServer, kubeconfig: str, tmp_path, capsys) -> None:
    host = simple_host(tmp_path, api)
    api.add_rule(Rule(path="/settings/", times=3, status=500))
    api.add_rule(Rule(path="/pcideviceclaims$", method="POST", times=2, status=503, reason="ServiceUnavailable"))
    rc, err = run_inprocess(argv(host, kubeconfig), capsys)
    assert rc == 0, err
    assert len(api.list("pcideviceclaims")) == 2 and api.get("settings", "gpu-enable")["value"] == "false"
    assert err.count("retry 1/4") >= 2


def test_persistent_500_fails_one_step_and_the_rerun_finishes(api: FakeApiServer, kubeconfig: str, tmp_path, capsys) -> None:
    host = simple_host(tmp_path, api)
    rule = api.add_rule(Rule(path="/pcideviceclaims$", times=None, status=500, message="etcdserver: request timed out"))
    rc, err = run_inprocess(argv(host, kubeconfig, "--retries", "2", "--cluster-wait", "0.3"), capsys)
    assert rc == 1
    assert "installer-ext: first boot step cluster failed: still waiting after 0.3s: claims: API error: GET " \
           "/apis/devices.harvesterhci.io/v1beta1/pcideviceclaims: 500 InternalError: etcdserver: request timed out" in err
    assert host.state("request")["status"] == "done" and host.state("cluster")["status"] == "failed"
    assert api.get("settings", "pci-pt-enable")["value"] == "true"  # the other parts did their work
    api.rules.remove(rule)
    n = len(api.log)
    rc, err = run_inprocess(argv(host, kubeconfig), capsys)
    assert rc == 0, err
    # what was done is not written again: reads only
    assert not [r for r in api.log[n:] if ("/settings" in r.path or "/addons/" in r.path) and r.method != "GET"]
    assert "step request: already done" in err
    assert len(api.list("pcideviceclaims")) == 2


def test_409_storm_on_a_setting_loses_no_update(api: FakeApiServer, kubeconfig: str, tmp_path, capsys) -> None:
    """Another writer changes the Setting between each of our reads and writes: we re-read
    and retry; its change and ours both survive."""
    host = simple_host(tmp_path, api)
    api.put({"apiVersion": "harvesterhci.io/v1beta1", "kind": "Setting", "metadata": {"name": "pci-pt-enable"},
             "value": "false"})
    storms = 5

    def other_writer(req: Request) -> None:
        api.mutate("settings", "pci-pt-enable",
                   lambda o: o["metadata"].setdefault("annotations", {}).update(
                       {"writer": str(int(o["metadata"].get("annotations", {}).get("writer", "0")) + 1)}))

    api.add_rule(Rule(path="/settings/pci-pt-enable$", method="PUT", times=storms, before=other_writer))
    rc, err = run_inprocess(argv(host, kubeconfig), capsys)
    assert rc == 0, err
    s = api.get("settings", "pci-pt-enable")
    assert s["value"] == "true" and s["metadata"]["annotations"] == {"writer": str(storms)}
    puts = [r.status for r in api.requests("PUT", "/settings/pci-pt-enable$")]
    assert puts == [409] * storms + [200]
    assert err.count("changed since read") == storms


def test_409_storm_beyond_the_bound_fails_clearly(api: FakeApiServer, kubeconfig: str, tmp_path, capsys) -> None:
    host = simple_host(tmp_path, api)
    api.put({"apiVersion": "harvesterhci.io/v1beta1", "kind": "Setting", "metadata": {"name": "pci-pt-enable"},
             "value": "false"})
    api.add_rule(Rule(path="/settings/pci-pt-enable$", method="PUT", times=None,
                      before=lambda req: api.mutate("settings", "pci-pt-enable", lambda o: o.update(default="x"))))
    rc, err = run_inprocess(argv(host, kubeconfig, "--max-conflicts", "3", "--cluster-wait", "0"), capsys)
    assert rc == 1
    assert "step cluster failed: still waiting after 0s: settings: setting pci-pt-enable: still conflicting after 3 " \
           "tries" in err
    assert len(api.requests("PUT")) == 3  # one pass of the reconciler: 3 tries, no more
    assert len(api.list("pcideviceclaims")) == 2  # the claims did not wait for the settings


def test_created_by_someone_else_between_get_and_post(api: FakeApiServer, kubeconfig: str, tmp_path, capsys) -> None:
    host = simple_host(tmp_path, api)
    raced = []

    def someone_creates_it_first(req: Request) -> None:
        if b'"pci-pt-enable"' in req.body and not raced:
            raced.append(api.put({"apiVersion": "harvesterhci.io/v1beta1", "kind": "Setting",
                                  "metadata": {"name": "pci-pt-enable"}, "value": "false"}))

    api.add_rule(Rule(path="/settings$", method="POST", times=None, before=someone_creates_it_first))
    rc, err = run_inprocess(argv(host, kubeconfig), capsys)
    assert rc == 0, err
    assert raced and api.get("settings", "pci-pt-enable")["value"] == "true"
    mine = [f"{r.method} {r.status}" for r in api.requests(path="/settings")
            if "pci-pt-enable" in r.path or b'"pci-pt-enable"' in r.body]
    assert mine == ["GET 404", "POST 409", "GET 200", "PUT 200"]
    assert "created by someone else meanwhile" in err
    assert host.cluster()["settings"]["pci-pt-enable"] == "updated"


def test_slow_answers(api: FakeApiServer, kubeconfig: str, tmp_path, capsys) -> None:
    host = simple_host(tmp_path, api)
    api.add_rule(Rule(path="/pcidevices$", times=2, delay=0.15))  # slow but in time
    api.add_rule(Rule(path="/settings/gpu-enable$", times=1, delay=0.8))  # too slow once
    rc, err = run_inprocess(argv(host, kubeconfig, "--request-timeout", "0.4"), capsys)
    assert rc == 0, err
    assert "no answer within 0.4s; retry 1/4" in err
    assert len(api.list("pcideviceclaims")) == 2


def test_dropped_connections_mid_run(api: FakeApiServer, kubeconfig: str, tmp_path, capsys) -> None:
    host = simple_host(tmp_path, api)
    api.add_rule(Rule(path="/pcideviceclaims$", method="POST", times=2, drop=True))
    rc, err = run_inprocess(argv(host, kubeconfig), capsys)
    assert rc == 0, err
    assert sorted(c["metadata"]["name"] for c in api.list("pcideviceclaims")) == ["node1-000040000", "node1-000040001"]


def test_a_lost_reply_after_a_create_is_not_a_duplicate(api: FakeApiServer, kubeconfig: str, tmp_path, capsys) -> None:
    """The claim is stored but the reply never arrives: the retry gets AlreadyExists,
    reads the claim and counts it as there."""
    host = simple_host(tmp_path, api)
    dropped = {"n": 0}

    def drop_after_store(req: Request) -> None:
        if dropped["n"] == 0:
            dropped["n"] += 1
            raise ConnectionAbortedError  # the handler dies after the write: no reply

    api.add_rule(Rule(path="/pcideviceclaims$", method="POST", times=1, after=drop_after_store))
    rc, err = run_inprocess(argv(host, kubeconfig), capsys)
    assert rc == 0, err
    assert len(api.list("pcideviceclaims")) == 2
    assert [r.status for r in api.requests("POST", "/pcideviceclaims$")][:2] == [201, 409]


# -- bad input ----------------------------------------------------------------------------------

BAD_INPUTS = [
    ("kubeconfig-yaml", "{{{", "not valid YAML"),
    ("kubeconfig-fields", "apiVersion: v1\nkind: Config\n", "current-context: missing"),
    ("kubeconfig-dir", None, "is a directory, not a kubeconfig"),
    ("plan-json", "{not json", "not valid JSON"),
    ("plan-address", "address", 'passthrough[0].address: "0000:01:00.0/../x" is not a PCI address'),
    ("plan-missing", "missing", "plan.json: no such file"),
    ("node-name", "Bad_Name", "'Bad_Name' is not a valid Kubernetes node name"),
]


@pytest.mark.parametrize("case, content, expect", BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS])
def test_bad_input_is_one_line_exit_2(api: FakeApiServer, kubeconfig: str, tmp_path, capsys, case, content, expect) -> None:
    host = make_host(str(tmp_path / "root"), "node1", [Fn("0000:01:00.0")], [])
    kc = kubeconfig
    extra: list[str] = []
    if case.startswith("kubeconfig"):
        kc = str(tmp_path / "bad.yaml")
        if content is None:
            (tmp_path / "bad.yaml").mkdir()
        else:
            (tmp_path / "bad.yaml").write_text(content)
    elif case == "plan-json":
        with open(host.plan_path, "w") as f:
            f.write(content)
    elif case == "plan-address":
        import json

        with open(host.plan_path) as f:
            doc = json.load(f)
        doc["passthrough"][0]["address"] = "0000:01:00.0/../x"
        with open(host.plan_path, "w") as f:
            json.dump(doc, f)
    elif case == "plan-missing":
        import os

        os.remove(host.plan_path)
    elif case == "node-name":
        extra = ["--node-name", content]
    rc, err = run_inprocess(argv(host, kc, *extra), capsys)
    lines = [line for line in err.splitlines() if line.startswith("installer-ext:")]
    assert rc == 2, err
    assert len(lines) == 1 and expect in lines[0], err
    assert "Traceback" not in err and host.done() is None


def test_bad_kubeconfig_as_a_real_process(tmp_path) -> None:
    host = make_host(str(tmp_path / "root"), "node1", [], [])
    bad = tmp_path / "rke2.yaml"
    bad.write_text("clusters: [\n")
    proc = start_subprocess(argv(host, str(bad)))
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 2
    assert err.strip().splitlines()[-1].startswith(f"installer-ext: {bad}: not valid YAML")
    assert "Traceback" not in err and out == ""


def test_second_run_while_one_holds_the_lock(api: FakeApiServer, kubeconfig: str, tmp_path, capsys) -> None:
    host = simple_host(tmp_path, api)
    from installer_ext.firstboot.state import StateDir

    with StateDir(host.state_dir).lock():
        rc, err = run_inprocess(argv(host, kubeconfig), capsys)
    assert rc == 1 and "another firstboot run holds the lock" in err and api.log == []
