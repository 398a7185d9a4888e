"""Errors that the command line turns into one line on stderr and an exit code."""

from __future__ import annotations

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_BAD_INPUT = 2
EXIT_REFUSED = 3


class ExtError(Exception):
    """An expected failure: its lines are printed as they are, without a traceback."""

    exit_code = EXIT_ERROR

    def __init__(self, *lines: str) -> None:
        super().__init__(lines[0] if lines else "")
        self.lines = [line for line in lines if line]


class BadInput(ExtError):
    """Config or plan file missing, unreadable or invalid (exit 2)."""

    exit_code = EXIT_BAD_INPUT


class Refused(ExtError):
    """The safety policy refuses the request (exit 3)."""

    exit_code = EXIT_REFUSED
