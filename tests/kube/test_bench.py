"""The request count of a first boot grows by two requests per bound device, no more:
its claim, and the give-back driver on its PCIDevice (the controller recorded vfio-pci
because our binder ran first)."""

from __future__ import annotations

from bench.firstboot_bench import measure


def test_requests_for_64_bound_devices(tmp_path, pki, capsys) -> None:
    f = measure(64, str(tmp_path), pki, subprocess_run=False)
    with capsys.disabled():
        print(f"\n64 bound devices: {f.requests} API requests, {f.wall_s:.3f}s in-process; by kind {f.by_kind}")
    assert f.by_kind["POST pcideviceclaims (collection)"] == 64
    assert f.by_kind["PATCH pcidevices"] == 64
    # discovery, 2 settings x 2, addon x 2, node x 3 reads + 2 patches, 2 lists, 2 applies, allocatable
    assert f.requests - 2 * 64 <= 20, f.by_kind
    assert f.rerun_requests == 0
