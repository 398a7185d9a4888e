"""The rendered set under crashes and bad targets (issue #12 item 7).

The kill tests do not kill at random: `fsutil.failpoint` names every step of a write
(each staged file, the commit journal, each rename), and each test kills render with
SIGKILL at exactly one of them, for all of them. After every kill the node must see the
old set or the new one (the manifest, written last, matches every file it names), or a
set it refuses to act on (the manifest does not match: bind, first boot and the
kernel-args keeper do nothing); a rerun finishes the new set and leaves no stale file.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from installer_ext import paths
from installer_ext.errors import ExtError
from installer_ext.render import manifest
from installer_ext.render.record import RENDERED, InstallRecord
from installer_ext.render.commit import JOURNAL_FILE, STAGE_SUFFIX
from installer_ext.render.write import RenderSet, write_set
from tests.cli import REPO, run
from tests.test_render import CONFIG, CONFIG_B, make_target
from tests.trees import snapshot

EPOCH = {"SOURCE_DATE_EPOCH": "1767225600"}


def render(cfg, root, target, env=None, app=None):
    args = ["render", "--config", str(cfg), "--root", root, "--target", target]
    if app:
        args += ["--app", app]
    return subprocess.run([sys.executable, "-m", "installer_ext", *args], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, **EPOCH, **(env or {})}, timeout=120)


def real_files(target: str) -> dict[str, bytes]:
    """What the node reads: every file but staged ones and the commit journal."""
    return {p: d for p, d in snapshot(target).items()
            if not os.path.basename(p).endswith(STAGE_SUFFIX) and p != JOURNAL_FILE}


def stale(target: str) -> list[str]:
    return [p for p in snapshot(target) if p.endswith(STAGE_SUFFIX) or os.path.basename(p).startswith(".tmp-") or p == JOURNAL_FILE]


@pytest.fixture(scope="module")
def sets(tmp_path_factory, machine_root):
    """Set A rendered, and the reference of A then B, with one app archive for all."""
    tmp = tmp_path_factory.mktemp("sets")
    a, b = tmp / "a.yaml", tmp / "b.yaml"
    a.write_text(CONFIG)
    b.write_text(CONFIG_B)
    app = tmp / "app.pyz"
    from installer_ext.render.app import package_files, zip_bytes

    app.write_bytes(zip_bytes(package_files()))
    root = machine_root("intel-workstation")
    old = make_target(tmp / "old", {"third_party_kernel_args": "quiet", "x": "1"})
    assert render(a, root, old, app=str(app)).returncode == 0
    new = str(tmp / "new")
    shutil.copytree(old, new)
    listed = render(b, root, new, env={"INSTALLER_EXT_FAILPOINT": "list"}, app=str(app))
    assert listed.returncode == 0, listed.stderr
    points = [line.split(": ", 1)[1] for line in listed.stderr.splitlines() if line.startswith("failpoint: ")]
    return {"a": a, "b": b, "app": str(app), "root": root, "old": old, "new": new, "points": points}


def test_the_write_passes_every_failpoint_in_order(sets):
    points = sets["points"]
    stage = [p for p in points if p.startswith("stage:")]
    commit = [p for p in points if p.startswith("commit:")]
    # everything is staged before the journal, the journal before any rename, the
    # manifest renamed last
    assert points == stage + ["journal"] + commit
    assert commit[-1] == f"commit:{paths.MANIFEST_FILE}" and commit[-2] == f"commit:{paths.PLAN_FILE}"
    assert f"commit:{paths.GRUBENV_FILE}" in commit
    assert {p.split(":", 1)[1] for p in stage} == {p.split(":", 1)[1] for p in commit}


def test_a_kill_at_every_step_leaves_old_new_or_refused_and_a_rerun_finishes(sets, tmp_path):
    old_files, new_files = real_files(sets["old"]), real_files(sets["new"])
    assert old_files != new_files
    assert manifest.verify(paths.Target(root=sets["old"])).complete
    assert manifest.verify(paths.Target(root=sets["new"])).complete
    seen = {"old": 0, "new": 0, "refused": 0}
    for i, point in enumerate(sets["points"]):
        target = str(tmp_path / f"t{i}")
        shutil.copytree(sets["old"], target)
        p = render(sets["b"], sets["root"], target, env={"INSTALLER_EXT_FAILPOINT": point}, app=sets["app"])
        assert p.returncode == -9, f"{point}: the failpoint was not reached ({p.returncode}: {p.stderr})"
        now = real_files(target)
        check = manifest.verify(paths.Target(root=target))
        if now == old_files:
            seen["old"] += 1
            assert check.complete
        elif now == new_files:
            seen["new"] += 1
            assert check.complete
        else:
            # a mix: the node must see that the manifest does not match
            seen["refused"] += 1
            assert not check.complete, f"{point}: a mix of old and new files passes the manifest"
            assert point.startswith("commit:") and point != f"commit:{paths.MANIFEST_FILE}"
        if point.startswith("stage:") or point == "journal":
            assert now == old_files, f"{point}: a real file changed before the commit"
        again = render(sets["b"], sets["root"], target, app=sets["app"])
        assert again.returncode == 0, again.stderr
        assert real_files(target) == new_files, point
        assert stale(target) == [], point
    assert seen["old"] and seen["new"] and seen["refused"]


def test_the_launcher_refuses_a_set_the_manifest_does_not_cover(sets, tmp_path):
    """The launcher's own check (sha256sum -c), as bind, firstboot and kernel-args
    run it on the node: manifest paths are the node's, so the test points them here."""
    if shutil.which("sha256sum") is None:
        pytest.fail("sha256sum is part of coreutils")
    target = str(tmp_path / "t")
    shutil.copytree(sets["new"], target)
    sums = tmp_path / "SHA256SUMS"
    text = open(os.path.join(target, paths.MANIFEST_FILE)).read()
    sums.write_text(text.replace("  /", f"  {target}/"))
    launcher = os.path.join(target, paths.LAUNCHER_FILE)
    env = {**os.environ, "INSTALLER_EXT_SUMS": str(sums), "PATH": "/usr/bin:/bin"}
    ok = subprocess.run([launcher, "kernel-args", "--help"], capture_output=True, text=True, env=env)
    assert ok.returncode == 0 and "kernel-args" in ok.stdout, ok.stderr
    with open(os.path.join(target, paths.PLAN_FILE), "a") as f:
        f.write(" ")
    bad = subprocess.run([launcher, "bind", "--help"], capture_output=True, text=True, env=env)
    assert bad.returncode == 1 and "incomplete or changed" in bad.stderr
    # status still runs: it is how the user finds out
    st = subprocess.run([launcher, "status", "--root", target], capture_output=True, text=True, env=env)
    assert st.returncode == 0 and "INCOMPLETE" in st.stdout and "/oem/installer-ext/plan.json" in st.stdout


def test_stale_files_of_a_killed_run_are_removed(sets, tmp_path):
    target = str(tmp_path / "t")
    shutil.copytree(sets["old"], target)
    junk = [os.path.join(target, "oem", ".tmp-abc123"), os.path.join(target, "oem", "installer-ext", f".plan.json{STAGE_SUFFIX}")]
    for j in junk:
        with open(j, "w") as f:
            f.write("half")
    assert render(sets["b"], sets["root"], target, app=sets["app"]).returncode == 0
    assert stale(target) == []


def test_a_journal_cannot_lead_a_rename_out_of_the_target(sets, tmp_path):
    """The commit journal is a file on the target: a name in it that is absolute or climbs
    out with `..` is ignored, even where a staged file waits beside it."""
    target = str(tmp_path / "t")
    shutil.copytree(sets["old"], target)
    outside = tmp_path / "outside"
    outside.mkdir()
    victims = [outside / "abs", outside / "climb"]
    for v in victims:
        v.write_text("original")
        (outside / f".{v.name}{STAGE_SUFFIX}").write_text("planted")
    climb = os.path.relpath(str(victims[1]), target)
    assert climb.startswith("..")
    with open(os.path.join(target, JOURNAL_FILE), "w") as f:
        json.dump([str(victims[0]), climb, "oem/../../" + climb], f)
    p = render(sets["b"], sets["root"], target, app=sets["app"])
    assert p.returncode == 0, p.stderr
    assert [v.read_text() for v in victims] == ["original", "original"]
    assert p.stderr.count("ignored") == 3 and "commit journal" in p.stderr, p.stderr
    assert stale(target) == []


def test_no_room_is_found_before_the_first_write(sets, tmp_path, monkeypatch):
    target = str(tmp_path / "t")
    shutil.copytree(sets["old"], target)
    before = snapshot(target)
    real = os.statvfs

    class Full:
        def __init__(self, st):
            self.f_bavail, self.f_frsize, self.f_flag = 3, 4096, st.f_flag

    monkeypatch.setattr(os, "statvfs", lambda p: Full(real(p)))
    record = InstallRecord(RENDERED, source="render")
    with pytest.raises(ExtError) as err:
        write_set(RenderSet(None, record, app=b"PK" + b"x" * 200000), paths.Target(root=target))
    [line] = err.value.lines
    assert "not enough room" in line and "nothing was changed" in line and line.startswith(target)
    assert snapshot(target) == before


@pytest.mark.parametrize("breakage, words", [
    ("oem-is-a-file", "cannot create the directory"),
    ("target-missing", "target directory does not exist"),
    ("app-missing", "no such file"),
])
def test_a_bad_target_or_app_is_one_line_and_nothing_written(sets, tmp_path, breakage, words):
    target = str(tmp_path / "t")
    os.makedirs(target)
    app = sets["app"]
    if breakage == "oem-is-a-file":
        with open(os.path.join(target, "oem"), "w") as f:
            f.write("not a directory")
    elif breakage == "target-missing":
        target = str(tmp_path / "missing")
    else:
        app = str(tmp_path / "no-such.pyz")
    r = run("render", "--config", str(sets["a"]), "--root", sets["root"], "--target", target, "--app", app)
    assert r.rc in (1, 2) and words in r.err, r.err
    assert len(r.err.strip().splitlines()) == 1 and "Traceback" not in r.err and "internal error" not in r.err
    if os.path.isdir(target):
        assert [p for p in snapshot(target) if p != "oem"] == []
