"""The state dir: what first boot cannot read or write is an error, never "done".

#12 item 9: `--state-dir` pointing at a regular file said "first boot already done" and
exited 0, so first boot never ran. Every state problem is now one line and a non-zero
exit (2 when the argument itself is wrong, 1 when a file in a valid state dir cannot
be read or written), and `status.json` tells `installer-ext status` where things are.
"""

from __future__ import annotations

import json
import os


from tests.kube.conftest import argv, run_inprocess
from tests.kube.fakeapi import FakeApiServer
from tests.kube.hosts import Fn, gpu_addresses, make_host
from tests.kube.sim import harvester_cluster


def host_for(tmp_path, api=None):
    host = make_host(str(tmp_path / "root"), "node1", [Fn(a) for a in gpu_addresses(1)], [])
    if api is not None:
        harvester_cluster(api, [host])
    return host


def one_error(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("installer-ext:")]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def test_state_dir_that_is_a_regular_file_is_bad_input(api: FakeApiServer, kubeconfig: str, tmp_path, capsys) -> None:
    host = host_for(tmp_path, api)
    state = tmp_path / "state-file"
    state.write_text("not a directory\n")
    rc, err = run_inprocess(argv(host, kubeconfig, "--state-dir", str(state)), capsys)
    assert rc == 2, err
    line = one_error(err)
    assert str(state) in line and "not a directory" in line
    assert "already done" not in err
    assert api.log == []  # nothing was done on the strength of a state it cannot keep
    assert state.read_text() == "not a directory\n"


def test_state_dir_under_a_regular_file_is_bad_input(api: FakeApiServer, kubeconfig: str, tmp_path, capsys) -> None:
    host = host_for(tmp_path, api)
    (tmp_path / "file").write_text("x")
    rc, err = run_inprocess(argv(host, kubeconfig, "--state-dir", str(tmp_path / "file" / "state")), capsys)
    assert rc == 2 and "already done" not in err
    assert "file/state" in one_error(err)


def test_unreadable_done_marker_is_an_error_not_done(api: FakeApiServer, kubeconfig: str, tmp_path, capsys) -> None:
    host = host_for(tmp_path, api)
    os.makedirs(os.path.join(host.state_dir, "done"))  # a directory where the marker should be
    rc, err = run_inprocess(argv(host, kubeconfig), capsys)
    assert rc == 1, err
    line = one_error(err)
    assert line.startswith(f"installer-ext: {host.state_dir}/done: cannot read") and "already done" not in err


def test_corrupt_done_marker_is_an_error_not_done(api: FakeApiServer, kubeconfig: str, tmp_path, capsys) -> None:
    host = host_for(tmp_path, api)
    os.makedirs(host.state_dir)
    with open(os.path.join(host.state_dir, "done"), "w") as f:
        f.write('{"node": "node1", "fin')
    rc, err = run_inprocess(argv(host, kubeconfig), capsys)
    assert rc == 1, err
    assert "done: not valid JSON" in one_error(err) and "already done" not in err


def test_state_that_cannot_be_written_is_an_error(api: FakeApiServer, kubeconfig: str, tmp_path, capsys) -> None:
    if os.geteuid() == 0:
        # root writes through mode bits: make the steps dir a file instead
        host = host_for(tmp_path, api)
        os.makedirs(host.state_dir)
        with open(os.path.join(host.state_dir, "steps"), "w") as f:
            f.write("x")
    else:
        host = host_for(tmp_path, api)
        os.makedirs(os.path.join(host.state_dir, "steps"))
        os.chmod(os.path.join(host.state_dir, "steps"), 0o500)
    rc, err = run_inprocess(argv(host, kubeconfig), capsys)
    assert rc in (1, 2), err
    assert f"{host.state_dir}/steps" in one_error(err)
    assert "already done" not in err and host.done() is None


def test_status_json_follows_every_step(api: FakeApiServer, kubeconfig: str, tmp_path, capsys) -> None:
    host = host_for(tmp_path, api)
    seen: list[dict] = []
    path = os.path.join(host.state_dir, "status.json")

    from installer_ext.firstboot import state as state_mod

    real = state_mod.StateDir.write_status

    def spy(self, *a, **kw):
        real(self, *a, **kw)
        with open(path) as f:
            seen.append(json.load(f))

    state_mod.StateDir.write_status = spy
    try:
        rc, err = run_inprocess(argv(host, kubeconfig), capsys)
    finally:
        state_mod.StateDir.write_status = real
    assert rc == 0, err
    final = seen[-1]
    assert final["state"] == "done" and final["message"].startswith("first boot done on node1")
    assert {s["status"] for s in final["steps"]} <= {"done", "skipped"}
    assert all(set(s) == {"name", "status", "reason", "at"} for s in final["steps"])
    assert seen[0]["state"] in ("running", "waiting")
    assert any(s["state"] == "running" for s in seen)
    # every change of a step's status was written when it happened
    names = [s["name"] for s in final["steps"]]
    assert names[0] == "api" and len(names) == len(set(names))
    for snap in seen:
        assert snap["updated"] >= seen[0]["updated"]


def test_status_json_says_failed_with_the_reason(api: FakeApiServer, kubeconfig: str, tmp_path, capsys) -> None:
    host = host_for(tmp_path, api)
    rc, err = run_inprocess(argv(host.__class__(host.root, host.node, host.bound), str(tmp_path / "missing.yaml"),
                                 "--deadline", "0.05"), capsys)
    assert rc == 1
    with open(os.path.join(host.state_dir, "status.json")) as f:
        doc = json.load(f)
    assert doc["state"] == "failed"
    assert "not written yet" in doc["message"]
    (api_step,) = [s for s in doc["steps"] if s["name"] == "api"]
    assert api_step["status"] == "failed" and "not written yet" in api_step["reason"]


def test_attempts_are_bounded_then_the_unit_stops(api: FakeApiServer, kubeconfig: str, tmp_path, capsys) -> None:
    """No unit of ours restarts for ever: after --max-attempts failed runs first boot
    writes the gave-up marker (the unit's ConditionPathExists=! then stops systemd's
    restarts), says why in status.json, and marks its Node so the reconciler stops too."""
    host = host_for(tmp_path, api)
    api.delete("addons", "pcidevices-controller", "harvester-system")  # never comes
    args = argv(host, kubeconfig, "--max-attempts", "3", "--addon-wait", "0.05", "--cluster-wait", "0.1")
    for attempt in (1, 2):
        rc, err = run_inprocess(args, capsys)
        assert rc == 1 and "gave up" not in err
        assert host.status()["attempt"] == attempt and host.status()["state"] == "failed"
    rc, err = run_inprocess(args, capsys)
    assert rc == 1 and "first boot gave up after 3 attempts (the unit stops)" in err
    marker = os.path.join(host.state_dir, "gave-up")
    with open(marker) as f:
        assert f.read().startswith("gave up after 3 attempts: first boot step cluster failed: still waiting")
    status = host.status()
    assert status["state"] == "failed" and status["message"].startswith("gave up after 3 attempts")
    assert api.get("nodes", "node1")["metadata"]["labels"]["installer-ext.harvesterhci.io/first-boot"] == "gave-up"
    n = len(api.log)
    rc, err = run_inprocess(args, capsys)  # what a manual start would do: nothing, and why
    assert rc == 1 and "first boot gave up earlier: gave up after 3 attempts" in err and len(api.log) == n
    # --retry starts again from attempt 1
    from tests.kube.sim import seed_harvester

    seed_harvester(api, [], addon=True)
    rc, err = run_inprocess(args + ["--retry"], capsys)
    assert rc == 0, err
    assert not os.path.exists(marker) and host.status()["attempt"] == 1 and host.done() is not None


def test_a_damaged_status_file_does_not_block_first_boot(api: FakeApiServer, kubeconfig: str, tmp_path,
                                                         capsys) -> None:
    host = host_for(tmp_path, api)
    os.makedirs(host.state_dir)
    with open(os.path.join(host.state_dir, "status.json"), "w") as f:
        f.write('{"state": "runn')
    rc, err = run_inprocess(argv(host, kubeconfig), capsys)
    assert rc == 0, err
    assert "status.json: not valid JSON" in err and host.status()["attempt"] == 1
