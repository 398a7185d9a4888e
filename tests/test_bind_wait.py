"""The bounded waits: the udev-monitor waiter (real systems) and the run lock."""

from __future__ import annotations

import fcntl
import os

import pytest

from installer_ext.boot.driver import UdevWaiter, Waiter
from installer_ext.boot.lock import LOCK_FILE, run_lock
from installer_ext.boot.node import Node
from installer_ext.errors import ExtError
from tests.fakekernel import FakeKernel
from tests.fakesys.builder import build
from tests.fakesys.machines import intel_workstation, node_of

GPU = "0000:01:00.0"


class FakeMonitor:
    """pyudev's Monitor.poll: here each poll is one kernel event (a tick)."""

    def __init__(self, k: FakeKernel) -> None:
        self.k = k
        self.polls: list[float] = []

    def poll(self, timeout: float | None = None) -> None:
        self.polls.append(timeout)
        self.k.clock.t += timeout or 0
        self.k.tick()


@pytest.fixture
def k(tmp_path) -> FakeKernel:
    root = str(tmp_path / "root")
    build(node_of(intel_workstation()), root)
    return FakeKernel(root)


def _start_async_bind(k: FakeKernel, ticks: int) -> None:
    k.defer[GPU] = ticks
    k.io.write(os.path.join(k.devdir(GPU), "driver_override"), "vfio-pci")
    k.io.write(os.path.join(k.devdir(GPU), "driver", "unbind"), GPU)
    k.io.write(os.path.join(k.pci, "drivers_probe"), GPU)


def test_udev_waiter_sleeps_on_the_monitor(k):
    mon = FakeMonitor(k)
    w = UdevWaiter(Node(k.root, k.io), k.clock, monitor_factory=lambda: mon)
    w.start()
    _start_async_bind(k, 3)
    assert w.wait(GPU, lambda d: d == "vfio-pci", 5.0) == "vfio-pci"
    assert len(mon.polls) == 3 and all(t <= 0.5 for t in mon.polls)
    assert k.clock.sleeps == 0


def test_udev_waiter_is_bounded_and_falls_back_to_polling(k):
    def broken():
        raise OSError("no netlink here")

    w = UdevWaiter(Node(k.root, k.io), k.clock, monitor_factory=broken)
    w.start()
    k.stall.add(GPU)
    _start_async_bind(k, 1)
    start = k.clock.now()
    assert w.wait(GPU, lambda d: d == "vfio-pci", 1.5) is None
    assert 1.5 <= k.clock.now() - start <= 1.5 + 1e-6
    assert k.clock.sleeps == 3  # 0.5 s steps


def test_poll_waiter_returns_at_once_when_already_true(k):
    w = Waiter(Node(k.root, k.io), k.clock)
    assert w.wait(GPU, lambda d: d == "nvidia", 5.0) == "nvidia" and k.clock.sleeps == 0


def test_run_lock_is_exclusive_and_bounded(k):
    path = os.path.join(k.root, LOCK_FILE)
    with run_lock(k.root, k.clock):
        assert os.path.exists(path)
        fd = os.open(path, os.O_RDWR)
        with pytest.raises(BlockingIOError):
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.close(fd)
        start = k.clock.now()
        with pytest.raises(ExtError) as e:
            with run_lock(k.root, k.clock, wait=3.0):
                pass
        assert "another installer-ext bind/unbind still runs after 3s" in e.value.lines[0]
        assert 3.0 <= k.clock.now() - start <= 3.0 + 1e-6
    with run_lock(k.root, k.clock, wait=0):
        pass
