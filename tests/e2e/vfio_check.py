"""Can a VM use this PCI function? The VFIO steps a hypervisor takes, from Python.

Runs inside the guest (no dependencies beyond the standard library):

    python tests/e2e/vfio_check.py 0000:00:04.0 [ADDR ...]   -> JSON on stdout, exit 0 if all pass

For each address: open /dev/vfio/vfio, check the API version and type1v2 support, open
/dev/vfio/<group>, VFIO_GROUP_GET_STATUS says viable, VFIO_GROUP_SET_CONTAINER,
VFIO_SET_IOMMU type1v2, VFIO_GROUP_GET_DEVICE_FD (+ VFIO_DEVICE_GET_INFO),
VFIO_IOMMU_MAP_DMA of 1 MiB of anonymous memory, VFIO_IOMMU_UNMAP_DMA. Each step's outcome
is recorded; the first failure stops the check.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import json
import mmap
import os
import re
import struct
import sys
from typing import Any

# linux/vfio.h: every VFIO ioctl is _IO(';', 100 + n)
_VFIO = ord(";") << 8
VFIO_GET_API_VERSION = _VFIO | 100
VFIO_CHECK_EXTENSION = _VFIO | 101
VFIO_SET_IOMMU = _VFIO | 102
VFIO_GROUP_GET_STATUS = _VFIO | 103
VFIO_GROUP_SET_CONTAINER = _VFIO | 104
VFIO_GROUP_UNSET_CONTAINER = _VFIO | 105
VFIO_GROUP_GET_DEVICE_FD = _VFIO | 106
VFIO_DEVICE_GET_INFO = _VFIO | 107
VFIO_IOMMU_MAP_DMA = _VFIO | 113
VFIO_IOMMU_UNMAP_DMA = _VFIO | 114

VFIO_API_VERSION = 0
VFIO_TYPE1v2_IOMMU = 3
VFIO_GROUP_FLAGS_VIABLE = 1 << 0
VFIO_GROUP_FLAGS_CONTAINER_SET = 1 << 1
VFIO_DMA_MAP_FLAG_READ = 1 << 0
VFIO_DMA_MAP_FLAG_WRITE = 1 << 1

MAP_SIZE = 1 << 20
IOVA = 0x100000

_ADDRESS = re.compile(r"^[0-9a-f]{4}:[0-9a-f]{2}:[0-1][0-9a-f]\.[0-7]$")


class _Failed(Exception):
    pass


def _pci(address: str, *parts: str) -> str:
    return os.path.join("/sys/bus/pci/devices", address, *parts)


def _link_name(path: str) -> str | None:
    try:
        return os.path.basename(os.readlink(path))
    except OSError:
        return None


def _ioctl(fd: int, request: int, arg: int | bytearray) -> None:
    if isinstance(arg, bytearray):
        fcntl.ioctl(fd, request, arg, True)
    else:
        fcntl.ioctl(fd, request, arg)


def check(address: str) -> dict[str, Any]:
    """Run the VFIO steps for one function. Never raises for a failed step."""
    result: dict[str, Any] = {"address": address, "ok": False, "steps": []}
    steps: list[dict[str, Any]] = result["steps"]
    fds: list[int] = []

    def step(name: str, fn, *args):
        try:
            detail = fn(*args)
        except OSError as e:
            steps.append({"step": name, "ok": False, "error": f"{errno.errorcode.get(e.errno, e.errno)}: {e.strerror}"})
            raise _Failed from e
        except _Failed as e:
            steps.append({"step": name, "ok": False, "error": str(e)})
            raise
        steps.append({"step": name, "ok": True, **({"detail": detail} if detail is not None else {})})
        return detail

    def fail(msg: str):
        raise _Failed(msg)

    def opened(path: str) -> int:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
        fds.append(fd)
        return fd

    try:
        if not _ADDRESS.match(address):
            steps.append({"step": "address", "ok": False, "error": f"not a PCI address: {address!r}"})
            return result
        result["driver"] = _link_name(_pci(address, "driver"))
        group = _link_name(_pci(address, "iommu_group"))
        result["group"] = int(group) if group and group.isdigit() else None
        if result["group"] is not None:
            try:
                members = sorted(os.listdir(f"/sys/kernel/iommu_groups/{group}/devices"))
            except OSError:
                members = []
            result["group_devices"] = {m: _link_name(_pci(m, "driver")) for m in members}

        if result["group"] is None:
            step("iommu_group", fail, f"{address} has no iommu_group link")
        container = step("open /dev/vfio/vfio", opened, "/dev/vfio/vfio")

        def api_version():
            v = fcntl.ioctl(container, VFIO_GET_API_VERSION)
            if v != VFIO_API_VERSION:
                fail(f"API version {v}, expected {VFIO_API_VERSION}")
            return v

        step("VFIO_GET_API_VERSION", api_version)

        def type1v2():
            if fcntl.ioctl(container, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU) != 1:
                fail("type1v2 IOMMU not supported (vfio_iommu_type1 not loaded?)")

        step("VFIO_CHECK_EXTENSION type1v2", type1v2)
        gfd = step(f"open /dev/vfio/{group}", opened, f"/dev/vfio/{group}")

        def status():
            buf = bytearray(struct.pack("II", 8, 0))
            fcntl.ioctl(gfd, VFIO_GROUP_GET_STATUS, buf, True)
            flags = struct.unpack("II", buf)[1]
            if not flags & VFIO_GROUP_FLAGS_VIABLE:
                fail(f"group {group} not viable (flags {flags:#x}): {result.get('group_devices')}")
            return {"flags": flags}

        step("VFIO_GROUP_GET_STATUS viable", status)
        step("VFIO_GROUP_SET_CONTAINER", _ioctl, gfd, VFIO_GROUP_SET_CONTAINER, bytearray(struct.pack("i", container)))
        step("VFIO_SET_IOMMU type1v2", _ioctl, container, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU)

        def device_fd():
            fd = fcntl.ioctl(gfd, VFIO_GROUP_GET_DEVICE_FD, bytearray(address.encode() + b"\0"), True)
            fds.append(fd)
            info = bytearray(struct.pack("IIII", 16, 0, 0, 0))
            fcntl.ioctl(fd, VFIO_DEVICE_GET_INFO, info, True)
            _, flags, regions, irqs = struct.unpack("IIII", info)
            return {"flags": flags, "num_regions": regions, "num_irqs": irqs}

        step("VFIO_GROUP_GET_DEVICE_FD", device_fd)

        mem = mmap.mmap(-1, MAP_SIZE, mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        anchor = ctypes.c_char.from_buffer(mem)  # pins the buffer while its address is used
        try:
            vaddr = ctypes.addressof(anchor)

            def map_dma():
                flags = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE
                fcntl.ioctl(container, VFIO_IOMMU_MAP_DMA, bytearray(struct.pack("IIQQQ", 32, flags, vaddr, IOVA, MAP_SIZE)), True)
                return {"iova": IOVA, "size": MAP_SIZE}

            step("VFIO_IOMMU_MAP_DMA 1MiB", map_dma)

            def unmap_dma():
                buf = bytearray(struct.pack("IIQQ", 24, 0, IOVA, MAP_SIZE))
                fcntl.ioctl(container, VFIO_IOMMU_UNMAP_DMA, buf, True)
                unmapped = struct.unpack("IIQQ", buf)[3]
                if unmapped != MAP_SIZE:
                    fail(f"unmapped {unmapped} bytes, expected {MAP_SIZE}")
                return {"size": unmapped}

            step("VFIO_IOMMU_UNMAP_DMA", unmap_dma)
        finally:
            del anchor
            mem.close()
        result["ok"] = True
    except _Failed:
        pass
    finally:
        for fd in reversed(fds):
            try:
                os.close(fd)
            except OSError:
                pass
    return result


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: vfio_check.py ADDRESS [ADDRESS ...]", file=sys.stderr)
        return 2
    results = [check(a) for a in argv]
    json.dump(results if len(results) > 1 else results[0], sys.stdout, indent=1)
    print()
    return 0 if all(r["ok"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
