"""elemental's after-install hook: render the choices into the freshly installed system
and record what happened, whatever happened.

Runs on the installer ISO from the `after-install` stage of
/system/oem/92_installer_ext.yaml. elemental (v1.1.x pkg/action/install.go) runs that
stage after deploying the image, with COS_OEM mounted at /run/cos/oem and COS_PERSISTENT
at /run/cos/persistent; it ignores the hook's exit status unless strict mode is set
(pkg/action/common.go Hook), and Harvester does not set it. So every outcome is written
to the installed system (INSTALL_STATUS_FILE and its text), where the node shows it at
every boot and `installer-ext status` reads it.

Where things come from:
- the choices: the install screen's output (/run/installer-ext/choices.yaml), else the
  `pciPassthrough` section of the user's original config (`original`);
- the `install` keys (device, dataDisk, managementInterface): `$HARVESTER_CONFIG`, the
  installer's own marshal (`installer_config`), which says what was really installed;
  the original's when the installer's copy is not there (a manual run).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Any

from installer_ext import paths
from installer_ext.config import keys
from installer_ext.config.load import SECTION, parse_config, read_yaml
from installer_ext.errors import BadInput, ExtError, Refused
from installer_ext.install import installer_config, original
from installer_ext.render.artifacts import Artifact
from installer_ext.render.record import FAILED, NOTHING_ASKED, REFUSED, RENDERED, InstallRecord
from installer_ext.render.write import RenderSet, Written, write_set
from installer_ext.render.yamldoc import dump

log = logging.getLogger(__name__)

DEFAULT_CHOICES = "/run/installer-ext/choices.yaml"


@dataclass(frozen=True)
class HookInputs:
    root: str  # the machine (sys/, proc/)
    target: paths.Target
    choices: str | None = None  # the screen's output
    installer_config: str | None = None  # $HARVESTER_CONFIG
    original_url: str | None = None
    app: bytes | None = None
    runtime: str | None = None
    fetch: original.Fetch = field(default_factory=original.Fetch)


@dataclass(frozen=True)
class HookResult:
    record: InstallRecord
    written: list[Written]


def _install_keys(inputs: HookInputs, original_doc: Any) -> Any:
    if inputs.installer_config:
        return installer_config.install_section(inputs.installer_config)
    if isinstance(original_doc, dict):
        return next((v for k, v in original_doc.items() if keys.is_spelling(k, "install")), None)
    return None


def _document(inputs: HookInputs) -> tuple[dict[str, Any], str | None, str | None]:
    """(the document to plan from, where the section came from, which file/URL)."""
    original_doc = None
    if inputs.original_url:
        original_doc = original.fetch(inputs.original_url, inputs.fetch)
    if inputs.choices:
        chosen = read_yaml(inputs.choices)
        found = original.section_of(chosen)
        if found is None:
            raise BadInput(f"{inputs.choices}: no {SECTION} section")
        section, source, where = found[1], "screen", inputs.choices
    else:
        found = original.section_of(original_doc)
        if found is None:
            return {}, None, None
        section, source, where = found[1], "config", original.shown_url(inputs.original_url or "")
    doc: dict[str, Any] = {SECTION: section}
    install = _install_keys(inputs, original_doc)
    if install is not None:
        doc["install"] = install
    return doc, source, where


def _write_record(inputs: HookInputs, record: InstallRecord, with_app: bool) -> list[Written]:
    s = RenderSet(None, record, inputs.app if with_app else None, inputs.runtime if with_app else None)
    return write_set(s, inputs.target)


def run_hook(inputs: HookInputs) -> HookResult:
    """Plan and render; record every outcome on the target. Raises the error of a
    refused or failed outcome after recording it."""
    from installer_ext.host.facts import gather
    from installer_ext.plan.planner import make_plan

    source = where = None
    try:
        doc, source, where = _document(inputs)
        if source is None:
            record = InstallRecord(NOTHING_ASKED)
            return HookResult(record, _write_record(inputs, record, with_app=False))
        cfg = parse_config(doc, where or "<config>")
        plan = make_plan(gather(inputs.root), cfg.choices, cfg.install)
    except (BadInput, ExtError, OSError) as exc:
        lines = exc.lines if isinstance(exc, ExtError) else [f"{exc.filename or ''}: {exc.strerror or exc}"]
        record = InstallRecord(FAILED, source, where, tuple(lines))
        _record_or_add(inputs, record, exc)
        raise
    if plan.fatal_refusals:
        lines = tuple(f"refused: {r.address or 'host'}: {r.reason}" for r in plan.fatal_refusals)
        record = InstallRecord(REFUSED, source, where, lines, tuple(plan.warnings))
        err = Refused(*lines, "nothing but this record was written")
        _record_or_add(inputs, record, err)
        raise err
    record = InstallRecord(RENDERED, source, where, (), tuple(plan.warnings))
    planned = dump({"install": doc.get("install"), SECTION: doc[SECTION]},
                   f"The config installer-ext planned from at install time ({source}).")
    s = RenderSet(plan, record, inputs.app, inputs.runtime, (Artifact(paths.MERGED_CONFIG_FILE, planned, 0o600),))
    written = write_set(s, inputs.target)
    log.info("install hook: %s choices, %d files", source, len(written))
    return HookResult(record, written)


def _record_or_add(inputs: HookInputs, record: InstallRecord, err: BaseException) -> None:
    """Write the record of a failed outcome; if even that fails, say so on the error."""
    try:
        _write_record(inputs, record, with_app=True)
    except (ExtError, OSError) as exc:
        more = exc.lines if isinstance(exc, ExtError) else [str(exc)]
        if isinstance(err, ExtError):
            err.lines.extend(f"and the install record could not be written: {m}" for m in more)


def default_choices() -> str | None:
    return DEFAULT_CHOICES if os.path.exists(DEFAULT_CHOICES) else None
