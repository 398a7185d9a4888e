"""Which credentials first boot uses on this node: RKE2's admin kubeconfig or the kubelet's.

- A server node (the first node, `role: cluster-init` in rancherd's config; later the
  nodes Harvester promotes) has RKE2's admin kubeconfig /etc/rancher/rke2/rke2.yaml.
- A node that joined an existing cluster is an RKE2 agent (`role: agent`: harvester/
  harvester pkg/installer/config/templates/rancherd-config.yaml): it has no rke2.yaml,
  only the kubelet's kubeconfig, /var/lib/rancher/rke2/agent/kubelet.kubeconfig, written
  by the agent (k3s-io/k3s pkg/agent/config/config.go get(): `kubelet.kubeconfig` under
  the agent data dir, server = the local API server proxy, certificate-authority,
  client-certificate and client-key as file references, k3s
  pkg/daemons/control/deps/deps.go KubeConfig). Its identity is system:node:<name> in
  system:nodes, which the node authorizer and NodeRestriction limit to its own Node.

The admin kubeconfig wins whenever it exists. A node whose rancherd config says it is a
server waits for it (RKE2 writes it once the server is up) instead of settling for the
kubelet's credentials; any other node uses the kubelet's when the admin one is absent.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import yaml

log = logging.getLogger(__name__)

ADMIN, KUBELET = "admin", "kubelet"
SERVER, AGENT = "server", "agent"
RANCHERD_CONFIG = "etc/rancher/rancherd/config.yaml"  # under the node root


@dataclass(frozen=True)
class Choice:
    path: str | None  # the kubeconfig to use now; None: none is usable yet
    identity: str  # admin | kubelet
    why: str  # for the progress line when path is None


def node_role(root: str, override: str | None = None) -> str | None:
    """server | agent from rancherd's config (or --role); None when it cannot tell."""
    if override in (SERVER, AGENT):
        return override
    path = os.path.join(root, RANCHERD_CONFIG)
    try:
        with open(path, encoding="utf-8") as f:
            doc = yaml.safe_load(f.read(1 << 20))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    role = doc.get("role") if isinstance(doc, dict) else None
    if role in ("cluster-init", "server"):
        return SERVER
    if role == "agent":
        return AGENT
    return None


def choose(admin: str, kubelet: str, role: str | None) -> Choice:
    if os.path.exists(admin):
        return Choice(admin, ADMIN, "")
    if role == SERVER:
        return Choice(None, ADMIN, f"{admin} not written yet (RKE2 server starting)")
    if os.path.exists(kubelet):
        return Choice(kubelet, KUBELET, "")
    return Choice(None, KUBELET, f"neither {admin} nor {kubelet} written yet (RKE2 starting)")
