"""Run `installer-ext` as a user would: a subprocess, its exit code, stdout, stderr."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@dataclass
class Result:
    rc: int
    out: str
    err: str


def run(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> Result:
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    p = subprocess.run(
        [sys.executable, "-m", "installer_ext", *args],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=REPO,
        timeout=timeout,
    )
    return Result(p.returncode, p.stdout, p.stderr)
