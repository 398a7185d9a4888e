"""What a bind or unbind run is given: the command line's values and the injectable
parts (sysfs I/O, clock, modprobe, waiter, output) that tests replace."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from typing import TextIO

from installer_ext import paths
from installer_ext.boot import driver
from installer_ext.boot.node import Node
from installer_ext.boot.sysio import SysfsIO
from installer_ext.clock import Clock

DEFAULT_TIMEOUT = 10.0


@dataclass
class Options:
    root: str = "/"
    plan_path: str | None = None  # default ROOT/oem/installer-ext/plan.json
    timeout: float = DEFAULT_TIMEOUT  # per device, for the (un)bind to show
    address: str | None = None  # act on this device only (the udev rule)
    again: bool = False  # bind: take back what `unbind` gave back (remove the mark)
    io: SysfsIO = field(default_factory=SysfsIO)
    clock: Clock = field(default_factory=Clock)
    # None: `modprobe` through subprocess on root / only, never on a test tree.
    modprobe: driver.Modprobe | None = None
    waiter: driver.Waiter | None = None  # None: udev monitor on root /, polling elsewhere
    out: TextIO | None = None  # one human line per device (default stdout)

    @property
    def real_root(self) -> bool:
        return os.path.realpath(self.root) == "/"

    def plan_file(self) -> str:
        return self.plan_path or paths.under(self.root, paths.PLAN_FILE)

    def make_waiter(self, node: Node) -> driver.Waiter:
        if self.waiter is not None:
            return self.waiter
        return driver.UdevWaiter(node, self.clock) if self.real_root else driver.Waiter(node, self.clock)

    def make_modprobe(self) -> driver.Modprobe | None:
        return self.modprobe or (driver.run_modprobe if self.real_root else None)

    def say(self, line: str) -> None:
        (self.out or sys.stdout).write(line + "\n")
