"""`installer-ext firstboot`: the face of the first-boot service.

Exit codes: 0 done (or already done: the done marker exists); 1 not done (API never
came up, a step failed, the cluster did not answer: the unit restarts it a bounded
number of times, then the `gave-up` marker stops it); 2 bad input (kubeconfig, plan,
node name, state dir), one line naming the file and the reason. Progress goes to
stderr (the journal), one line per step and per wait attempt; `status.json` in the
state dir says where first boot is.

`--reconcile` runs the cluster side once instead (the reconcile timer on server nodes):
every node's pending request is carried out with the admin kubeconfig.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from collections.abc import Iterator

from installer_ext import paths
from installer_ext.commands import Command
from installer_ext.errors import EXIT_OK
from installer_ext.firstboot.options import Options

DEFAULTS = Options(root="/", plan="", kubeconfig=paths.DEFAULT_KUBECONFIG, state_dir="")


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds >= 0")
    return value


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be 1 or more")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    d = DEFAULTS
    a = parser.add_argument
    a("--root", default="/", help="node root holding sys/, the plan and the bind status (default /)")
    a("--kubeconfig", default=d.kubeconfig, metavar="FILE",
      help=f"RKE2's admin kubeconfig, used when present (default {d.kubeconfig})")
    a("--kubelet-kubeconfig", default=d.kubelet_kubeconfig, metavar="FILE",
      help=f"the kubelet's kubeconfig, used on a joined agent (default {d.kubelet_kubeconfig})")
    a("--role", choices=("server", "agent"),
      help="server: wait for the admin kubeconfig; agent: the kubelet's will do (default: from ROOT/etc/rancher/"
           "rancherd/config.yaml)")
    a("--state-dir", metavar="DIR", help=f"progress and done marker (default ROOT/{paths.FIRSTBOOT_STATE_DIR})")
    a("--plan", metavar="FILE", help=f"the plan JSON (default ROOT/{paths.PLAN_FILE})")
    a("--node-name", metavar="NAME", help="Kubernetes node name (default: ROOT/etc/hostname, else the hostname)")
    a("--deadline", type=_seconds, default=d.deadline, metavar="SECONDS",
      help=f"give up waiting for the API server and Harvester's API after this (default {d.deadline:g})")
    a("--request-timeout", type=_seconds, default=d.request_timeout, metavar="SECONDS",
      help=f"per API request (default {d.request_timeout:g})")
    a("--retries", type=_count, default=d.retries, metavar="N",
      help=f"tries per API request on 5xx/429/no answer (default {d.retries})")
    a("--max-conflicts", type=_count, default=d.max_conflicts, metavar="N",
      help=f"re-reads of a Setting on 409 before giving up (default {d.max_conflicts})")
    a("--claims-wait", type=_seconds, default=d.claims_wait, metavar="SECONDS",
      help=f"wait for the pcidevices controller's PCIDevice and SRIOVNetworkDevice objects (default {d.claims_wait:g})")
    a("--addon-wait", type=_seconds, default=d.addon_wait, metavar="SECONDS",
      help=f"wait for the pcidevices-controller Addon to exist and take our change (default {d.addon_wait:g})")
    a("--cluster-wait", type=_seconds, default=d.cluster_wait, metavar="SECONDS",
      help=f"wait for the cluster to carry out this node's request (default {d.cluster_wait:g})")
    a("--max-attempts", type=_count, default=d.max_attempts, metavar="N",
      help=f"failed runs before first boot gives up and the unit stops (default {d.max_attempts})")
    a("--retry", action="store_true", help="try again after first boot gave up (resets the attempts)")
    a("--reconcile", action="store_true",
      help="run the cluster reconciler once for every node's pending request (admin kubeconfig), then exit")
    a("--allocatable-wait", type=_seconds, default=d.allocatable_wait, metavar="SECONDS",
      help=f"wait for the node and its GPUs in allocatable (default {d.allocatable_wait:g})")
    a("--nvidia-smi", default=d.nvidia_smi, metavar="PATH", help=f"nvidia-smi to run (default {d.nvidia_smi})")
    a("--nvidia-smi-timeout", type=_seconds, default=d.nvidia_smi_timeout, metavar="SECONDS",
      help=f"kill a hung nvidia-smi after this (default {d.nvidia_smi_timeout:g})")
    a("--poll-interval", type=_seconds, default=d.poll_interval, metavar="SECONDS",
      help=f"first delay of every wait; doubles with jitter up to --poll-max (default {d.poll_interval:g})")
    a("--poll-max", type=_seconds, default=d.poll_max, metavar="SECONDS",
      help=f"longest delay between tries (default {d.poll_max:g})")
    a("--quiet", action="store_true", help="no progress lines, only warnings and errors")


def options(args: argparse.Namespace) -> Options:
    root = args.root
    return Options(
        root=root,
        plan=args.plan or paths.under(root, paths.PLAN_FILE),
        kubeconfig=args.kubeconfig,
        state_dir=args.state_dir or paths.under(root, paths.FIRSTBOOT_STATE_DIR),
        kubelet_kubeconfig=args.kubelet_kubeconfig,
        role=args.role,
        node_name=args.node_name,
        deadline=args.deadline,
        request_timeout=args.request_timeout,
        retries=args.retries,
        claims_wait=args.claims_wait,
        addon_wait=args.addon_wait,
        cluster_wait=args.cluster_wait,
        max_attempts=args.max_attempts,
        retry=args.retry,
        reconcile=args.reconcile,
        allocatable_wait=args.allocatable_wait,
        nvidia_smi=args.nvidia_smi,
        nvidia_smi_timeout=args.nvidia_smi_timeout,
        poll_interval=args.poll_interval,
        poll_max=args.poll_max,
        max_conflicts=args.max_conflicts,
    )


@contextlib.contextmanager
def progress(quiet: bool) -> Iterator[None]:
    """Progress lines on stderr (the journal) while the service runs. The CLI logs only
    warnings by default; a first-boot service that says nothing while it waits is
    undiagnosable, so its own loggers get an INFO handler for the run."""
    logger = logging.getLogger("installer_ext")
    if quiet:
        yield
        return
    level = logging.DEBUG if logging.getLogger().isEnabledFor(logging.DEBUG) else logging.INFO
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("firstboot: %(message)s"))
    handler.setLevel(level)
    saved = (logger.level, logger.propagate)
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(saved[0])
        logger.propagate = saved[1]


def run(args: argparse.Namespace) -> int:
    opts = options(args)
    with progress(getattr(args, "quiet", False)):
        if opts.reconcile:
            from installer_ext.firstboot.cluster import reconcile_cluster  # ssl, http.client, yaml

            reconcile_cluster(opts)
        else:
            from installer_ext.firstboot.runner import Firstboot

            Firstboot(opts).run()
    return EXIT_OK


COMMANDS = (
    Command("firstboot", "first boot: Harvester settings, addon, device claims, GPU device plugin", add_arguments, run),
)
