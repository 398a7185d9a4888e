"""Hold log records while urwid owns the terminal, and hand them to the real handlers
once the screen is restored: a log line written in the middle of the screen would be
stray output on the VGA console (and would stay there until the next full redraw)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

MAX_RECORDS = 2000


class _Held(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.NOTSET)
        self.records: list[logging.LogRecord] = []
        self.dropped = 0

    def emit(self, record: logging.LogRecord) -> None:
        if len(self.records) < MAX_RECORDS:
            self.records.append(record)
        else:
            self.dropped += 1


@contextmanager
def held_logs() -> Iterator[_Held]:
    """Replace the root logger's handlers by a buffer; replay into them afterwards."""
    root = logging.getLogger()
    saved = root.handlers[:]
    held = _Held()
    root.handlers = [held]
    logging.captureWarnings(True)
    try:
        yield held
    finally:
        logging.captureWarnings(False)
        root.handlers = saved
        # No handler configured: what logging itself would have done (WARNING and up to stderr).
        targets = saved if saved else [h for h in (logging.lastResort,) if h is not None]
        for record in held.records:
            for h in targets:
                if record.levelno >= h.level:
                    h.handle(record)
        if held.dropped:
            logging.getLogger(__name__).warning("%d log records dropped while the screen was up", held.dropped)
