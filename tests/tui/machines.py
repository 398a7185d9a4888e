"""Machines for the screen's tests and benchmark, made from tests/fakesys.

`big_sriov_host`: `sriov_host` with its physical functions two buses apart. In
`sriov_host(16, 250)` the VFs of 10:00.0 (offset 8, stride 1) run to 11:01.1, over the
next PF's address 11:00.0, so that tree has 4022 functions where a real host would
have 4038; spacing the PFs keeps every VF address unique, as on real hardware.
"""

from __future__ import annotations

from tests.fakesys.machines import sriov_host


def big_sriov_host(nics: int = 16, vfs: int = 254):
    """22 + nics * (1 + vfs) functions: 4102 with the defaults."""
    m = sriov_host(nics, vfs)
    i = 0
    for d in m.devices:
        if d.address.endswith(":00.0") and d.sriov_total:
            d.address = f"0000:{0x20 + 2 * i:02x}:00.0"
            i += 1
    m.name = "big-sriov-host"
    return m
