"""HTTP(S) client for the Kubernetes API: one keep-alive connection, JSON in and out.

TLS material comes from the kubeconfig. `ssl` only loads a client certificate from
files, so the embedded PEM is written to 0600 files in a private 0700 temp directory,
loaded, and removed at once (the key lives on in the SSL context's memory only).

`request` retries transient failures (no answer, 429, 5xx) a bounded number of times
with backoff; everything else surfaces at once as `ApiError` (with the Status body's
reason) or `TLSError`. Callers decide what a 404 or a 409 means.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import shutil
import socket
import ssl
import tempfile
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from installer_ext import __version__
from installer_ext.errors import BadInput
from installer_ext.kube.backoff import Backoff, Clock
from installer_ext.kube.errors import ApiError, KubeError, TLSError, TransportError
from installer_ext.kube.kubeconfig import KubeConfig

log = logging.getLogger(__name__)

JSON = "application/json"
MERGE_PATCH = "application/merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"

# OpenSSL reasons that mean "the peer refused who we are": retrying cannot help.
_FATAL_TLS_REASONS = frozenset(
    {
        "TLSV1_ALERT_UNKNOWN_CA",
        "SSLV3_ALERT_BAD_CERTIFICATE",
        "SSLV3_ALERT_CERTIFICATE_UNKNOWN",
        "TLSV13_ALERT_CERTIFICATE_REQUIRED",
        "SSLV3_ALERT_UNSUPPORTED_CERTIFICATE",
        "TLSV1_ALERT_ACCESS_DENIED",
        "TLSV1_ALERT_DECRYPT_ERROR",
    }
)


@dataclass(frozen=True)
class Resource:
    """A REST resource: where its objects live and what they are called."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = False

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_path(self) -> str:
        return f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"

    def path(self, name: str | None = None, namespace: str | None = None) -> str:
        p = self.group_path
        if self.namespaced:
            if not namespace:
                raise ValueError(f"{self.plural} is namespaced: a namespace is needed")
            p += f"/namespaces/{quote(namespace, safe='')}"
        p += f"/{self.plural}"
        if name is not None:
            p += f"/{quote(name, safe='')}"
        return p

    def describe(self, name: str, namespace: str | None = None) -> str:
        full = f"{self.plural}.{self.group}" if self.group else self.plural
        return f"{full} {namespace}/{name}" if namespace else f"{full} {name}"


def make_ssl_context(cfg: KubeConfig) -> ssl.SSLContext:
    """An SSL context verifying the server with the kubeconfig's CA and presenting its
    client certificate. Unloadable material is bad input (exit 2)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_alpn_protocols(["http/1.1"])
    if cfg.insecure:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    elif cfg.ca_pem is not None:
        try:
            ctx.load_verify_locations(cadata=cfg.ca_pem.decode("ascii", "replace"))
        except (ssl.SSLError, ValueError) as exc:
            raise BadInput(f"{cfg.source}: certificate-authority: cannot be loaded: {exc}") from None
    else:
        ctx.load_default_certs()
    if cfg.client_cert_pem is not None and cfg.client_key_pem is not None:
        tmp = tempfile.mkdtemp(prefix="installer-ext-kube-")  # mode 0700
        try:
            cert_path = os.path.join(tmp, "client.crt")
            key_path = os.path.join(tmp, "client.key")
            for path, data in ((cert_path, cfg.client_cert_pem), (key_path, cfg.client_key_pem)):
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
            try:
                ctx.load_cert_chain(cert_path, key_path)
            except ssl.SSLError as exc:
                raise BadInput(
                    f"{cfg.source}: client certificate and key cannot be loaded: {exc.reason or exc}"
                ) from None
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return ctx


def _status_error(status: int, data: bytes, method: str, path: str) -> ApiError:
    reason = http.client.responses.get(status, "Error").replace(" ", "")
    message = data.decode("utf-8", "replace").strip().splitlines()[0][:300] if data.strip() else ""
    details: dict[str, Any] = {}
    try:
        body = json.loads(data)
    except ValueError:
        body = None
    if isinstance(body, dict) and body.get("kind") == "Status":
        reason = body.get("reason") or reason
        message = body.get("message") or message
        details = body.get("details") or {}
    return ApiError(status, reason, message, details, method, path)


class _HTTPSConnection(http.client.HTTPSConnection):
    """HTTPS with the kubeconfig's `tls-server-name` as SNI and verified name."""

    def __init__(self, host: str, port: int, timeout: float, context: ssl.SSLContext, server_name: str | None) -> None:
        super().__init__(host, port, timeout=timeout, context=context)
        self._server_name = server_name or host

    def connect(self) -> None:
        http.client.HTTPConnection.connect(self)
        self.sock = self._context.wrap_socket(self.sock, server_hostname=self._server_name)  # type: ignore[attr-defined]


class KubeClient:
    """Not thread-safe: one client per thread (first boot uses one)."""

    def __init__(
        self,
        config: KubeConfig,
        *,
        timeout: float = 10.0,
        attempts: int = 5,
        backoff: Backoff | None = None,
        clock: Clock | None = None,
        user_agent: str | None = None,
    ) -> None:
        self.config = config
        self.timeout = timeout
        self.attempts = max(1, attempts)
        self.backoff = backoff or Backoff(initial=0.2, cap=5.0)
        self.clock = clock or Clock()
        self.user_agent = user_agent or f"installer-ext/{__version__}"
        self._ctx = make_ssl_context(config) if config.scheme == "https" else None
        self._conn: http.client.HTTPConnection | None = None
        self.requests = 0  # HTTP requests sent (the figures count these)

    # -- transport -------------------------------------------------------------------
    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> KubeClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            cfg = self.config
            if self._ctx is not None:
                self._conn = _HTTPSConnection(cfg.host, cfg.port, self.timeout, self._ctx, cfg.tls_server_name)
            else:
                self._conn = http.client.HTTPConnection(cfg.host, cfg.port, timeout=self.timeout)
        return self._conn

    def _tls_error(self, exc: ssl.SSLError, fresh: bool) -> KubeError:
        src, server = self.config.source, self.config.server
        if isinstance(exc, ssl.SSLCertVerificationError):
            why = exc.verify_message or exc.reason or str(exc)
            return TLSError(f"TLS: the API server {server} is not verified by the CA in {src}: "
                            f"certificate verify failed: {why}")
        if exc.reason in _FATAL_TLS_REASONS:
            return TLSError(f"TLS: the API server {server} rejected the client certificate in {src}: {exc.reason}")
        hint = ""
        if fresh and isinstance(exc, ssl.SSLEOFError):
            # TLS 1.3 servers check the client certificate after the client's handshake
            # ends; a rejection may then look like a plain close.
            hint = f" (closed right after the handshake: is the client certificate in {src} accepted?)"
        return TransportError(f"{server}: TLS: {exc.reason or exc}{hint}")

    def _send(self, method: str, path: str, body: bytes | None, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        fresh = self._conn is None
        conn = self._connection()
        self.requests += 1
        try:
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            rheaders = {k.lower(): v for k, v in resp.getheaders()}
            if resp.will_close:
                self.close()
            return resp.status, rheaders, data
        except ssl.SSLError as exc:
            self.close()
            raise self._tls_error(exc, fresh) from None
        except ConnectionRefusedError:
            self.close()
            raise TransportError(f"{self.config.server}: connection refused") from None
        except (TimeoutError, socket.timeout):
            self.close()
            raise TransportError(f"{self.config.server}: no answer within {self.timeout:g}s") from None
        except (http.client.HTTPException, OSError) as exc:
            self.close()
            what = type(exc).__name__ if not str(exc) else f"{type(exc).__name__}: {exc}"
            raise TransportError(f"{self.config.server}: {what}") from None

    # -- requests --------------------------------------------------------------------
    def request(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, str] | None = None,
        obj: Any = None,
        content_type: str = JSON,
        retry: bool = True,
    ) -> Any:
        """Send one request (retrying transient failures when `retry`); the decoded JSON
        body (or text) of a 2xx answer. Raises ApiError / TLSError / TransportError."""
        url = path + ("?" + urlencode(query) if query else "")
        headers = {"Accept": JSON, "User-Agent": self.user_agent}
        if self.config.token:
            headers["Authorization"] = f"Bearer {self.config.token}"
        body = None
        if obj is not None:
            body = json.dumps(obj, separators=(",", ":"), sort_keys=True).encode()
            headers["Content-Type"] = content_type
        delays = self.backoff.delays()
        attempts = self.attempts if retry else 1
        for attempt in range(1, attempts + 1):
            retry_after: float | None = None
            try:
                status, rheaders, data = self._send(method, url, body, headers)
            except TransportError as exc:
                error: KubeError = exc
            else:
                if 200 <= status < 300:
                    if not data:
                        return {}
                    try:
                        return json.loads(data)
                    except ValueError:
                        return data.decode("utf-8", "replace")
                error = _status_error(status, data, method, path)
                if status == 429:
                    try:
                        retry_after = float(rheaders.get("retry-after", ""))
                    except ValueError:
                        retry_after = None
            if not error.transient or attempt == attempts:
                raise error
            delay = next(delays)
            if retry_after is not None:
                delay = min(max(delay, retry_after), self.backoff.cap)
            log.warning("%s %s: %s; retry %d/%d in %.1fs", method, path, error, attempt, attempts - 1, delay)
            self.clock.sleep(delay)
        raise AssertionError("unreachable")

    def get(self, res: Resource, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        """The object, or None when it does not exist."""
        try:
            return self.request("GET", res.path(name, namespace))
        except ApiError as exc:
            if exc.not_found:
                return None
            raise

    def list(self, res: Resource, namespace: str | None = None, label_selector: str | None = None) -> list[dict[str, Any]]:
        query = {"labelSelector": label_selector} if label_selector else None
        doc = self.request("GET", res.path(None, namespace), query=query)
        return list(doc.get("items") or [])

    def create(self, res: Resource, obj: dict[str, Any], namespace: str | None = None) -> dict[str, Any]:
        return self.request("POST", res.path(None, namespace), obj=obj)

    def replace(self, res: Resource, obj: dict[str, Any]) -> dict[str, Any]:
        meta = obj["metadata"]
        return self.request("PUT", res.path(meta["name"], meta.get("namespace")), obj=obj)

    def merge_patch(self, res: Resource, name: str, patch: dict[str, Any], namespace: str | None = None) -> dict[str, Any]:
        return self.request("PATCH", res.path(name, namespace), obj=patch, content_type=MERGE_PATCH)

    def apply(self, res: Resource, obj: dict[str, Any], field_manager: str, force: bool = True) -> dict[str, Any]:
        """Server-side apply (creates when absent). JSON is YAML, so the body is JSON."""
        meta = obj["metadata"]
        query = {"fieldManager": field_manager}
        if force:
            query["force"] = "true"
        return self.request(
            "PATCH", res.path(meta["name"], meta.get("namespace")), query=query, obj=obj, content_type=APPLY_PATCH
        )

    def served_resources(self, group: str, version: str, retry: bool = True) -> set[str] | None:
        """Plural names the API serves in group/version; None when it serves none."""
        path = f"/apis/{group}/{version}" if group else f"/api/{version}"
        try:
            doc = self.request("GET", path, retry=retry)
        except ApiError as exc:
            if exc.not_found:
                return None
            raise
        if not isinstance(doc, dict):
            return None
        return {r.get("name", "") for r in doc.get("resources") or [] if isinstance(r, dict)}
