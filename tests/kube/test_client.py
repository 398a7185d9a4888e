"""The standard-library Kubernetes client: kubeconfig, TLS, retries, Status errors."""

from __future__ import annotations

import base64
import os
import random
import ssl

import pytest
import yaml

from installer_ext.errors import BadInput
from installer_ext.kube import kubeconfig as kcfg
from installer_ext.kube.backoff import Backoff, Deadline, poll
from installer_ext.kube.client import KubeClient, Resource
from installer_ext.kube.errors import ApiError, TLSError, TransportError
from tests.kube.certs import Pki
from tests.kube.fakeapi import FakeApiServer, Rule

SETTINGS = Resource("harvesterhci.io", "v1beta1", "settings", "Setting")
ADDONS = Resource("harvesterhci.io", "v1beta1", "addons", "Addon", namespaced=True)
NODES = Resource("", "v1", "nodes", "Node")


class FakeClock:
    def __init__(self) -> None:
        self.t = 100.0
        self.slept: list[float] = []

    def now(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        self.slept.append(s)
        self.t += s


def client_for(path: str, **kw) -> KubeClient:
    kw.setdefault("clock", FakeClock())
    return KubeClient(kcfg.load(path), **kw)


def setting(name: str, value: str) -> dict:
    return {"apiVersion": "harvesterhci.io/v1beta1", "kind": "Setting", "metadata": {"name": name}, "value": value}


# -- kubeconfig ------------------------------------------------------------------------------

def test_rke2_style_kubeconfig_parses(kubeconfig: str, api: FakeApiServer, pki: Pki) -> None:
    cfg = kcfg.load(kubeconfig)
    assert cfg.server == api.url and cfg.host == "127.0.0.1" and cfg.port == api.port
    assert cfg.ca_pem == Pki.read(pki.ca_cert)
    assert cfg.client_key_pem.startswith(b"-----BEGIN EC PRIVATE KEY")
    assert "KEY" not in repr(cfg)  # keys never printed


@pytest.mark.parametrize(
    "text, expect",
    [
        ("{", "not valid YAML"),
        ("- just\n- a list\n", "not a kubeconfig"),
        ("apiVersion: v1\nkind: Config\n", "current-context: missing"),
        ("current-context: x\ncontexts: []\n", "no context named 'x'"),
        ("current-context: c\ncontexts: [{name: c, context: {cluster: k, user: u}}]\nclusters: []\n",
         "no cluster named 'k'"),
        ("current-context: c\ncontexts: [{name: c, context: {cluster: k, user: u}}]\n"
         "clusters: [{name: k, cluster: {server: 'ftp://x'}}]\nusers: [{name: u, user: {token: t}}]\n",
         "is not an http(s) URL"),
        ("current-context: c\ncontexts: [{name: c, context: {cluster: k, user: u}}]\n"
         "clusters: [{name: k, cluster: {server: 'https://127.0.0.1:6443', certificate-authority-data: '!!'}}]\n"
         "users: [{name: u, user: {token: t}}]\n", "certificate-authority-data: not valid base64"),
        ("current-context: c\ncontexts: [{name: c, context: {cluster: k, user: u}}]\n"
         "clusters: [{name: k, cluster: {server: 'https://127.0.0.1:6443'}}]\nusers: [{name: u, user: {}}]\n",
         "no credentials"),
        ("current-context: c\ncontexts: [{name: c, context: {cluster: k, user: u}}]\n"
         "clusters: [{name: k, cluster: {server: 'https://127.0.0.1:6443'}}]\n"
         "users: [{name: u, user: {exec: {command: aws}}}]\n", "exec: not supported"),
        ("current-context: c\ncontexts: [{name: c, context: {cluster: k, user: u}}]\n"
         "clusters: [{name: k, cluster: {server: 'https://127.0.0.1:6443'}}]\n"
         "users: [{name: u, user: {client-certificate-data: " + base64.b64encode(b"x").decode() + "}}]\n",
         "must be given together"),
    ],
)
def test_bad_kubeconfig_is_one_clear_line(tmp_path, text: str, expect: str) -> None:
    path = tmp_path / "rke2.yaml"
    path.write_text(text)
    with pytest.raises(BadInput) as exc:
        kcfg.load(str(path))
    assert len(exc.value.lines) == 1
    assert exc.value.lines[0].startswith(f"{path}: ")
    assert expect in exc.value.lines[0]


def test_missing_kubeconfig_is_its_own_error(tmp_path) -> None:
    with pytest.raises(kcfg.KubeconfigMissing):
        kcfg.load(str(tmp_path / "nope.yaml"))


def test_garbage_pem_is_bad_input(api: FakeApiServer, tmp_path) -> None:
    path = api.kubeconfig(str(tmp_path / "k.yaml"), key_pem=b"-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n")
    with pytest.raises(BadInput, match="client certificate and key cannot be loaded"):
        client_for(path)


def test_file_references_resolve_relative_to_the_kubeconfig(api: FakeApiServer, pki: Pki, tmp_path) -> None:
    d = tmp_path / "conf"
    d.mkdir()
    for name, src in (("ca.crt", pki.ca_cert), ("c.crt", pki.client_cert), ("c.key", pki.client_key)):
        (d / name).write_bytes(Pki.read(src))
    doc = {"current-context": "c", "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}],
           "clusters": [{"name": "k", "cluster": {"server": api.url, "certificate-authority": "ca.crt"}}],
           "users": [{"name": "u", "user": {"client-certificate": "c.crt", "client-key": "c.key"}}]}
    (d / "kc.yaml").write_text(yaml.safe_dump(doc))
    with client_for(str(d / "kc.yaml")) as c:
        assert c.get(NODES, "absent") is None


# -- TLS and authentication ------------------------------------------------------------------

def test_wrong_ca_is_a_clear_tls_error_and_not_retried(api: FakeApiServer, other_pki: Pki, tmp_path) -> None:
    path = api.kubeconfig(str(tmp_path / "k.yaml"), ca_pem=Pki.read(other_pki.ca_cert))
    c = client_for(path, attempts=5)
    with pytest.raises(TLSError) as exc:
        c.request("GET", "/api")
    msg = exc.value.lines[0]
    assert f"the API server {api.url} is not verified by the CA in {path}" in msg
    assert "certificate verify failed" in msg
    assert c.requests == 1 and c.clock.slept == []


def test_client_certificate_from_another_ca_is_rejected(api: FakeApiServer, other_pki: Pki, tmp_path) -> None:
    path = api.kubeconfig(str(tmp_path / "k.yaml"), cert_pem=Pki.read(other_pki.client_cert),
                          key_pem=Pki.read(other_pki.client_key))
    # TLS 1.3: the server checks the certificate after the client's handshake ended; the
    # alert races with the close, so the client sees the alert (fatal) or a bare close
    # (transient, bounded, with a hint). Either way the message names the certificate.
    c = client_for(path, attempts=2)
    with pytest.raises((TLSError, TransportError)) as exc:
        c.request("GET", "/api")
    assert "client certificate in" in str(exc.value)
    assert 1 <= c.requests <= 2
    # TLS 1.2 (and servers that send the alert): the alert names the reason, no retry.
    api.ssl_context.maximum_version = ssl.TLSVersion.TLSv1_2
    c = client_for(path, attempts=5)
    with pytest.raises(TLSError, match="rejected the client certificate in .*: TLSV1_ALERT_UNKNOWN_CA"):
        c.request("GET", "/api")
    assert c.requests == 1


def test_bearer_token(pki: Pki, tmp_path) -> None:
    with FakeApiServer(pki, token="s3cret") as api:
        good = client_for(api.kubeconfig(str(tmp_path / "good.yaml"), token="s3cret"))
        assert good.request("GET", "/api")["kind"] == "APIVersions"
        bad = client_for(api.kubeconfig(str(tmp_path / "bad.yaml"), token="wrong"))
        with pytest.raises(ApiError) as exc:
            bad.request("GET", "/api")
        assert (exc.value.status, exc.value.reason) == (401, "Unauthorized")


# -- protocol ----------------------------------------------------------------------------------

def test_create_conflict_update_patch(api: FakeApiServer, kubeconfig: str) -> None:
    c = client_for(kubeconfig)
    created = c.create(SETTINGS, setting("pci-pt-enable", "false"))
    assert created["metadata"]["uid"] and created["metadata"]["resourceVersion"]
    assert api.requests("POST")[-1].status == 201
    with pytest.raises(ApiError) as exc:
        c.create(SETTINGS, setting("pci-pt-enable", "true"))
    assert exc.value.already_exists and exc.value.details == {"name": "pci-pt-enable", "group": "harvesterhci.io",
                                                              "kind": "settings"}
    stale = dict(created, value="true")
    api.mutate("settings", "pci-pt-enable", lambda o: o["metadata"].setdefault("annotations", {}).update(x="1"))
    with pytest.raises(ApiError) as exc:
        c.replace(SETTINGS, stale)
    assert exc.value.conflict and exc.value.status == 409 and "has been modified" in exc.value.message
    fresh = c.get(SETTINGS, "pci-pt-enable")
    fresh["value"] = "true"
    updated = c.replace(SETTINGS, fresh)
    assert updated["value"] == "true" and updated["metadata"]["annotations"] == {"x": "1"}
    assert int(updated["metadata"]["resourceVersion"]) > int(fresh["metadata"]["resourceVersion"])
    no_rv = setting("pci-pt-enable", "x")
    with pytest.raises(ApiError) as exc:
        c.replace(SETTINGS, no_rv)
    assert (exc.value.status, exc.value.reason) == (422, "Invalid")


def test_status_body_fields_and_unserved_group(api: FakeApiServer, kubeconfig: str) -> None:
    c = client_for(kubeconfig)
    with pytest.raises(ApiError) as exc:
        c.request("GET", SETTINGS.path("nope"))
    assert (exc.value.status, exc.value.reason) == (404, "NotFound")
    assert exc.value.message == 'settings.harvesterhci.io "nope" not found'
    api.unserved.add("devices.harvesterhci.io")
    assert c.served_resources("devices.harvesterhci.io", "v1beta1") is None
    assert c.served_resources("harvesterhci.io", "v1beta1") == {"settings", "addons"}


def test_namespaced_write_needs_the_namespace(api: FakeApiServer, kubeconfig: str) -> None:
    c = client_for(kubeconfig)
    addon = {"apiVersion": "harvesterhci.io/v1beta1", "kind": "Addon", "metadata": {"name": "a"}, "spec": {}}
    with pytest.raises(ApiError, match='namespaces "nowhere" not found'):
        c.create(ADDONS, addon, "nowhere")


def test_server_side_apply_creates_then_is_a_no_op(api: FakeApiServer, kubeconfig: str) -> None:
    c = client_for(kubeconfig)
    rc = {"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass", "metadata": {"name": "nvidia"}, "handler": "nvidia"}
    res = Resource("node.k8s.io", "v1", "runtimeclasses", "RuntimeClass")
    first = c.apply(res, rc, "installer-ext")
    assert api.requests("PATCH")[-1].status == 201
    again = c.apply(res, rc, "installer-ext")
    assert again["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]
    assert api.write_count("runtimeclasses", "nvidia") == 1
    managers = {m["manager"]: m["operation"] for m in again["metadata"]["managedFields"]}
    assert managers == {"installer-ext": "Apply"}


def test_apply_conflicts_with_another_manager_unless_forced(api: FakeApiServer, kubeconfig: str) -> None:
    c = client_for(kubeconfig)
    res = Resource("node.k8s.io", "v1", "runtimeclasses", "RuntimeClass")
    c.apply(res, {"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass", "metadata": {"name": "x"}, "handler": "a"}, "someone")
    mine = {"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass", "metadata": {"name": "x"}, "handler": "b"}
    with pytest.raises(ApiError) as exc:
        c.apply(res, mine, "installer-ext", force=False)
    assert exc.value.status == 409 and 'conflict with "someone"' in exc.value.message
    assert c.apply(res, mine, "installer-ext", force=True)["handler"] == "b"


# -- retries -----------------------------------------------------------------------------------

def test_500s_are_retried_with_backoff(api: FakeApiServer, kubeconfig: str) -> None:
    api.add_rule(Rule(path="/settings/x$", times=3, status=500))
    c = client_for(kubeconfig, attempts=5, backoff=Backoff(initial=0.1, cap=1.0, rng=random.Random(1)))
    assert c.get(SETTINGS, "x") is None
    assert [r.status for r in api.requests("GET", "/settings/x$")] == [500, 500, 500, 404]
    assert len(c.clock.slept) == 3 and all(0.05 <= s <= 0.4 for s in c.clock.slept)


def test_retries_are_bounded(api: FakeApiServer, kubeconfig: str) -> None:
    api.add_rule(Rule(path="/settings/x$", times=None, status=503, reason="ServiceUnavailable"))
    c = client_for(kubeconfig, attempts=3)
    with pytest.raises(ApiError) as exc:
        c.get(SETTINGS, "x")
    assert exc.value.status == 503 and c.requests == 3


def test_429_honours_retry_after_within_the_cap(api: FakeApiServer, kubeconfig: str) -> None:
    api.add_rule(Rule(path="/settings/x$", times=1, status=429, reason="TooManyRequests"))
    c = client_for(kubeconfig, backoff=Backoff(initial=0.01, cap=0.5))
    assert c.get(SETTINGS, "x") is None and len(c.clock.slept) == 1


def test_4xx_other_than_429_is_not_retried(api: FakeApiServer, kubeconfig: str) -> None:
    api.add_rule(Rule(path="/settings/x$", times=None, status=403, reason="Forbidden"))
    c = client_for(kubeconfig)
    with pytest.raises(ApiError):
        c.get(SETTINGS, "x")
    assert c.requests == 1


def test_dropped_connections_and_refused_handshakes_are_retried(api: FakeApiServer, kubeconfig: str) -> None:
    c = client_for(kubeconfig, attempts=4)
    api.refuse_connections(2)
    assert c.request("GET", "/api")["kind"] == "APIVersions"
    api.add_rule(Rule(path="^/api$", times=1, drop=True))
    assert c.request("GET", "/api")["kind"] == "APIVersions"
    assert c.requests == 5


def test_an_answer_slower_than_the_timeout_is_retried(api: FakeApiServer, kubeconfig: str) -> None:
    api.add_rule(Rule(path="^/api$", times=1, delay=0.6))
    c = client_for(kubeconfig, timeout=0.2, attempts=2)
    assert c.request("GET", "/api")["kind"] == "APIVersions"
    assert c.requests == 2


def test_connection_refused_is_transient(pki: Pki, tmp_path) -> None:
    with FakeApiServer(pki) as api:
        path = api.kubeconfig(str(tmp_path / "k.yaml"))
    c = client_for(path, attempts=2)  # the server is gone: nothing listens on its port
    with pytest.raises(TransportError, match="connection refused"):
        c.request("GET", "/api")
    assert c.requests == 2


# -- backoff -----------------------------------------------------------------------------------

def test_backoff_doubles_to_the_cap_with_bounded_jitter() -> None:
    b = Backoff(initial=1.0, cap=8.0, jitter=0.5, rng=random.Random(7))
    it = b.delays()
    got = [next(it) for _ in range(7)]
    nominal = [1, 2, 4, 8, 8, 8, 8]
    assert all(n / 2 <= g <= n for g, n in zip(got, nominal))
    assert len({round(g, 6) for g in got[3:]}) > 1  # jitter spreads nodes apart
    with pytest.raises(ValueError):
        Backoff(initial=2.0, cap=1.0)


def test_poll_stops_at_the_deadline_and_logs_each_attempt(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    deadline = Deadline(10.0, clock)
    import logging

    logger = logging.getLogger("test.poll")
    with caplog.at_level(logging.INFO, logger="test.poll"):
        ok, why, attempts = poll(lambda: (False, "not yet"), deadline, Backoff(1.0, 4.0, jitter=0.0), clock, "waiting", logger)
    assert not ok and why == "not yet"
    assert clock.t - 100.0 == pytest.approx(10.0)  # slept exactly up to the deadline, not past it
    assert attempts == 5  # after 0, 1, 3, 7, 10 s
    assert len([r for r in caplog.records if "waiting, attempt" in r.getMessage()]) == attempts - 1


def test_client_sends_json_and_user_agent(api: FakeApiServer, kubeconfig: str) -> None:
    c = client_for(kubeconfig, user_agent="installer-ext/0.1.0 (firstboot; node=n1)")
    c.create(SETTINGS, setting("a", "b"))
    req = api.requests("POST")[-1]
    assert req.content_type == "application/json" and "node=n1" in req.agent
    assert os.environ.get("KUBECONFIG") != kubeconfig  # nothing leaks into the environment
