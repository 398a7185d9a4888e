"""Step 1: wait until the API server answers and serves Harvester's API.

On a Harvester node's first boot, rancherd starts RKE2, RKE2 writes its kubeconfig, the
API server comes up, and Harvester's chart registers `harvesterhci.io` minutes later.
One probe covers all of it: load the kubeconfig (a missing file means RKE2 has not
written it yet) and GET /apis/harvesterhci.io/v1beta1 until it lists `settings`.

Bounded exponential backoff with jitter, one progress line per attempt, and a deadline
after which the run fails (exit 1) and the unit tries again later. What waiting cannot
fix fails at once: an invalid kubeconfig (exit 2), a server the CA does not verify or
that rejects our certificate, 401/403.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from installer_ext.errors import ExtError
from installer_ext.firstboot.objects import SETTINGS
from installer_ext.kube import kubeconfig
from installer_ext.kube.backoff import Backoff, Clock, Deadline
from installer_ext.kube.client import KubeClient
from installer_ext.kube.errors import ApiError, TransportError

log = logging.getLogger(__name__)


@dataclass
class ApiReady:
    client: KubeClient
    attempts: int
    elapsed: float


def wait_for_api(
    kubeconfig_path: str,
    deadline: Deadline,
    backoff: Backoff,
    clock: Clock,
    make_client: Callable[[kubeconfig.KubeConfig], KubeClient],
) -> ApiReady:
    client: KubeClient | None = None
    delays = backoff.delays()
    attempt = 0
    while True:
        attempt += 1
        try:
            if client is None:
                client = make_client(kubeconfig.load(kubeconfig_path))
            served = client.served_resources(SETTINGS.group, SETTINGS.version, retry=False)
            if served is not None and SETTINGS.plural in served:
                log.info("API server %s is ready (attempt %d, %.1fs)", client.config.server, attempt, deadline.elapsed())
                return ApiReady(client, attempt, deadline.elapsed())
            why = f"API server up, {SETTINGS.group}/{SETTINGS.version} {SETTINGS.plural} not served yet (Harvester deploying)"
        except kubeconfig.KubeconfigMissing:
            why = f"{kubeconfig_path} not written yet (RKE2 starting)"
        except ApiError as exc:
            if exc.status in (401, 403):
                raise ExtError(
                    f"API server {client.config.server if client else ''} refused the credentials in "
                    f"{kubeconfig_path}: {exc.status} {exc.reason}"
                ) from None
            why = f"{exc.status} {exc.reason}: {exc.message}"
        except TransportError as exc:
            why = str(exc)
        remaining = deadline.remaining()
        if remaining <= 0:
            raise ExtError(f"API server not ready after {deadline.seconds:g}s ({attempt} attempts): {why}")
        delay = min(next(delays), remaining)
        log.info("waiting for the API server, attempt %d (%.0fs elapsed): %s; next try in %.1fs",
                 attempt, deadline.elapsed(), why, delay)
        clock.sleep(delay)
