"""Read a kubeconfig file: the current context's server, CA and credentials.

RKE2 writes /etc/rancher/rke2/rke2.yaml with one cluster (`server:
https://127.0.0.1:6443`, `certificate-authority-data`) and one user
(`client-certificate-data`, `client-key-data`), all base64 PEM. File references
(`certificate-authority`, `client-certificate`, `client-key`, `tokenFile`, relative to
the kubeconfig's directory as kubectl resolves them) and bearer tokens are accepted too.
Exec plugins and auth providers are not: nothing on an installed node needs them.

Every problem is a `BadInput` naming the file and the key path. A missing file is a
`KubeconfigMissing` (also BadInput), so the first-boot service can wait for RKE2 to write
it while it waits for the API.
"""

from __future__ import annotations

import base64
import binascii
import os
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import yaml

from installer_ext.errors import BadInput


class KubeconfigMissing(BadInput):
    """The kubeconfig file does not exist (yet)."""


@dataclass(frozen=True)
class KubeConfig:
    source: str
    server: str
    scheme: str
    host: str
    port: int
    ca_pem: bytes | None = None
    insecure: bool = False
    tls_server_name: str | None = None
    client_cert_pem: bytes | None = None
    client_key_pem: bytes | None = None
    token: str | None = None

    def __repr__(self) -> str:  # never print keys or tokens
        return f"KubeConfig(source={self.source!r}, server={self.server!r})"


def _named(items: Any, kind: str, name: str, path: str) -> dict[str, Any]:
    if not isinstance(items, list):
        raise BadInput(f"{path}: {kind}s: not a list")
    for i, item in enumerate(items):
        if isinstance(item, dict) and item.get("name") == name:
            body = item.get(kind)
            if not isinstance(body, dict):
                raise BadInput(f"{path}: {kind}s[{i}].{kind}: not a mapping")
            return body
    raise BadInput(f"{path}: no {kind} named {name!r}")


def _data_or_file(section: dict[str, Any], key: str, where: str, path: str) -> bytes | None:
    data = section.get(f"{key}-data")
    if data is not None:
        if not isinstance(data, str):
            raise BadInput(f"{path}: {where}.{key}-data: not a string")
        try:
            return base64.b64decode(data.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise BadInput(f"{path}: {where}.{key}-data: not valid base64") from None
    ref = section.get(key)
    if ref is None:
        return None
    if not isinstance(ref, str) or not ref:
        raise BadInput(f"{path}: {where}.{key}: not a file name")
    full = ref if os.path.isabs(ref) else os.path.join(os.path.dirname(os.path.abspath(path)), ref)
    try:
        with open(full, "rb") as f:
            return f.read()
    except OSError as exc:
        raise BadInput(f"{path}: {where}.{key}: {full}: {exc.strerror or exc}") from None


def parse(text: str, path: str, context: str | None = None) -> KubeConfig:
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" (line {mark.line + 1})" if mark is not None else ""
        raise BadInput(f"{path}: not valid YAML{at}: {getattr(exc, 'problem', None) or exc}") from None
    if not isinstance(doc, dict):
        raise BadInput(f"{path}: not a kubeconfig (expected a mapping)")
    ctx_name = context or doc.get("current-context")
    if not ctx_name or not isinstance(ctx_name, str):
        raise BadInput(f"{path}: current-context: missing")
    ctx = _named(doc.get("contexts"), "context", ctx_name, path)
    cluster_name, user_name = ctx.get("cluster"), ctx.get("user")
    if not isinstance(cluster_name, str) or not cluster_name:
        raise BadInput(f"{path}: context {ctx_name!r}: cluster: missing")
    cluster = _named(doc.get("clusters"), "cluster", cluster_name, path)
    user: dict[str, Any] = {}
    if user_name:
        if not isinstance(user_name, str):
            raise BadInput(f"{path}: context {ctx_name!r}: user: not a string")
        user = _named(doc.get("users"), "user", user_name, path)

    server = cluster.get("server")
    if not isinstance(server, str) or not server:
        raise BadInput(f"{path}: cluster {cluster_name!r}: server: missing")
    parts = urlsplit(server)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise BadInput(f"{path}: cluster {cluster_name!r}: server: {server!r} is not an http(s) URL")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise BadInput(f"{path}: cluster {cluster_name!r}: server: {server!r} has a bad port") from None

    for key in ("exec", "auth-provider"):
        if key in user:
            raise BadInput(f"{path}: user {user_name!r}: {key}: not supported (use a client certificate or token)")
    token = user.get("token")
    if token is not None and not isinstance(token, str):
        raise BadInput(f"{path}: user {user_name!r}: token: not a string")
    if token is None and user.get("tokenFile"):
        tf = user["tokenFile"]
        full = tf if os.path.isabs(tf) else os.path.join(os.path.dirname(os.path.abspath(path)), tf)
        try:
            with open(full, encoding="utf-8") as f:
                token = f.read().strip()
        except OSError as exc:
            raise BadInput(f"{path}: user {user_name!r}: tokenFile: {full}: {exc.strerror or exc}") from None

    cwhere, uwhere = f"cluster {cluster_name!r}", f"user {user_name!r}"
    cert = _data_or_file(user, "client-certificate", uwhere, path)
    key = _data_or_file(user, "client-key", uwhere, path)
    if (cert is None) != (key is None):
        raise BadInput(f"{path}: {uwhere}: client certificate and key must be given together")
    if cert is None and not token and parts.scheme == "https":
        raise BadInput(f"{path}: {uwhere}: no credentials (client certificate and key, or token)")
    ca = _data_or_file(cluster, "certificate-authority", cwhere, path)
    insecure = bool(cluster.get("insecure-skip-tls-verify", False))
    for label, pem in (("certificate-authority-data", ca), ("client-certificate-data", cert), ("client-key-data", key)):
        if pem is not None and b"-----BEGIN " not in pem:
            raise BadInput(f"{path}: {label}: not PEM")
    return KubeConfig(
        source=path,
        server=server.rstrip("/"),
        scheme=parts.scheme,
        host=parts.hostname,
        port=port,
        ca_pem=ca,
        insecure=insecure,
        tls_server_name=cluster.get("tls-server-name") or None,
        client_cert_pem=cert,
        client_key_pem=key,
        token=token or None,
    )


def load(path: str, context: str | None = None) -> KubeConfig:
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        raise KubeconfigMissing(f"{path}: no such file") from None
    except IsADirectoryError:
        raise BadInput(f"{path}: is a directory, not a kubeconfig") from None
    except UnicodeDecodeError:
        raise BadInput(f"{path}: not UTF-8 text") from None
    except OSError as exc:
        raise BadInput(f"{path}: cannot read: {exc.strerror or exc}") from None
    return parse(text, path, context)
