"""Throwaway PKI for the fake API server, made with the `openssl` CLI.

The `cryptography` package is not installed in this project's environment, and the
openssl binary is on every machine these tests run on, so no test dependency is added.
Keys are EC P-256 in SEC1 PEM ("EC PRIVATE KEY"), as RKE2 writes them; the server
certificate carries IP:127.0.0.1 (RKE2's does), the client certificate is
CN=system:admin, O=system:masters (RKE2's admin kubeconfig user).
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass

_CNF = """\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[v3_ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1,DNS:localhost,DNS:kubernetes
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[client]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
"""


@dataclass(frozen=True)
class Pki:
    dir: str
    ca_cert: str
    ca_key: str
    server_cert: str
    server_key: str
    client_cert: str
    client_key: str

    @staticmethod
    def read(path: str) -> bytes:
        with open(path, "rb") as f:
            return f.read()


def _run(*args: str, cwd: str) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=30)


def _key(name: str, cwd: str) -> str:
    _run("ecparam", "-genkey", "-name", "prime256v1", "-noout", "-out", name, cwd=cwd)
    return os.path.join(cwd, name)


def _leaf(stem: str, subj: str, ext: str, ca: str, ca_key: str, cwd: str) -> tuple[str, str]:
    key = _key(f"{stem}.key", cwd)
    _run("req", "-new", "-key", key, "-subj", subj, "-out", f"{stem}.csr", "-config", "openssl.cnf", cwd=cwd)
    _run(
        "x509", "-req", "-in", f"{stem}.csr", "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
        "-days", "3", "-out", f"{stem}.crt", "-extfile", "openssl.cnf", "-extensions", ext, cwd=cwd,
    )
    return os.path.join(cwd, f"{stem}.crt"), key


def make_pki(directory: str, ca_name: str = "rke2-server-ca") -> Pki:
    """A CA with a server certificate for 127.0.0.1 and an admin client certificate."""
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, "openssl.cnf"), "w") as f:
        f.write(_CNF)
    ca_key = _key("ca.key", directory)
    _run(
        "req", "-x509", "-new", "-key", ca_key, "-subj", f"/CN={ca_name}@1700000000", "-days", "3",
        "-out", "ca.crt", "-config", "openssl.cnf", "-extensions", "v3_ca", cwd=directory,
    )
    ca = os.path.join(directory, "ca.crt")
    server_cert, server_key = _leaf("server", "/CN=kube-apiserver", "server", ca, ca_key, directory)
    client_cert, client_key = _leaf("client", "/O=system:masters/CN=system:admin", "client", ca, ca_key, directory)
    return Pki(directory, ca, ca_key, server_cert, server_key, client_cert, client_key)


def node_client_cert(pki: Pki, node: str) -> tuple[str, str]:
    """A kubelet client certificate for `node`, as RKE2's supervisor signs it for an
    agent (k3s-io/k3s pkg/agent/config/config.go getNodeNamedHostFile ->
    client-kubelet.crt/.key): CN=system:node:<node>, O=system:nodes, the identity the
    node authorizer recognises (kubernetes pkg/auth/nodeidentifier NodeIdentity).
    Made once per node name and PKI, then reused."""
    stem = f"kubelet-{node}"
    crt, key = os.path.join(pki.dir, f"{stem}.crt"), os.path.join(pki.dir, f"{stem}.key")
    if not (os.path.exists(crt) and os.path.exists(key)):
        _leaf(stem, f"/O=system:nodes/CN=system:node:{node}", "client", pki.ca_cert, pki.ca_key, pki.dir)
    return crt, key
