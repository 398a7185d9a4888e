"""Step `api`: wait until the API server answers and serves Harvester's API.

On a Harvester node's first boot, rancherd starts RKE2, RKE2 writes its kubeconfigs, the
API server comes up, and Harvester's chart registers `harvesterhci.io` minutes later.
One probe covers all of it: pick the credentials (credentials.py: the admin kubeconfig,
or the kubelet's on a joined agent), load them, and GET /apis/harvesterhci.io/v1beta1
until it lists `settings` (discovery is open to every authenticated user, kubelets
included: the system:discovery ClusterRole is bound to system:authenticated).

Bounded exponential backoff with jitter, one progress line per attempt, and a deadline
after which the step fails. What waiting cannot fix fails at once: an invalid
kubeconfig (exit 2), a server the CA does not verify or that rejects our certificate,
401/403.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from installer_ext.errors import ExtError
from installer_ext.firstboot import credentials
from installer_ext.firstboot.objects import SETTINGS
from installer_ext.kube import kubeconfig
from installer_ext.kube.backoff import Backoff, Clock, Deadline
from installer_ext.kube.client import KubeClient
from installer_ext.kube.errors import ApiError, TransportError

log = logging.getLogger(__name__)


@dataclass
class ApiReady:
    client: KubeClient
    identity: str  # admin | kubelet
    kubeconfig: str
    attempts: int
    elapsed: float


def wait_for_api(
    pick: Callable[[], credentials.Choice],
    deadline: Deadline,
    backoff: Backoff,
    clock: Clock,
    make_client: Callable[[kubeconfig.KubeConfig], KubeClient],
    on_wait: Callable[[str], None] | None = None,
) -> ApiReady:
    client: KubeClient | None = None
    chosen: credentials.Choice | None = None
    delays = backoff.delays()
    attempt = 0
    while True:
        attempt += 1
        try:
            choice = pick()
            if choice.path is None:
                raise kubeconfig.KubeconfigMissing(choice.why)
            if client is None or chosen is None or chosen.path != choice.path:
                if client is not None:
                    client.close()
                client, chosen = make_client(kubeconfig.load(choice.path)), choice
            served = client.served_resources(SETTINGS.group, SETTINGS.version, retry=False)
            if served is not None and SETTINGS.plural in served:
                log.info("API server %s is ready (attempt %d, %.1fs), as %s (%s)", client.config.server, attempt,
                         deadline.elapsed(), chosen.identity, chosen.path)
                return ApiReady(client, chosen.identity, chosen.path, attempt, deadline.elapsed())
            why = f"API server up, {SETTINGS.group}/{SETTINGS.version} {SETTINGS.plural} not served yet (Harvester deploying)"
        except kubeconfig.KubeconfigMissing as exc:
            why = exc.lines[0].replace(": no such file", " not written yet (RKE2 starting)")
        except ApiError as exc:
            if exc.status in (401, 403):
                src = chosen.path if chosen else "?"
                raise ExtError(
                    f"API server {client.config.server if client else ''} refused the credentials in "
                    f"{src}: {exc.status} {exc.reason}"
                ) from None
            why = f"{exc.status} {exc.reason}: {exc.message}"
        except TransportError as exc:
            why = str(exc)
        remaining = deadline.remaining()
        if remaining <= 0:
            if client is not None:
                client.close()
            raise ExtError(f"API server not ready after {deadline.seconds:g}s ({attempt} attempts): {why}")
        delay = min(next(delays), remaining)
        log.info("waiting for the API server, attempt %d (%.0fs elapsed): %s; next try in %.1fs",
                 attempt, deadline.elapsed(), why, delay)
        if on_wait is not None:
            on_wait(why)
        clock.sleep(delay)
