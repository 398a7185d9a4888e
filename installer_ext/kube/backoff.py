"""Bounded exponential backoff with jitter, and deadlines.

The clock and the sleep are injectable (`Clock`), so the arithmetic is unit-tested
without waiting, and the services' tests run with millisecond intervals.

Jitter: each delay is drawn uniformly from [d * (1 - jitter), d] where d doubles from
`initial` up to `cap`. Several nodes booting together (a rack after a power cut) then
spread their retries instead of hitting the API server in step.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from installer_ext.clock import Clock  # noqa: F401 - re-exported for the callers


@dataclass
class Backoff:
    initial: float = 1.0
    cap: float = 15.0
    factor: float = 2.0
    jitter: float = 0.5
    rng: random.Random = field(default_factory=random.Random)

    def __post_init__(self) -> None:
        if self.initial < 0 or self.cap < self.initial or self.factor < 1 or not 0 <= self.jitter <= 1:
            raise ValueError(f"bad backoff {self.initial}/{self.cap}/{self.factor}/{self.jitter}")

    def delays(self) -> Iterator[float]:
        """Endless delays; the caller bounds them with a deadline or a count."""
        d = self.initial
        while True:
            yield self.rng.uniform(d * (1 - self.jitter), d)
            d = min(self.cap, d * self.factor)


@dataclass
class Deadline:
    """A point in time `seconds` from creation on `clock`."""

    seconds: float
    clock: Clock = field(default_factory=Clock)
    start: float = -1.0

    def __post_init__(self) -> None:
        if self.start < 0:
            self.start = self.clock.now()

    def elapsed(self) -> float:
        return self.clock.now() - self.start

    def remaining(self) -> float:
        return max(0.0, self.seconds - self.elapsed())


def poll(
    check: Callable[[], tuple[bool, str]],
    deadline: Deadline,
    backoff: Backoff,
    clock: Clock,
    what: str,
    logger: logging.Logger,
) -> tuple[bool, str, int]:
    """Call `check` until it says done or the deadline passes, sleeping the backoff's
    delays in between and logging one progress line per attempt.
    Returns (done, last reason, attempts)."""
    delays = backoff.delays()
    attempt = 0
    while True:
        attempt += 1
        done, why = check()
        if done:
            return True, why, attempt
        remaining = deadline.remaining()
        if remaining <= 0:
            return False, why, attempt
        delay = min(next(delays), remaining)
        logger.info("%s, attempt %d (%.0fs elapsed): %s; next check in %.1fs", what, attempt, deadline.elapsed(), why, delay)
        clock.sleep(delay)
