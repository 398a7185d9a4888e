"""Monotonic time and sleep, one place: the binder's waits and the first-boot backoff
take a Clock so that tests replace it and no test waits for real."""

from __future__ import annotations

import time


class Clock:
    def now(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)
