"""A fake Kubernetes API server on 127.0.0.1 with TLS, for the first-boot tests.

It behaves like kube-apiserver where first boot (and kubectl get / apply --server-side /
label) depend on it:

- client-certificate (verified against the CA) or bearer-token authentication, 401
  otherwise;
- discovery: /api, /apis, /api/v1, /apis/<group>, /apis/<group>/<version>, /version,
  /readyz; a group can be "not served yet" (CRDs not installed) and is then absent from
  discovery and 404s;
- GET (object and list with labelSelector), POST (201; 409 AlreadyExists), PUT
  (resourceVersion required; 409 Conflict when stale), PATCH merge-patch+json and
  strategic-merge-patch+json (applied as a JSON merge patch: the same for the maps
  first boot patches, labels), PATCH apply-patch+yaml (server-side apply: creates when
  absent, field ownership per manager, conflicts unless force, no-op applies change
  nothing), DELETE;
- metadata: uid, creationTimestamp, resourceVersion (one global counter), generation
  (bumped when anything outside metadata and status changes), managedFields; writes that
  change nothing do not bump the resourceVersion;
- errors are Status bodies (kind Status, status Failure, reason, code, details);
- namespaced writes need the namespace to exist; ownerReferences need a uid;
- DELETE of an object with finalizers only sets `deletionTimestamp`; it goes once the
  finalizers are gone (k8s.io/apiserver pkg/registry/generic/registry/store.go Delete /
  updateForGracefulDeletionAndFinalizers), which is how wrangler's OnRemove handlers
  (the pcidevices controller's claim OnRemove) run before a claim disappears;
- identities from the client certificate (CN = user, O = groups, as kube-apiserver's
  x509 authenticator reads them) or the bearer token (system:masters). Everyone
  authenticated may read discovery. A kubelet identity (`system:node:<name>` in
  `system:nodes`) gets what the node authorizer and the NodeRestriction admission
  plugin give it and nothing more: get its own Node only, patch/update its own Node
  only, no labels in the kubernetes.io / k8s.io namespaces outside the kubelet's own,
  no taint changes, read RuntimeClasses; every other request is 403 with
  kube-apiserver's message (authorizer.go / admission.go / responsewriters errors.go,
  cited where they are reproduced);
- the webhooks first boot meets (when `webhooks` is on):
  - pcidevices (harvester/pcidevices pkg/webhook/pcideviceclaim.go Create, registered
    as "pcidevices.harvesterhci.io" with failurePolicy Ignore in pkg/webhook/server.go):
    a PCIDeviceClaim needs the PCIDevice of the same name, with an IOMMU group; the
    webhook's plain errors come back as 500 InternalError (harvester pkg/webhook/types/
    admission.go admit); while no controller pod serves the webhook
    (`pcidevices_webhook_up` False) claims are admitted unchecked (Ignore);
  - Harvester's addon validator ("validator.harvesterhci.io", harvester/harvester
    pkg/webhook/resources/addon/validator.go validateUpdatedAddon): no update while the
    Addon's InProgress condition is True (400), the chart cannot change (400);
    Create refuses a second Addon of the same chart (409).

Tests steer it: `put`/`mutate` change objects as another client would (a concurrent
writer), `rules` inject faults (status codes, delays, dropped connections, callbacks
before or after the write), `refuse_connections` drops the next N TLS connections,
`observers` see every request (the fake kubelet and pcidevices controller in
`tests/kube/sim.py` use them), and `log` records every request for counting.
"""

from __future__ import annotations

import copy
import datetime as _dt
import http.server
import json
import re
import socket
import ssl
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

from tests.kube.certs import Pki

NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


@dataclass(frozen=True)
class ResType:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool
    short: tuple[str, ...] = ()

    @property
    def gv(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural


DEFAULT_TYPES = (
    ResType("", "v1", "namespaces", "Namespace", False, ("ns",)),
    ResType("", "v1", "nodes", "Node", False, ("no",)),
    ResType("", "v1", "configmaps", "ConfigMap", True, ("cm",)),
    ResType("apps", "v1", "daemonsets", "DaemonSet", True, ("ds",)),
    ResType("node.k8s.io", "v1", "runtimeclasses", "RuntimeClass", False),
    ResType("harvesterhci.io", "v1beta1", "settings", "Setting", False),
    ResType("harvesterhci.io", "v1beta1", "addons", "Addon", True),
    ResType("devices.harvesterhci.io", "v1beta1", "pcidevices", "PCIDevice", False),
    ResType("devices.harvesterhci.io", "v1beta1", "pcideviceclaims", "PCIDeviceClaim", False),
    ResType("devices.harvesterhci.io", "v1beta1", "sriovnetworkdevices", "SRIOVNetworkDevice", False),
)

ADMIN_GROUP = "system:masters"
NODES_GROUP = "system:nodes"
NODE_USER_PREFIX = "system:node:"
PCIDEVICES_WEBHOOK = "pcidevices.harvesterhci.io"
HARVESTER_WEBHOOK = "validator.harvesterhci.io"


@dataclass(frozen=True)
class User:
    name: str
    groups: tuple[str, ...] = ()

    @property
    def node(self) -> str | None:
        """The node name of a kubelet identity (kubernetes pkg/auth/nodeidentifier
        default.go NodeIdentity: user `system:node:<name>` in group `system:nodes`)."""
        if NODES_GROUP in self.groups and self.name.startswith(NODE_USER_PREFIX):
            return self.name[len(NODE_USER_PREFIX):] or None
        return None


class ApiFailure(Exception):
    """Raised inside the fake to answer with a Status error."""

    def __init__(self, code: int, reason: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details or {}


def status_body(code: int, reason: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if details is not None:
        body["details"] = details
    return body


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    content_type: str
    agent: str
    body: bytes
    status: int = 0
    user: str = ""


@dataclass
class Rule:
    """A fault: for requests matching `method` (or any) and `path` (regex search), `times`
    times (None: always): answer `status` instead, or sleep `delay` first, or `drop` the
    connection, or call `before(req)` / `after(req)` around the real processing (after
    runs once the write is stored, before the reply is sent)."""

    path: str = ""
    method: str | None = None
    times: int | None = 1
    status: int | None = None
    reason: str = "InternalError"
    message: str = "injected failure"
    delay: float = 0.0
    drop: bool = False
    before: Callable[[Request], None] | None = None
    after: Callable[[Request], None] | None = None
    hits: int = 0

    def matches(self, req: Request) -> bool:
        if self.times is not None and self.hits >= self.times:
            return False
        if self.method and self.method != req.method:
            return False
        return re.search(self.path, req.path) is not None


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


def _leaves(obj: Any, prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], Any]:
    """Field paths of an applied configuration: maps recurse, lists and scalars are
    leaves (atomic, a simplification of SSA's keyed lists)."""
    out: dict[tuple[str, ...], Any] = {}
    if isinstance(obj, dict) and obj:
        for k, v in obj.items():
            out.update(_leaves(v, prefix + (k,)))
    else:
        out[prefix] = obj
    return out


def _lookup(obj: Any, path: tuple[str, ...]) -> tuple[bool, Any]:
    for k in path:
        if not isinstance(obj, dict) or k not in obj:
            return False, None
        obj = obj[k]
    return True, obj


def _delete_path(obj: dict[str, Any], path: tuple[str, ...]) -> None:
    parents = []
    cur: Any = obj
    for k in path[:-1]:
        if not isinstance(cur, dict) or k not in cur:
            return
        parents.append((cur, k))
        cur = cur[k]
    if isinstance(cur, dict):
        cur.pop(path[-1], None)
    for parent, k in reversed(parents):  # drop maps left empty
        if parent[k] == {}:
            del parent[k]


def _fields_v1(paths: set[tuple[str, ...]]) -> dict[str, Any]:
    root: dict[str, Any] = {}
    for p in sorted(paths):
        cur = root
        for k in p:
            cur = cur.setdefault(f"f:{k}", {})
    return root


_IGNORED_APPLY_PATHS = {("apiVersion",), ("kind",), ("metadata", "name"), ("metadata", "namespace")}


def _content(obj: dict[str, Any]) -> dict[str, Any]:
    """What a write compares to decide it changed something."""
    c = copy.deepcopy(obj)
    meta = c.get("metadata", {})
    for k in ("resourceVersion", "managedFields", "generation", "creationTimestamp", "uid"):
        meta.pop(k, None)
    return c


def _spec_part(obj: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server
    timeout = 30

    def log_message(self, fmt: str, *args: Any) -> None:  # quiet
        pass

    def _send(self, code: int, body: Any, content_type: str = "application/json") -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-cache, private")
        self.end_headers()
        self.wfile.write(data)

    def _handle(self) -> None:
        api: FakeApiServer = self.server.api
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        req = Request(
            method=self.command,
            path=unquote(parts.path),
            query={k: v[-1] for k, v in parse_qs(parts.query).items()},
            content_type=(self.headers.get("Content-Type") or "").split(";")[0].strip(),
            agent=self.headers.get("User-Agent") or "",
            body=body,
        )
        after: list[Callable[[Request], None]] = []
        try:
            for rule in api.take_rules(req):
                if rule.delay:
                    time.sleep(rule.delay)
                if rule.before:
                    rule.before(req)
                if rule.after:
                    after.append(rule.after)
                if rule.drop:
                    req.status = -1
                    api.record(req)
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if rule.status:
                    raise ApiFailure(rule.status, rule.reason, rule.message)
            user = api.identify(self.connection, self.headers.get("Authorization"))
            if user is None:
                raise ApiFailure(401, "Unauthorized", "Unauthorized")
            req.user = user.name
            code, out, ctype = api.dispatch(req, user)
        except ApiFailure as exc:
            code, out, ctype = exc.code, status_body(exc.code, exc.reason, exc.message, exc.details), "application/json"
        req.status = code
        api.record(req)
        for fn in after:
            fn(req)
        api.notify(req)
        self._send(code, out, ctype)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle  # noqa: N815


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    api: FakeApiServer

    def finish_request(self, request: Any, client_address: Any) -> None:
        api = self.api
        if api.take_refusal():
            request.close()
            return
        # As kube-apiserver (Go) does: no Nagle delay between a reply's header and body.
        request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            tls = api.ssl_context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as exc:
            api.tls_failures.append(str(exc))
            return
        try:
            self.RequestHandlerClass(tls, client_address, self)
        finally:
            try:
                tls.close()
            except OSError:
                pass

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that hangs up or is killed is not a test failure


class FakeApiServer:
    def __init__(self, pki: Pki, types: tuple[ResType, ...] = DEFAULT_TYPES, token: str | None = None,
                 namespaces: tuple[str, ...] = ("default", "kube-system", "harvester-system")) -> None:
        self.pki = pki
        self.token = token
        self.types = {(t.group, t.version, t.plural): t for t in types}
        self.unserved: set[str] = set()
        self.lock = threading.RLock()
        self.objects: dict[tuple[str, str, str, str], dict[str, Any]] = {}
        self.owners: dict[tuple[str, str, str, str], dict[str, tuple[str, set[tuple[str, ...]]]]] = {}
        self.writes: dict[tuple[str, str, str, str], int] = {}
        self.rv = 1000
        self.log: list[Request] = []
        self.rules: list[Rule] = []
        self.observers: list[Callable[[FakeApiServer, Request], None]] = []
        self.webhooks = True
        self.pcidevices_webhook_up = True
        self.tls_failures: list[str] = []
        self._refuse = 0
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(pki.server_cert, pki.server_key)
        ctx.load_verify_locations(pki.ca_cert)
        ctx.verify_mode = ssl.CERT_OPTIONAL
        self.ssl_context = ctx
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None
        for ns in namespaces:
            self.put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})

    # -- lifecycle ---------------------------------------------------------------------
    def start(self, port: int = 0) -> FakeApiServer:
        self._httpd = _Server(("127.0.0.1", port), _Handler)
        self._httpd.api = self
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    @property
    def port(self) -> int:
        assert self._httpd is not None
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def __enter__(self) -> FakeApiServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def kubeconfig(self, path: str, *, ca_pem: bytes | None = None, cert_pem: bytes | None = None,
                   key_pem: bytes | None = None, token: str | None = None, server: str | None = None) -> str:
        """Write a kubeconfig shaped like RKE2's rke2.yaml (embedded base64 PEM)."""
        import base64

        def b64(b: bytes) -> str:
            return base64.b64encode(b).decode()

        user: dict[str, Any] = {}
        if token is not None:
            user["token"] = token
        else:
            user["client-certificate-data"] = b64(cert_pem or Pki.read(self.pki.client_cert))
            user["client-key-data"] = b64(key_pem or Pki.read(self.pki.client_key))
        doc = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "default", "cluster": {
                "certificate-authority-data": b64(ca_pem or Pki.read(self.pki.ca_cert)),
                "server": server or self.url,
            }}],
            "contexts": [{"name": "default", "context": {"cluster": "default", "user": "default"}}],
            "current-context": "default",
            "preferences": {},
            "users": [{"name": "default", "user": user}],
        }
        with open(path, "w") as f:
            yaml.safe_dump(doc, f, sort_keys=False)
        return path

    # -- test controls -------------------------------------------------------------------
    def refuse_connections(self, n: int) -> None:
        with self.lock:
            self._refuse = n

    def take_refusal(self) -> bool:
        with self.lock:
            if self._refuse > 0:
                self._refuse -= 1
                self.tls_failures.append("refused")
                return True
            return False

    def add_rule(self, rule: Rule) -> Rule:
        with self.lock:
            self.rules.append(rule)
        return rule

    def take_rules(self, req: Request) -> list[Rule]:
        with self.lock:
            hit = [r for r in self.rules if r.matches(req)]
            for r in hit:
                r.hits += 1
            return hit

    def record(self, req: Request) -> None:
        with self.lock:
            self.log.append(req)

    def notify(self, req: Request) -> None:
        for fn in list(self.observers):
            fn(self, req)

    def requests(self, method: str | None = None, path: str = "", agent: str = "") -> list[Request]:
        with self.lock:
            return [r for r in self.log if (method is None or r.method == method) and re.search(path, r.path)
                    and agent in r.agent]

    def identify(self, conn: ssl.SSLSocket, authorization: str | None) -> User | None:
        """The user of a request: the verified client certificate's CN and O (as
        kube-apiserver's x509 request authenticator maps them), or the bearer token."""
        cert = conn.getpeercert()
        if cert:
            cn, groups = "", []
            for rdn in cert.get("subject", ()):
                for key, value in rdn:
                    if key == "commonName":
                        cn = value
                    elif key == "organizationName":
                        groups.append(value)
            return User(cn, tuple(groups))
        if self.token and authorization == f"Bearer {self.token}":
            return User("token-admin", (ADMIN_GROUP,))
        return None

    def requests_by(self, user: str) -> list[Request]:
        with self.lock:
            return [r for r in self.log if r.user == user]

    def rtype(self, plural_or_qualified: str) -> ResType:
        for t in self.types.values():
            if plural_or_qualified in (t.plural, t.qualified):
                return t
        raise KeyError(plural_or_qualified)

    def get(self, plural: str, name: str, namespace: str = "") -> dict[str, Any] | None:
        t = self.rtype(plural)
        with self.lock:
            obj = self.objects.get((t.group, t.plural, namespace, name))
            return copy.deepcopy(obj) if obj is not None else None

    def list(self, plural: str) -> list[dict[str, Any]]:
        t = self.rtype(plural)
        with self.lock:
            return [copy.deepcopy(o) for (g, p, _, _), o in sorted(self.objects.items()) if (g, p) == (t.group, t.plural)]

    def write_count(self, plural: str, name: str, namespace: str = "") -> int:
        t = self.rtype(plural)
        with self.lock:
            return self.writes.get((t.group, t.plural, namespace, name), 0)

    def put(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Create or overwrite an object directly (as a controller or kubelet would)."""
        group, _, version = obj["apiVersion"].rpartition("/")
        t = next(t for t in self.types.values() if (t.group, t.version, t.kind) == (group, version, obj["kind"]))
        meta = obj["metadata"]
        key = (t.group, t.plural, meta.get("namespace", "") if t.namespaced else "", meta["name"])
        with self.lock:
            old = self.objects.get(key)
            new = copy.deepcopy(obj)
            self._stamp(new, old, "test")
            self.objects[key] = new
            self.writes[key] = self.writes.get(key, 0) + 1
            return copy.deepcopy(new)

    def mutate(self, plural: str, name: str, fn: Callable[[dict[str, Any]], None], namespace: str = "") -> dict[str, Any]:
        """A concurrent writer: change the stored object in place, bumping its version."""
        t = self.rtype(plural)
        key = (t.group, t.plural, namespace, name)
        with self.lock:
            obj = copy.deepcopy(self.objects[key])
            fn(obj)
            self._stamp(obj, self.objects[key], "other-writer")
            self.objects[key] = obj
            self.writes[key] = self.writes.get(key, 0) + 1
            self._finalize(t, key, obj)
            return copy.deepcopy(obj)

    def delete(self, plural: str, name: str, namespace: str = "") -> None:
        """Delete as a client would (finalizers honoured)."""
        t = self.rtype(plural)
        with self.lock:
            self._delete(t, (t.group, t.plural, namespace, name))

    # -- dispatch ------------------------------------------------------------------------
    def dispatch(self, req: Request, user: User | None = None) -> tuple[int, Any, str]:
        user = user or User("system:admin", (ADMIN_GROUP,))
        segs = [s for s in req.path.split("/") if s]
        if req.path in ("/readyz", "/livez", "/healthz"):
            return 200, b"ok", "text/plain"
        if req.path == "/version":
            return 200, {"major": "1", "minor": "32", "gitVersion": "v1.32.4+rke2r1", "platform": "linux/amd64"}, "application/json"
        if req.method == "GET" and segs[:2] == ["openapi", "v3"]:
            return 200, self._openapi_v3(segs[2:]), "application/json"
        if not segs or segs[0] not in ("api", "apis"):
            raise ApiFailure(404, "NotFound", "the server could not find the requested resource")
        if req.method == "GET":
            disc = self._discovery(segs)
            if disc is not None:
                return 200, disc, "application/json"
        if segs[0] == "api":
            group, rest = "", segs[1:]
        else:
            group, rest = (segs[1] if len(segs) > 1 else ""), segs[2:]
        if not rest or group in self.unserved:
            raise ApiFailure(404, "NotFound", "the server could not find the requested resource")
        version, rest = rest[0], rest[1:]
        namespace = ""
        if len(rest) >= 3 and rest[0] == "namespaces" and (group, version, rest[2]) in self.types \
                and self.types[(group, version, rest[2])].namespaced:
            namespace, rest = rest[1], rest[2:]
        t = self.types.get((group, version, rest[0])) if rest else None
        if t is None or len(rest) > 2 or (t.namespaced and not namespace and len(rest) == 2):
            raise ApiFailure(404, "NotFound", "the server could not find the requested resource")
        name = rest[1] if len(rest) == 2 else None
        self._authorize(user, req, t, namespace, name)
        with self.lock:
            return self._operate(req, t, namespace, name, user)

    def _operate(self, req: Request, t: ResType, ns: str, name: str | None, user: User) -> tuple[int, Any, str]:
        j = "application/json"
        if name is None:
            if req.method == "GET":
                return 200, self._list(t, ns, req.query.get("labelSelector", "")), j
            if req.method == "POST":
                return 201, self._create(t, ns, self._body(req), req), j
            raise ApiFailure(405, "MethodNotAllowed", f"{req.method} is not supported on a collection")
        key = (t.group, t.plural, ns, name)
        if req.method == "GET":
            return 200, copy.deepcopy(self._must(t, key)), j
        if req.method == "PUT":
            return 200, self._update(t, key, self._body(req), req, user), j
        if req.method == "DELETE":
            return self._delete(t, key)
        if req.method == "PATCH":
            if req.content_type in ("application/merge-patch+json", "application/strategic-merge-patch+json"):
                return 200, self._patch(t, key, self._body(req), req, user), j
            if req.content_type == "application/apply-patch+yaml":
                return self._apply(t, key, req, user)
            raise ApiFailure(415, "UnsupportedMediaType", "the body of the request was in an unknown format - "
                             "accepted media types include: application/merge-patch+json, "
                             "application/strategic-merge-patch+json, application/apply-patch+yaml")
        raise ApiFailure(405, "MethodNotAllowed", f"{req.method} is not supported")

    # -- discovery -----------------------------------------------------------------------
    def _served(self) -> list[ResType]:
        return [t for t in self.types.values() if t.group not in self.unserved]

    def _discovery(self, segs: list[str]) -> dict[str, Any] | None:
        served = self._served()
        if segs == ["api"]:
            return {"kind": "APIVersions", "versions": ["v1"],
                    "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1:6443"}]}
        groups: dict[str, list[str]] = {}
        for t in served:
            if t.group:
                vs = groups.setdefault(t.group, [])
                if t.version not in vs:
                    vs.append(t.version)

        def group_doc(g: str) -> dict[str, Any]:
            vs = [{"groupVersion": f"{g}/{v}", "version": v} for v in groups[g]]
            return {"name": g, "versions": vs, "preferredVersion": vs[0]}

        if segs == ["apis"]:
            return {"kind": "APIGroupList", "apiVersion": "v1", "groups": [group_doc(g) for g in sorted(groups)]}
        if len(segs) == 2 and segs[0] == "apis" and segs[1] in groups:
            return {"kind": "APIGroup", "apiVersion": "v1", **group_doc(segs[1])}
        if segs[0] == "api" and len(segs) == 2:
            group, version = "", segs[1]
        elif segs[0] == "apis" and len(segs) == 3:
            group, version = segs[1], segs[2]
        else:
            return None
        res = [t for t in served if (t.group, t.version) == (group, version)]
        if not res:
            raise ApiFailure(404, "NotFound", "the server could not find the requested resource")
        verbs = ["create", "delete", "get", "list", "patch", "update", "watch"]
        return {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": res[0].gv,
            "resources": [
                {"name": t.plural, "singularName": t.kind.lower(), "namespaced": t.namespaced, "kind": t.kind,
                 "verbs": verbs, **({"shortNames": list(t.short)} if t.short else {})}
                for t in res
            ],
        }

    def _openapi_v3(self, gv_segs: list[str]) -> dict[str, Any]:
        """Just enough OpenAPI v3 for kubectl: each PATCH declares `fieldValidation`, so
        kubectl validates on the server (which ignores the parameter) instead of
        downloading schemas."""
        served = self._served()
        gvs = sorted({("api/" if not t.group else "apis/") + t.gv for t in served})
        if not gv_segs:
            return {"paths": {gv: {"serverRelativeURL": f"/openapi/v3/{gv}?hash=fake{self.rv}"} for gv in gvs}}
        gv = "/".join(gv_segs)
        if gv not in gvs:
            raise ApiFailure(404, "NotFound", "the server could not find the requested resource")
        paths = {}
        for t in served:
            if ("api/" if not t.group else "apis/") + t.gv != gv:
                continue
            ns = "namespaces/{namespace}/" if t.namespaced else ""
            paths[f"/{gv}/{ns}{t.plural}/{{name}}"] = {"patch": {
                "x-kubernetes-group-version-kind": {"group": t.group, "version": t.version, "kind": t.kind},
                "parameters": [{"name": "fieldValidation", "in": "query", "schema": {"type": "string"}},
                               {"name": "fieldManager", "in": "query", "schema": {"type": "string"}}],
                "responses": {"200": {"description": "OK"}},
            }}
        return {"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": "v1.32.4"}, "paths": paths,
                "components": {"schemas": {}}}

    # -- operations (under self.lock) -------------------------------------------------------
    @staticmethod
    def _body(req: Request) -> dict[str, Any]:
        try:
            body = json.loads(req.body or b"null")
        except ValueError as exc:
            raise ApiFailure(400, "BadRequest", f"couldn't get version/kind; json parse error: {exc}") from None
        if not isinstance(body, dict):
            raise ApiFailure(400, "BadRequest", "the body of the request is not an object")
        return body

    def _not_found(self, t: ResType, name: str) -> ApiFailure:
        return ApiFailure(404, "NotFound", f'{t.qualified} "{name}" not found',
                          {"name": name, "group": t.group, "kind": t.plural})

    def _must(self, t: ResType, key: tuple[str, str, str, str]) -> dict[str, Any]:
        obj = self.objects.get(key)
        if obj is None:
            raise self._not_found(t, key[3])
        return obj

    def _list(self, t: ResType, ns: str, selector: str) -> dict[str, Any]:
        items = []
        for (g, p, n, _), obj in sorted(self.objects.items()):
            if (g, p) == (t.group, t.plural) and (not ns or n == ns) and _selects(selector, obj):
                items.append(copy.deepcopy(obj))
        return {"apiVersion": t.gv, "kind": f"{t.kind}List", "metadata": {"resourceVersion": str(self.rv)}, "items": items}

    def _check_identity(self, t: ResType, ns: str, body: dict[str, Any], name: str | None = None) -> None:
        if body.get("apiVersion") not in (None, t.gv) or body.get("kind") not in (None, t.kind):
            raise ApiFailure(400, "BadRequest", f"the API version in the data ({body.get('apiVersion')}) does not match "
                             f"the expected API version ({t.gv})")
        meta = body.setdefault("metadata", {})
        body["apiVersion"], body["kind"] = t.gv, t.kind
        if not meta.get("name"):
            if name is None:
                raise ApiFailure(422, "Invalid", f"{t.kind}.{t.group} \"\" is invalid: metadata.name: Required value: "
                                 f"name or generateName is required")
            meta["name"] = name
        if name is not None and meta["name"] != name:
            raise ApiFailure(400, "BadRequest", "the name of the object does not match the name on the URL")
        if not NAME_RE.match(meta["name"]) or len(meta["name"]) > 253:
            raise ApiFailure(422, "Invalid", f'{t.kind} "{meta["name"]}" is invalid: metadata.name: Invalid value: '
                             f'"{meta["name"]}": a lowercase RFC 1123 subdomain must consist of lower case '
                             f"alphanumeric characters, '-' or '.'")
        if t.namespaced:
            if meta.get("namespace") not in (None, ns):
                raise ApiFailure(400, "BadRequest", "the namespace of the provided object does not match the "
                                 "namespace sent on the request")
            meta["namespace"] = ns
            if ("", "namespaces", "", ns) not in self.objects:
                raise ApiFailure(404, "NotFound", f'namespaces "{ns}" not found',
                                 {"name": ns, "kind": "namespaces"})
        else:
            meta.pop("namespace", None)
        for i, ref in enumerate(meta.get("ownerReferences") or []):
            for f in ("apiVersion", "kind", "name", "uid"):
                if not ref.get(f):
                    raise ApiFailure(422, "Invalid", f'{t.kind} "{meta["name"]}" is invalid: '
                                     f"metadata.ownerReferences[{i}].{f}: Invalid value: \"\": must not be empty")

    def _admit(self, t: ResType, obj: dict[str, Any]) -> None:
        """Validating webhooks on create."""
        if not self.webhooks:
            return
        if t.plural == "pcideviceclaims" and self.pcidevices_webhook_up:
            # harvester/pcidevices pkg/webhook/pcideviceclaim.go Create: deviceCache.Get
            # of the claim's own name, then the IOMMU group; both plain errors, which the
            # webhook framework answers as InternalError (500).
            name = obj["metadata"]["name"]
            dev = self.objects.get(("devices.harvesterhci.io", "pcidevices", "", name))
            if dev is None:
                raise _denied(PCIDEVICES_WEBHOOK, 500, "InternalError",
                              f'pcidevices.devices.harvesterhci.io "{name}" not found')
            if not (dev.get("status") or {}).get("iommuGroup"):
                raise _denied(PCIDEVICES_WEBHOOK, 500, "InternalError", f"pcidevice {name} has no iommuGroup available")
        if t.plural == "addons":
            # harvester/harvester pkg/webhook/resources/addon/validator.go validateNewAddon
            chart = (obj.get("spec") or {}).get("chart")
            for (g, p, _, _), other in self.objects.items():
                if (g, p) == (t.group, t.plural) and (other.get("spec") or {}).get("chart") == chart:
                    raise _denied(HARVESTER_WEBHOOK, 409, "Conflict",
                                  f'addon with Chart "{chart}" has been created, cannot create a new one')

    def _admit_update(self, t: ResType, old: dict[str, Any], new: dict[str, Any], user: User) -> None:
        """Validating webhooks and admission plugins on update."""
        if user.node is not None and t.plural == "nodes":
            self._node_restriction(user, old, new)
        if not self.webhooks or t.plural != "addons":
            return
        # harvester/harvester pkg/webhook/resources/addon/validator.go validateUpdatedAddon
        if (new.get("spec") or {}).get("chart") != (old.get("spec") or {}).get("chart"):
            raise _denied(HARVESTER_WEBHOOK, 400, "BadRequest", "chart field cannot be changed.")
        for c in (old.get("status") or {}).get("conditions") or []:
            if c.get("type") == "InProgress" and c.get("status") == "True":
                raise _denied(HARVESTER_WEBHOOK, 400, "BadRequest", "cannot perform operation, as an existing "
                              f"operation is in progress on addon {old['metadata']['name']}")

    # -- authorization ---------------------------------------------------------------------
    _VERBS = {"GET": "get", "POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}

    def _authorize(self, user: User, req: Request, t: ResType, ns: str, name: str | None) -> None:
        node = user.node
        if ADMIN_GROUP in user.groups or node is None:
            return
        verb = self._VERBS.get(req.method, req.method.lower())
        if verb == "get" and name is None:
            verb = "list"
        reason = ""
        if (t.group, t.plural) == ("", "nodes"):
            # kubernetes plugin/pkg/auth/authorizer/node/node_authorizer.go authorizeNode
            # (AuthorizeNodeWithSelectors, on by default since v1.32): create/update/patch
            # go to NodeRestriction; get/list/watch only of its own name.
            if verb in ("create", "update", "patch"):
                return
            if verb in ("get", "list") and name == node:
                return
            if verb in ("get", "list"):
                reason = (f"node '{node}' cannot read all nodes, only its own Node object" if name is None else
                          f"node '{node}' cannot read '{name}', only its own Node object")
        elif (t.group, t.plural) == ("node.k8s.io", "runtimeclasses") and verb in ("get", "list"):
            return  # bootstrappolicy NodeRules: runtimeclasses get/list/watch
        # Nothing else is in the node rules, and RBAC binds nothing to system:nodes:
        # kube-apiserver's forbidden answer (apiserver pkg/endpoints/handlers/
        # responsewriters/errors.go forbiddenMessage, apierrors.NewForbidden).
        where = f'in the namespace "{ns}"' if ns else "at the cluster scope"
        msg = f'User "{user.name}" cannot {verb} resource "{t.plural}" in API group "{t.group}" {where}'
        if reason:
            msg += f": {reason}"
        subject = f'{t.qualified} "{name}"' if name else t.qualified
        raise ApiFailure(403, "Forbidden", f"{subject} is forbidden: {msg}",
                         {"name": name or "", "group": t.group, "kind": t.plural})

    def _node_restriction(self, user: User, old: dict[str, Any], new: dict[str, Any]) -> None:
        """kubernetes plugin/pkg/admission/noderestriction/admission.go admitNode for an
        update: only its own Node, taints unchanged, no forbidden labels changed
        (getForbiddenLabels: node-restriction.kubernetes.io, and kubernetes.io / k8s.io
        labels the kubelet does not own)."""
        node, name = user.node, old["metadata"]["name"]

        def forbidden(message: str) -> ApiFailure:
            return ApiFailure(403, "Forbidden", f'nodes "{name}" is forbidden: {message}',
                              {"name": name, "kind": "nodes"})

        if name != node:
            raise forbidden(f'node "{node}" is not allowed to modify node "{name}"')
        if (new.get("spec") or {}).get("taints") != (old.get("spec") or {}).get("taints"):
            raise forbidden(f'node "{node}" is not allowed to modify taints')
        before = old["metadata"].get("labels") or {}
        after = new["metadata"].get("labels") or {}
        changed = {k for k in set(before) | set(after) if before.get(k) != after.get(k)}
        bad = sorted(k for k in changed if _forbidden_node_label(k))
        if bad:
            raise forbidden(f"is not allowed to modify labels: {', '.join(bad)}")

    # -- deletion ----------------------------------------------------------------------------
    def _delete(self, t: ResType, key: tuple[str, str, str, str]) -> tuple[int, Any, str]:
        obj = self._must(t, key)
        if obj["metadata"].get("finalizers"):
            if not obj["metadata"].get("deletionTimestamp"):
                new = copy.deepcopy(obj)
                new["metadata"]["deletionTimestamp"] = _now()
                self._stamp(new, obj, "apiserver")
                self._store(t, key, new)
            return 200, copy.deepcopy(self.objects[key]), "application/json"
        del self.objects[key]
        self.owners.pop(key, None)
        return 200, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                     "details": {"name": key[3], "group": t.group, "kind": t.plural}}, "application/json"

    def _finalize(self, t: ResType, key: tuple[str, str, str, str], out: dict[str, Any]) -> dict[str, Any]:
        """An object being deleted goes once its last finalizer is removed."""
        obj = self.objects.get(key)
        if obj is not None and obj["metadata"].get("deletionTimestamp") and not obj["metadata"].get("finalizers"):
            del self.objects[key]
            self.owners.pop(key, None)
        return out

    def _stamp(self, new: dict[str, Any], old: dict[str, Any] | None, manager: str, op: str = "Update") -> None:
        meta = new.setdefault("metadata", {})
        self.rv += 1
        meta["resourceVersion"] = str(self.rv)
        if old is None:
            meta["uid"] = str(uuid.uuid4())
            meta["creationTimestamp"] = _now()
            meta["generation"] = 1
        else:
            om = old["metadata"]
            meta["uid"], meta["creationTimestamp"] = om["uid"], om["creationTimestamp"]
            meta["generation"] = om.get("generation", 1) + (1 if _spec_part(new) != _spec_part(old) else 0)

    def _record_update_owner(self, key: tuple[str, str, str, str], old: dict[str, Any] | None,
                             new: dict[str, Any], manager: str) -> None:
        before = _leaves(_content(old)) if old else {}
        changed = {p for p, v in _leaves(_content(new)).items() if before.get(p, object()) != v and p not in _IGNORED_APPLY_PATHS}
        owners = self.owners.setdefault(key, {})
        for m, (_op, paths) in list(owners.items()):
            if m != manager:
                paths -= changed
        op, paths = owners.get(manager, ("Update", set()))
        owners[manager] = (op if op == "Apply" else "Update", paths | changed)

    def _render_managed(self, t: ResType, key: tuple[str, str, str, str], obj: dict[str, Any]) -> None:
        owners = self.owners.get(key, {})
        obj["metadata"]["managedFields"] = [
            {"manager": m, "operation": op, "apiVersion": t.gv, "time": _now(), "fieldsType": "FieldsV1",
             "fieldsV1": _fields_v1(paths)}
            for m, (op, paths) in sorted(owners.items()) if paths
        ]

    def _store(self, t: ResType, key: tuple[str, str, str, str], obj: dict[str, Any]) -> dict[str, Any]:
        self._render_managed(t, key, obj)
        self.objects[key] = obj
        self.writes[key] = self.writes.get(key, 0) + 1
        return copy.deepcopy(obj)

    @staticmethod
    def _manager(req: Request) -> str:
        return req.query.get("fieldManager") or (req.agent.split("/")[0] or "unknown")

    def _create(self, t: ResType, ns: str, body: dict[str, Any], req: Request) -> dict[str, Any]:
        self._check_identity(t, ns, body)
        name = body["metadata"]["name"]
        key = (t.group, t.plural, ns if t.namespaced else "", name)
        if key in self.objects:
            raise ApiFailure(409, "AlreadyExists", f'{t.qualified} "{name}" already exists',
                             {"name": name, "group": t.group, "kind": t.plural})
        self._admit(t, body)
        for k in ("resourceVersion", "uid", "managedFields", "generation", "creationTimestamp"):
            body["metadata"].pop(k, None)
        self._stamp(body, None, self._manager(req))
        self._record_update_owner(key, None, body, self._manager(req))
        return self._store(t, key, body)

    def _write_existing(self, t: ResType, key: tuple[str, str, str, str], old: dict[str, Any],
                        new: dict[str, Any], manager: str) -> dict[str, Any]:
        if _content(new) == _content(old):
            return copy.deepcopy(old)  # a write that changes nothing changes no version
        self._stamp(new, old, manager)
        self._record_update_owner(key, old, new, manager)
        return self._store(t, key, new)

    def _update(self, t: ResType, key: tuple[str, str, str, str], body: dict[str, Any], req: Request,
                user: User) -> dict[str, Any]:
        self._check_identity(t, key[2], body, key[3])
        old = self._must(t, key)
        self._admit_update(t, old, body, user)
        rv = body["metadata"].get("resourceVersion")
        if not rv:
            raise ApiFailure(422, "Invalid", f'{t.kind} "{key[3]}" is invalid: metadata.resourceVersion: Invalid '
                             f"value: 0x0: must be specified for an update")
        if rv != old["metadata"]["resourceVersion"]:
            raise self._conflict(t, key[3])
        body["metadata"]["managedFields"] = old["metadata"].get("managedFields", [])
        return self._finalize(t, key, self._write_existing(t, key, old, body, self._manager(req)))

    def _conflict(self, t: ResType, name: str) -> ApiFailure:
        return ApiFailure(409, "Conflict", f'Operation cannot be fulfilled on {t.qualified} "{name}": the object '
                          f"has been modified; please apply your changes to the latest version and try again",
                          {"name": name, "group": t.group, "kind": t.plural})

    def _patch(self, t: ResType, key: tuple[str, str, str, str], patch: dict[str, Any], req: Request,
               user: User) -> dict[str, Any]:
        old = self._must(t, key)
        want_rv = (patch.get("metadata") or {}).get("resourceVersion")
        if want_rv and want_rv != old["metadata"]["resourceVersion"]:
            raise self._conflict(t, key[3])
        new = merge_patch(old, patch)
        self._check_identity(t, key[2], new, key[3])
        self._admit_update(t, old, new, user)
        return self._finalize(t, key, self._write_existing(t, key, old, new, self._manager(req)))

    def _apply(self, t: ResType, key: tuple[str, str, str, str], req: Request, user: User) -> tuple[int, Any, str]:
        manager = req.query.get("fieldManager")
        if not manager:
            raise ApiFailure(422, "Invalid", 'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required '
                             "value: is required for apply patch")
        force = req.query.get("force") == "true"
        try:
            cfg = yaml.safe_load(req.body or b"")
        except yaml.YAMLError as exc:
            raise ApiFailure(400, "BadRequest", f"error decoding YAML: {exc}") from None
        if not isinstance(cfg, dict):
            raise ApiFailure(400, "BadRequest", "the apply configuration is not an object")
        self._check_identity(t, key[2], cfg, key[3])
        leaves = {p: v for p, v in _leaves(cfg).items() if p not in _IGNORED_APPLY_PATHS}
        old = self.objects.get(key)
        owners = self.owners.setdefault(key, {})
        if old is not None:
            self._admit_update(t, old, _deep_merge(old, cfg), user)
        if old is None:
            self._admit(t, cfg)
            new = copy.deepcopy(cfg)
            self._stamp(new, None, manager, "Apply")
            owners[manager] = ("Apply", set(leaves))
            return 201, self._store(t, key, new), "application/json"
        conflicts = []
        for p, v in leaves.items():
            found, cur = _lookup(old, p)
            if found and cur == v:
                continue
            for m, (_, paths) in owners.items():
                if m != manager and p in paths:
                    conflicts.append((m, p))
        if conflicts and not force:
            fields = ", ".join(f'conflict with "{m}": .{".".join(p)}' for m, p in conflicts)
            raise ApiFailure(409, "Conflict", f"Apply failed with {len(conflicts)} conflict(s): {fields}",
                             {"causes": [{"type": "FieldManagerConflict", "message": f'conflict with "{m}"',
                                          "field": "." + ".".join(p)} for m, p in conflicts]})
        new = merge_patch(old, {})
        _, previous = owners.get(manager, ("Apply", set()))
        others = set().union(*(paths for m, (_, paths) in owners.items() if m != manager)) if owners else set()
        for p in previous - set(leaves) - others:
            _delete_path(new, p)
        new = _deep_merge(new, cfg)
        for m, (op, paths) in list(owners.items()):
            if m != manager:
                owners[m] = (op, paths - set(leaves))
        owners[manager] = ("Apply", set(leaves))
        if _content(new) == _content(old):
            self._render_managed(t, key, self.objects[key])
            return 200, copy.deepcopy(self.objects[key]), "application/json"
        self._stamp(new, old, manager, "Apply")
        return 200, self._store(t, key, new), "application/json"


def _deep_merge(base: Any, over: Any) -> Any:
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for k, v in over.items():
            out[k] = _deep_merge(base.get(k), v)
        return out
    return copy.deepcopy(over)


def _selects(selector: str, obj: dict[str, Any]) -> bool:
    labels = (obj.get("metadata") or {}).get("labels") or {}
    for term in filter(None, (s.strip() for s in selector.split(","))):
        if "!=" in term:
            k, v = term.split("!=", 1)
            if labels.get(k) == v:
                return False
        elif "=" in term:
            k, v = term.replace("==", "=").split("=", 1)
            if labels.get(k) != v:
                return False
        elif term.startswith("!"):
            if term[1:] in labels:
                return False
        elif term not in labels:
            return False
    return True


def _denied(webhook: str, code: int, reason: str, message: str) -> ApiFailure:
    """A webhook's refusal as kube-apiserver returns it (apiserver pkg/admission/plugin/
    webhook/errors/statuserror.go ToStatusErr: the webhook's code and reason, the message
    prefixed with the webhook's name)."""
    return ApiFailure(code, reason, f'admission webhook "{webhook}" denied the request: {message}')


# kubernetes staging/src/k8s.io/kubelet/pkg/apis/well_known_labels.go (kubeletLabels,
# kubeletLabelNamespaces): the kubernetes.io labels a kubelet may set on its Node.
_KUBELET_LABELS = {
    "kubernetes.io/hostname", "topology.kubernetes.io/zone", "topology.kubernetes.io/region",
    "failure-domain.beta.kubernetes.io/zone", "failure-domain.beta.kubernetes.io/region",
    "beta.kubernetes.io/instance-type", "node.kubernetes.io/instance-type", "kubernetes.io/os",
    "kubernetes.io/arch", "beta.kubernetes.io/os", "beta.kubernetes.io/arch",
}
_KUBELET_LABEL_NAMESPACES = ("kubelet.kubernetes.io", "node.kubernetes.io")


def _forbidden_node_label(key: str) -> bool:
    ns = key.split("/", 1)[0] if "/" in key else ""
    if ns == "node-restriction.kubernetes.io" or ns.endswith(".node-restriction.kubernetes.io"):
        return True
    kube = ns in ("kubernetes.io", "k8s.io") or ns.endswith(".kubernetes.io") or ns.endswith(".k8s.io")
    if not kube:
        return False
    if key in _KUBELET_LABELS:
        return False
    return not any(ns == n or ns.endswith("." + n) for n in _KUBELET_LABEL_NAMESPACES)
