"""The user's original install config: the only place the `pciPassthrough` section
survives.

The Go installer loads the config into its struct (harvester-installer
pkg/config/schemas.go LoadHarvesterConfig: unknown keys are dropped) and hands the hooks
a re-marshalled copy (`$HARVESTER_CONFIG`, see `installer_config`). The original is at
`install.configUrl`:
- in the hook's environment as `$HARVESTER_STREAMDISK_CLOUDINIT_URL` (pkg/console/util.go
  generateEnvAndConfig, v1.4-v1.8: `userDataURL := hvstConfig.Install.ConfigURL`, taken
  before ConfigURL is pointed at the generated cos config; so `$HARVESTER_CONFIG_URL`
  from ToCosInstallEnv is that generated file, not the original);
- on the kernel line as `harvester.install.config_url` (pkg/config/read.go ReadConfig
  reads `harvester.*` arguments; pkg/config/rename.go also accepts `configurl` and
  `configUrl`).

The installer fetches it with `getURL` over http(s) through the proxy from the
environment, 30 tries 10 s apart (pkg/console/util.go retryRemoteConfig). We do the same
with our own bounds: size (the config loader's limit), timeout per try, tries, pause.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

from installer_ext.config import keys
from installer_ext.config.load import MAX_BYTES, read_yaml
from installer_ext.errors import BadInput, ExtError
from installer_ext.fsutil import read_input

log = logging.getLogger(__name__)

URL_ENV = "HARVESTER_STREAMDISK_CLOUDINIT_URL"
CMDLINE_PREFIX = "harvester.install."
CMDLINE_FIELD = "configUrl"  # the field it fills; any spelling the installer takes for it (config/keys.py)


@dataclass(frozen=True)
class Fetch:
    timeout: float = 15.0  # the installer's defaultHTTPTimeout (pkg/console/util.go)
    tries: int = 3
    pause: float = 2.0
    limit: int = MAX_BYTES


def cmdline_url(root: str) -> str | None:
    """`harvester.install.config_url` (any spelling rename.go accepts) from
    ROOT/proc/cmdline."""
    try:
        with open(os.path.join(root, "proc", "cmdline"), encoding="utf-8", errors="replace") as f:
            words = f.read().split()
    except OSError:
        return None
    found = None
    for w in words:
        name, sep, value = w.partition("=")
        if sep and name.lower().startswith(CMDLINE_PREFIX) and keys.is_spelling(name[len(CMDLINE_PREFIX):], CMDLINE_FIELD):
            found = value  # the last one wins, as the kernel's own parsing does
    return found or None


def locate(root: str, environ: dict[str, str] | None = None) -> str | None:
    """Where the original config is: the hook's environment first, then the kernel line."""
    env = os.environ if environ is None else environ
    return (env.get(URL_ENV) or "").strip() or cmdline_url(root)


def _local_path(url: str) -> str | None:
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme == "file":
        if parsed.netloc not in ("", "localhost"):
            raise BadInput(f"install config {url}: a file:// URL names a local file (file:///path)")
        return urllib.parse.unquote(parsed.path)
    if parsed.scheme == "" and url.startswith("/"):
        return url
    return None


def shown_url(url: str) -> str:
    """A URL without any user:password in it (it goes into messages and files)."""
    parts = urllib.parse.urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    return urllib.parse.urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


def _request(url: str) -> urllib.request.Request:
    """A GET; user:password in the URL becomes basic auth, as Go's http client does."""
    parts = urllib.parse.urlsplit(url)
    req = urllib.request.Request(shown_url(url))
    if parts.username is not None:
        import base64

        cred = f"{urllib.parse.unquote(parts.username)}:{urllib.parse.unquote(parts.password or '')}"
        req.add_header("Authorization", "Basic " + base64.b64encode(cred.encode()).decode())
    return req


def _fetch_http(url: str, how: Fetch) -> bytes:
    last = ""
    shown = shown_url(url)
    attempt = 0
    for attempt in range(1, how.tries + 1):
        try:
            # urlopen verifies TLS with the system's CAs and takes the proxy from the
            # environment, like the installer's newProxyClient.
            with urllib.request.urlopen(_request(url), timeout=how.timeout) as resp:  # noqa: S310 - scheme checked
                data = resp.read(how.limit + 1)
            if len(data) > how.limit:
                raise BadInput(f"install config {shown}: larger than {how.limit // 1024} KiB, not an install config")
            return data
        except urllib.error.HTTPError as exc:
            last = f"HTTP {exc.code} {exc.reason}"
            if 400 <= exc.code < 500 and exc.code not in (408, 429):
                break  # the server said no; asking again will not change it
        except urllib.error.URLError as exc:
            reason = exc.reason
            last = getattr(reason, "strerror", None) or str(reason)
            if "CERTIFICATE_VERIFY_FAILED" in str(reason):
                last = f"TLS certificate not trusted ({getattr(reason, 'verify_message', reason)})"
                break
        except (TimeoutError, OSError) as exc:
            last = f"timed out after {how.timeout:g} s" if isinstance(exc, TimeoutError) else (exc.strerror or str(exc))
        log.info("install config %s: %s (try %d of %d)", shown, last, attempt, how.tries)
        if attempt < how.tries:
            time.sleep(how.pause)
    raise ExtError(f"install config {shown}: cannot fetch it: {last} ({attempt} tr{'y' if attempt == 1 else 'ies'})")


def fetch(url: str, how: Fetch | None = None) -> Any:
    """The parsed original config at `url` (http, https, file://, or a path). BadInput
    for a config that is not one, ExtError for one that cannot be fetched; each one line
    naming the URL."""
    how = how or Fetch()
    path = _local_path(url)
    if path is not None:
        read_input(path, how.limit, "an install config")
        return read_yaml(path)
    scheme = urllib.parse.urlsplit(url).scheme
    if scheme not in ("http", "https"):
        raise BadInput(f"install config {shown_url(url)}: unsupported URL scheme {scheme or '(none)'!r}; expected http, https, file or a path")
    data = _fetch_http(url, how)
    with tempfile.NamedTemporaryFile(prefix="installer-ext-config-", suffix=".yaml") as tmp:
        tmp.write(data)
        tmp.flush()
        try:
            return read_yaml(tmp.name)
        except BadInput as exc:
            raise BadInput(*[line.replace(tmp.name, f"install config {shown_url(url)}") for line in exc.lines]) from None


def section_of(doc: Any) -> tuple[str, Any] | None:
    """The `pciPassthrough` key (any accepted spelling) and its value, if present."""
    from installer_ext.config.load import SECTION

    if isinstance(doc, dict):
        for k, v in doc.items():
            if keys.is_spelling(k, SECTION):
                return str(k), v
    return None
