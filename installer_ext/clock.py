"""Time, one place: the monotonic Clock (the binder's waits and the first-boot backoff
take one, so that tests replace it and no test waits for real) and the wall-clock stamp
every record carries."""

from __future__ import annotations

import datetime as _dt
import os
import time


def utc_now_iso() -> str:
    """UTC now, to the second; $SOURCE_DATE_EPOCH when set (reproducible renders, as in
    reproducible builds)."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "")
    t = _dt.datetime.fromtimestamp(int(epoch), _dt.timezone.utc) if epoch.isdigit() else _dt.datetime.now(_dt.timezone.utc)
    return t.isoformat(timespec="seconds")


class Clock:
    def now(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)
