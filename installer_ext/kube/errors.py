"""Errors of the Kubernetes client.

All are `ExtError`s (exit 1, one line, no traceback) except kubeconfig problems, which
are `BadInput` (exit 2) and raised by `installer_ext.kube.kubeconfig`.
"""

from __future__ import annotations

from typing import Any

from installer_ext.errors import ExtError

# HTTP statuses worth another try: the server may answer differently in a moment.
TRANSIENT_STATUS = frozenset({429, 500, 502, 503, 504})


class KubeError(ExtError):
    """Any failure talking to the API server."""

    transient = False


class TransportError(KubeError):
    """No HTTP answer: connection refused or reset, timeout, TLS EOF. Transient."""

    transient = True


class TLSError(KubeError):
    """The TLS peer is not who the kubeconfig says (wrong CA, rejected client
    certificate). Waiting does not fix it, so it is never retried."""


class ApiError(KubeError):
    """A non-2xx answer, with the fields of the `Status` body when there is one."""

    def __init__(self, status: int, reason: str, message: str, details: dict[str, Any] | None = None,
                 method: str = "", path: str = "") -> None:
        self.status = status
        self.reason = reason
        self.message = message
        self.details = details or {}
        self.method = method
        self.path = path
        where = f"{method} {path}: " if method else ""
        super().__init__(f"{where}{status} {reason}: {message}")

    @property
    def transient(self) -> bool:  # type: ignore[override]
        return self.status in TRANSIENT_STATUS

    @property
    def not_found(self) -> bool:
        return self.status == 404

    @property
    def already_exists(self) -> bool:
        return self.status == 409 and self.reason == "AlreadyExists"

    @property
    def conflict(self) -> bool:
        """409 on a stale resourceVersion (not AlreadyExists)."""
        return self.status == 409 and self.reason != "AlreadyExists"
