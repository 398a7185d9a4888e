"""What the install did, kept on the node: the install status record.

Written with every outcome of the install hook (and by `render`), to
INSTALL_STATUS_FILE (JSON, read by `installer-ext status`) and INSTALL_STATUS_TEXT (the
same in words: the journal shows it every boot, a login shell shows it when it is not
good news). Keys of the JSON are a contract:
  {"version": 1, "outcome": "rendered"|"refused"|"failed"|"nothing-asked",
   "ok": bool, "source": "screen"|"config"|"render"|null, "config": str|null,
   "reason": [str], "warnings": [str], "at": iso-time|null}
`render` records no time (two renders of the same plan give the same bytes); the install
hook records when it ran.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from installer_ext import paths
from installer_ext.clock import utc_now_iso as now

RECORD_VERSION = 1
STATUS_COMMAND = f"{paths.node_path(paths.LAUNCHER_FILE)} status"

RENDERED = "rendered"
REFUSED = "refused"
FAILED = "failed"
NOTHING_ASKED = "nothing-asked"
OUTCOMES = (RENDERED, REFUSED, FAILED, NOTHING_ASKED)

_HEADLINES = {
    RENDERED: "GPU / PCI passthrough was set up by the install",
    REFUSED: "GPU / PCI passthrough was NOT set up: the install refused the choices",
    FAILED: "GPU / PCI passthrough was NOT set up: the install step failed",
    NOTHING_ASKED: "no GPU / PCI passthrough was asked for at install time",
}


@dataclass(frozen=True)
class InstallRecord:
    outcome: str
    source: str | None = None
    config: str | None = None
    reason: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    at: str | None = field(default_factory=now)

    @property
    def ok(self) -> bool:
        return self.outcome in (RENDERED, NOTHING_ASKED)

    def to_json(self) -> dict[str, Any]:
        return {
            "version": RECORD_VERSION,
            "outcome": self.outcome,
            "ok": self.ok,
            "source": self.source,
            "config": self.config,
            "reason": list(self.reason),
            "warnings": list(self.warnings),
            "at": self.at,
        }

    def json_bytes(self) -> bytes:
        return (json.dumps(self.to_json(), indent=2, sort_keys=True) + "\n").encode()

    def lines(self) -> list[str]:
        out = [f"installer-ext: {_HEADLINES[self.outcome]}" + (f" ({self.at})" if self.at else "")]
        if self.source:
            out.append(f"installer-ext:   choices from the {self.source}" + (f" ({self.config})" if self.config else ""))
        out += [f"installer-ext:   {r}" for r in self.reason]
        out += [f"installer-ext:   warning: {w}" for w in self.warnings]
        if not self.ok:
            out.append(f"installer-ext:   details: {STATUS_COMMAND}")
        return out

    def text_bytes(self) -> bytes:
        return ("\n".join(self.lines()) + "\n").encode()

    @classmethod
    def from_json(cls, doc: Any) -> InstallRecord | None:
        """The record, or None when `doc` is not a version-1 record."""
        if not isinstance(doc, dict) or doc.get("version") != RECORD_VERSION or doc.get("outcome") not in OUTCOMES:
            return None

        def strs(key: str) -> tuple[str, ...]:
            v = doc.get(key)
            return tuple(x for x in v if isinstance(x, str)) if isinstance(v, list) else ()

        def opt(key: str) -> str | None:
            v = doc.get(key)
            return v if isinstance(v, str) else None

        return cls(doc["outcome"], opt("source"), opt("config"), strs("reason"), strs("warnings"), opt("at"))
