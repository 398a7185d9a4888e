"""The device plugin manifests: pinned images, names as upstream ships them (docs/design.md,
"Upstream behaviours the design depends on"), our node labels."""

from __future__ import annotations

import re

import pytest

from installer_ext.firstboot import manifests
from installer_ext.firstboot.objects import plugin_label

PINNED = {
    "nvidia": ("nvidia-device-plugin-daemonset", "nvcr.io/nvidia/k8s-device-plugin:v0.20.0"),
    "amd": ("amdgpu-device-plugin-daemonset", "docker.io/rocm/k8s-device-plugin:1.31.0.9"),
}


@pytest.mark.parametrize("plugin", sorted(PINNED))
def test_daemonset_is_pinned_and_selects_our_label(plugin: str) -> None:
    (ds,) = [m for m in manifests.manifests(plugin) if m["kind"] == "DaemonSet"]
    name, image = PINNED[plugin]
    assert (ds["metadata"]["name"], ds["metadata"]["namespace"]) == (name, "kube-system")
    pod = ds["spec"]["template"]["spec"]
    images = [c["image"] for c in pod["containers"]]
    assert images == [image] and all(re.search(r":[\w.]+$", i) and not i.endswith(":latest") for i in images)
    assert pod["nodeSelector"] == {plugin_label(plugin): "true"}
    assert pod["priorityClassName"] == "system-node-critical"
    assert ds["spec"]["selector"]["matchLabels"].items() <= ds["spec"]["template"]["metadata"]["labels"].items()
    mounts = {m["mountPath"] for c in pod["containers"] for m in c["volumeMounts"]}
    assert "/var/lib/kubelet/device-plugins" in mounts


def test_nvidia_runtime_class_comes_first_and_is_used() -> None:
    objs = manifests.manifests("nvidia")
    assert [o["kind"] for o in objs] == ["RuntimeClass", "DaemonSet"]
    assert objs[0]["handler"] == "nvidia" and objs[1]["spec"]["template"]["spec"]["runtimeClassName"] == "nvidia"
    tolerations = objs[1]["spec"]["template"]["spec"]["tolerations"]
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in tolerations


def test_amd_plugin_sees_sys_and_is_privileged() -> None:
    (ds,) = manifests.manifests("amd")
    c = ds["spec"]["template"]["spec"]["containers"][0]
    assert c["securityContext"]["privileged"] is True and {"name": "sys", "mountPath": "/sys"} in c["volumeMounts"]


def test_fingerprint_follows_the_manifests(monkeypatch) -> None:
    a = manifests.fingerprint(["nvidia"])
    assert a == manifests.fingerprint(["nvidia"]) and a != manifests.fingerprint(["amd"])
    real = manifests.read_template
    monkeypatch.setattr(manifests, "read_template", lambda n: real(n).replace("v0.20.0", "v0.20.1"))
    assert manifests.fingerprint(["nvidia"]) != a


def test_a_template_of_the_wrong_kind_is_refused(monkeypatch) -> None:
    monkeypatch.setattr(manifests, "read_template", lambda n: "apiVersion: v1\nkind: Secret\nmetadata: {name: x}\n")
    with pytest.raises(Exception, match="v1 Secret cannot be applied"):
        manifests.manifests("amd")


def test_manifests_load_from_a_zipapp(tmp_path) -> None:
    """The node runs installer-ext from a .pyz: templates come from inside the zip."""
    import os
    import subprocess
    import sys
    import zipfile

    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    app = tmp_path / "installer-ext.pyz"
    with zipfile.ZipFile(app, "w") as z:
        for base, _, files in os.walk(os.path.join(repo, "installer_ext")):
            for f in files:
                if f.endswith(".py"):
                    full = os.path.join(base, f)
                    z.write(full, os.path.relpath(full, repo))
        for f in os.listdir(os.path.join(repo, "templates", "firstboot")):
            z.write(os.path.join(repo, "templates", "firstboot", f), f"installer_ext/templates/firstboot/{f}")
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import installer_ext.firstboot.manifests as m; "
            "assert m.__file__.startswith(sys.argv[1]); "
            "print(','.join(o['kind'] for o in m.manifests('nvidia') + m.manifests('amd')))")
    out = subprocess.run([sys.executable, "-c", code, str(app)], capture_output=True, text=True, timeout=60,
                         cwd=str(tmp_path))
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "RuntimeClass,DaemonSet,DaemonSet"
