"""The first-boot options, apart from the runner so that building the command line
imports nothing heavy (no ssl, http.client or yaml)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Options:
    root: str
    plan: str
    kubeconfig: str
    state_dir: str
    node_name: str | None = None
    deadline: float = 900.0
    request_timeout: float = 15.0
    retries: int = 5
    claims_wait: float = 300.0
    allocatable_wait: float = 300.0
    nvidia_smi: str = "nvidia-smi"
    nvidia_smi_timeout: float = 30.0
    poll_interval: float = 1.0
    poll_max: float = 15.0
    max_conflicts: int = 10
