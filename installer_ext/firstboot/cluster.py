"""`installer-ext firstboot --reconcile`: one pass of the cluster reconciler.

Run by installer-ext-reconcile.timer on the server nodes (the unit's condition: RKE2's
admin kubeconfig exists). One LIST of the Nodes whose request is pending (one request
when nothing is), then each request is carried out (reconcile.py), each wait bounded, so
a pass always ends: requests that still wait are answered `waiting` and picked up by the
next pass. The pass writes STATE_DIR/reconcile.json for `installer-ext status`
({"state": done|failed, "message", "updated", "nodes": {node: {"state", "reason"}}}).
Several servers may run it at once: every action is idempotent.
"""

from __future__ import annotations

import contextlib
import logging
import os

from installer_ext import paths
from installer_ext.errors import ExtError
from installer_ext.firstboot import credentials, inputs
from installer_ext.firstboot.apiwait import wait_for_api
from installer_ext.firstboot.options import Options
from installer_ext.firstboot.reconcile import Reconciler, Waits
from installer_ext.firstboot.runner import backoff_for, make_client
from installer_ext.firstboot.state import DONE, FAILED, StateDir, now
from installer_ext.fsutil import exclusive_lock
from installer_ext.kube.backoff import Clock, Deadline
from installer_ext.kube.errors import KubeError

log = logging.getLogger(__name__)

RECONCILE_STATUS = paths.RECONCILE_STATUS
API_DEADLINE = 120.0  # a pass does not wait long for the API: the timer comes back


def reconcile_cluster(opts: Options, clock: Clock | None = None) -> dict[str, dict[str, str]]:
    clock = clock or Clock()
    state = StateDir(opts.state_dir)
    state.check()
    by = inputs.node_name(opts.root, opts.node_name)
    nodes: dict[str, dict[str, str]] = {}

    def write(st: str, message: str) -> None:
        state.write_doc(RECONCILE_STATUS, {"state": st, "message": message, "updated": now(), "by": by,
                                           "nodes": nodes})

    with _lock(state):
        ready = wait_for_api(lambda: credentials.choose(opts.kubeconfig, "", credentials.SERVER),
                             Deadline(min(opts.deadline, API_DEADLINE), clock), backoff_for(opts), clock,
                             lambda cfg: make_client(opts, cfg, clock, f"reconcile; by={by}"))
        client = ready.client
        try:
            rec = Reconciler(client, Waits(opts.addon_wait, opts.claims_wait, opts.claims_wait),
                             lambda: backoff_for(opts), clock, by=by, max_conflicts=opts.max_conflicts)
            try:
                results = rec.reconcile_pending()
            except KubeError as exc:
                write(FAILED, str(exc))
                raise
            for name, result in results.items():
                nodes[name] = {"state": result.state, "reason": result.reason}
            message = (f"{len(results)} pending request(s): "
                       + (", ".join(f"{n} {r.state}" for n, r in sorted(results.items())) or "none")
                       + f"; {client.requests} API requests")
            write(DONE, message)
            log.info("reconcile: %s", message)
        finally:
            client.close()
    return nodes


def _lock(state: StateDir) -> contextlib.AbstractContextManager[None]:
    return exclusive_lock(os.path.join(state.path, "reconcile.lock"), f"{state.path}: another reconcile run holds the lock")
