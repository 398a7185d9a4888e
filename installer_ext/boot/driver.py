"""Bind one device to vfio-pci by address, or give it back: driverctl's sequence of
sysfs writes, each checked, and a bounded wait for the `driver` link.

Bind: `driver_override` = vfio-pci, then (when another driver has it) the address to
`driver/unbind`, then the address to `bus/pci/drivers_probe`, then wait until `driver`
points to vfio-pci. The override is written *before* the unbind (driverctl's order is
unbind first): once it is set only vfio-pci can match the device, so a native module
that udev loads at that moment of the boot cannot grab the device between the unbind
and the probe. Writing the override alone neither unbinds nor probes.
"""

from __future__ import annotations

import logging
import re
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from installer_ext.boot.node import VFIO, Node
from installer_ext.clock import Clock

log = logging.getLogger(__name__)

# `modprobe`-like runner: argv -> (exit status, last line of its stderr).
Modprobe = Callable[[Sequence[str]], tuple[int, str]]

POLL_INTERVAL = 0.05
MODPROBE_TIMEOUT = 60.0
_MODALIAS_RE = re.compile(
    r"\Apci:v[0-9A-F]{8}d[0-9A-F]{8}sv[0-9A-F]{8}sd[0-9A-F]{8}bc[0-9A-F]{2}sc[0-9A-F]{2}i[0-9A-F]{2}\Z"
)


def run_modprobe(argv: Sequence[str]) -> tuple[int, str]:
    """Run modprobe with a fixed argv (no shell), bounded in time."""
    try:
        proc = subprocess.run(
            list(argv), stdin=subprocess.DEVNULL, capture_output=True, text=True,
            timeout=MODPROBE_TIMEOUT, check=False,
        )
    except FileNotFoundError:
        return 127, f"{argv[0]} not found"
    except subprocess.TimeoutExpired:
        return 124, f"timed out after {MODPROBE_TIMEOUT:g}s"
    lines = (proc.stderr or "").strip().splitlines()
    return proc.returncode, lines[-1] if lines else ""


class Waiter:
    """Waits, bounded, for a device's `driver` link to satisfy a test, by polling."""

    def __init__(self, node: Node, clock: Clock, interval: float = POLL_INTERVAL) -> None:
        self.node = node
        self.clock = clock
        self.interval = interval

    def start(self) -> None:
        """Called before the first probe write of a run."""

    def close(self) -> None:
        pass

    def _pause(self, remaining: float) -> None:
        self.clock.sleep(min(self.interval, remaining))

    def wait(self, address: str, want: Callable[[str | None], bool], timeout: float) -> str | None:
        """The driver once `want(driver)` holds, or the last one seen at the deadline."""
        deadline = self.clock.now() + timeout
        while True:
            drv = self.node.current_driver(address)
            if want(drv):
                return drv
            remaining = deadline - self.clock.now()
            if remaining <= 0:
                return drv
            self._pause(remaining)


class UdevWaiter(Waiter):
    """On a real system: sleeps on pyudev's monitor instead of a fixed interval, so a
    bind is seen as soon as the kernel announces it. The link is still re-checked after
    every event and at least every `interval`, so a missed or foreign event costs at
    most one interval. The source is `kernel`, not `udev`: when the binder runs from a
    udev rule's RUN, udev holds back further events of that device until the rule is
    done, and the wait would last its whole timeout."""

    def __init__(self, node: Node, clock: Clock, interval: float = 0.5,
                 monitor_factory: Callable[[], object] | None = None) -> None:
        super().__init__(node, clock, interval)
        self.monitor_factory = monitor_factory or _kernel_monitor
        self.monitor: object | None = None

    def start(self) -> None:
        if self.monitor is None:
            try:
                self.monitor = self.monitor_factory()
            except Exception as exc:  # noqa: BLE001 - no monitor: polling still works
                log.info("udev monitor unavailable (%s); polling sysfs", exc)
                self.monitor = None

    def close(self) -> None:
        self.monitor = None

    def _pause(self, remaining: float) -> None:
        if self.monitor is None:
            super()._pause(remaining)
            return
        try:
            self.monitor.poll(timeout=min(self.interval, remaining))  # type: ignore[attr-defined]
        except Exception as exc:  # noqa: BLE001
            log.info("udev monitor failed (%s); polling sysfs", exc)
            self.monitor = None


def _kernel_monitor() -> object:
    import pyudev

    monitor = pyudev.Monitor.from_netlink(pyudev.Context(), source="kernel")
    monitor.filter_by("pci")
    monitor.start()
    return monitor


def ensure_driver_loaded(node: Node, waiter: Waiter, modprobe: Modprobe | None, timeout: float) -> str | None:
    """Load vfio-pci when its driver directory is missing. A problem sentence or None."""
    if node.driver_loaded(VFIO):
        return None
    if modprobe is None:
        return f"{VFIO} is not loaded ({node.driver_dir(VFIO)} missing) and modprobe runs only on root /"
    argv = ("modprobe", VFIO)
    rc, err = modprobe(argv)
    deadline = waiter.clock.now() + timeout
    while not node.driver_loaded(VFIO):
        remaining = deadline - waiter.clock.now()
        if remaining <= 0:
            detail = f": {err}" if err else ""
            return f"`{' '.join(argv)}` exited {rc}{detail}; {VFIO} is not loaded"
        waiter.clock.sleep(min(waiter.interval, remaining))
    log.info("loaded %s (modprobe exit %d)", VFIO, rc)
    return None


@dataclass
class Outcome:
    ok: bool
    changed: bool  # something was written
    reason: str | None
    driver: str | None  # the driver afterwards


def _err(exc: OSError) -> str:
    return exc.strerror or str(exc)


def bind(node: Node, address: str, waiter: Waiter, timeout: float) -> Outcome:
    """Bind `address` (validated, identity checked) to vfio-pci."""
    io = node.io
    cur = node.driver(address)
    if cur == VFIO:
        return Outcome(True, False, None, VFIO)
    step = "driver_override"
    try:
        if node.override(address) != VFIO:
            io.write(node.dev(address, "driver_override"), VFIO)
        if cur is not None:
            step = f"{cur}/unbind"
            io.write(node.dev(address, "driver", "unbind"), address)
            after = node.driver(address)
            if after is not None:
                return Outcome(False, True, f"still bound to {after} after writing {cur}/unbind", after)
        step = "drivers_probe"
        io.write(node.drivers_probe, address)
    except OSError as exc:
        now = node.current_driver(address)
        left = "; left without a driver (`installer-ext unbind` gives it back)" if now is None else ""
        return Outcome(False, True, f"writing {step}: {_err(exc)}{left}", now)
    got = waiter.wait(address, lambda d: d == VFIO, timeout)
    if got == VFIO:
        return Outcome(True, True, None, VFIO)
    return Outcome(
        False, True,
        f"{VFIO} did not take it within {timeout:g}s (driver now: {got or 'none'})",
        got,
    )


def release(node: Node, address: str, previous: str | None, waiter: Waiter, timeout: float,
            modprobe: Modprobe | None) -> Outcome:
    """Give `address` back: unbind from vfio-pci, reprobe, clear driver_override.

    With a recorded previous driver, the override names that driver during the probe:
    a plain reprobe would let vfio-pci take the device again when its ids are in
    vfio-pci's id table (`vfio-pci.ids=` on the command line), and a VF with
    `sriov_drivers_autoprobe` 0 is probed only when an override is set. The override is
    cleared at the end in every case.
    """
    io = node.io
    cur = node.driver(address)
    if cur != VFIO and node.override(address) != VFIO:
        return Outcome(True, False, None, cur)
    step = "driver/unbind"
    try:
        try:
            if cur == VFIO:
                io.write(node.dev(address, "driver", "unbind"), address)
                after = node.driver(address)
                if after is not None:
                    return Outcome(False, True, f"still bound to {after} after unbind", after)
            if cur is not None and cur != VFIO:
                pass  # another driver already has it; only the override is ours to clear
            elif previous is not None:
                step = "driver_override"
                io.write(node.dev(address, "driver_override"), previous)
                if not node.driver_loaded(previous) and modprobe is not None:
                    alias = node.modalias(address)
                    if alias and _MODALIAS_RE.match(alias):
                        rc, err = modprobe(("modprobe", "-b", "-q", alias))
                        log.info("%s: modprobe for %s exited %d %s", address, previous, rc, err)
                if node.driver(address) is None:
                    step = "drivers_probe"
                    io.write(node.drivers_probe, address)
                if node.driver_loaded(previous):  # a module's probe may be asynchronous
                    waiter.wait(address, lambda d: d is not None, timeout)
            else:
                step = "driver_override"
                io.write(node.dev(address, "driver_override"), "\n")
                step = "drivers_probe"
                io.write(node.drivers_probe, address)
        finally:
            if node.override(address) is not None:
                step = "driver_override"
                io.write(node.dev(address, "driver_override"), "\n")
    except OSError as exc:
        return Outcome(False, True, f"writing {step}: {_err(exc)}", node.current_driver(address))
    now = node.current_driver(address)
    if now == VFIO:
        return Outcome(False, True, f"{VFIO} took it again", now)
    if previous is not None and now != previous:
        if now is None:
            return Outcome(False, True, f"{previous} did not take it back (is its module loaded?); left without a driver", None)
        return Outcome(True, True, f"now on {now}, {previous} was recorded", now)
    return Outcome(True, True, None, now)
