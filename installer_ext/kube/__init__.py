"""A small Kubernetes API client on the standard library.

Why not the official `kubernetes` package: with its dependencies it is tens of MB
(160 MB installed with the usual extras), pulls in google-auth, websocket-client,
requests/urllib3 and oauthlib, and tracks Kubernetes minor versions; the installer image
and the node's .pyz carry every byte. First boot needs a handful of verbs on a few
resources (GET, LIST, POST, PUT with resourceVersion, merge PATCH, server-side apply)
against one local API server, authenticated the way RKE2's kubeconfig is written
(embedded base64 CA, client certificate and key; or a bearer token). `http.client` and
`ssl` do that in a few hundred lines we can read, test against a local fake server and
ship without new dependencies. pyyaml (already a dependency) reads the kubeconfig.

Modules: `kubeconfig` (parse, one clear error per problem), `client` (TLS, HTTP/1.1
keep-alive, bounded retries of transient failures, Status errors), `backoff` (bounded
exponential backoff with jitter and deadlines, injectable clock), `errors`.
"""
