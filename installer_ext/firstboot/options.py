"""The first-boot options, apart from the runner so that building the command line
imports nothing heavy (no ssl, http.client or yaml)."""

from __future__ import annotations

from dataclasses import dataclass

# RKE2's agent writes the kubelet's kubeconfig here on every node (k3s-io/k3s
# pkg/agent/config/config.go get(): <data-dir>/agent/kubelet.kubeconfig; RKE2's data dir
# is /var/lib/rancher/rke2). See credentials.py.
DEFAULT_KUBELET_KUBECONFIG = "/var/lib/rancher/rke2/agent/kubelet.kubeconfig"


@dataclass
class Options:
    root: str
    plan: str
    kubeconfig: str
    state_dir: str
    kubelet_kubeconfig: str = DEFAULT_KUBELET_KUBECONFIG
    role: str | None = None  # server | agent; None: from rancherd's config
    node_name: str | None = None
    deadline: float = 900.0
    request_timeout: float = 15.0
    retries: int = 5
    claims_wait: float = 300.0
    addon_wait: float = 600.0
    cluster_wait: float = 900.0
    allocatable_wait: float = 300.0
    nvidia_smi: str = "nvidia-smi"
    nvidia_smi_timeout: float = 30.0
    poll_interval: float = 1.0
    poll_max: float = 15.0
    max_conflicts: int = 10
    max_attempts: int = 8
    retry: bool = False
    reconcile: bool = False  # run the cluster reconciler once for every pending node
