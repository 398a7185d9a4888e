"""Step 5b: apply the chosen device plugins with server-side apply.

Server-side apply (PATCH application/apply-patch+yaml, fieldManager installer-ext,
force) creates what is missing, takes back fields someone else changed, and is a no-op
when the object already says what the manifest says: eight nodes applying the same
DaemonSet write it once.
"""

from __future__ import annotations

import logging

from installer_ext.firstboot.manifests import manifests
from installer_ext.firstboot.objects import APPLIABLE, FIELD_MANAGER
from installer_ext.kube.client import KubeClient

log = logging.getLogger(__name__)


def apply_plugins(client: KubeClient, plugins: list[str]) -> list[str]:
    applied = []
    for plugin in plugins:
        for obj in manifests(plugin):
            res = APPLIABLE[(obj["apiVersion"], obj["kind"])]
            meta = obj["metadata"]
            out = client.apply(res, obj, FIELD_MANAGER, force=True)
            what = res.describe(meta["name"], meta.get("namespace"))
            rv = (out.get("metadata") or {}).get("resourceVersion") if isinstance(out, dict) else None
            log.info("applied %s (resourceVersion %s)", what, rv)
            applied.append(what)
    return applied
