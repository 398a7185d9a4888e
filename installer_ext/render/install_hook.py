"""The install hook: render the choices into a freshly installed system.

Runs on the installer ISO from an elemental `after-install` yip stage, with the target's
OEM partition mounted. The choices come from the install screen (its output file) or,
unattended, from the `pciPassthrough` section of the Harvester config the install used
($HARVESTER_CONFIG, exported by the Harvester installer to harv-install and so to
elemental's hooks). The screen's choices are planned together with that config's
`install` section, which by now names the management NIC and the disks.
"""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass

from installer_ext import paths
from installer_ext.config.load import SECTION, parse_config, read_yaml
from installer_ext.errors import BadInput, Refused
from installer_ext.fsutil import atomic_write
from installer_ext.host.facts import gather
from installer_ext.plan.planner import make_plan
from installer_ext.render.write import Written, write_target

log = logging.getLogger(__name__)

DEFAULT_CHOICES = "/run/installer-ext/choices.yaml"
CONFIG_ENV = "HARVESTER_CONFIG"
MERGED_CONFIG_FILE = "oem/installer-ext/install-config.yaml"


@dataclass
class HookResult:
    source: str  # "screen", "config" or "none"
    written: list[Written]
    warnings: list[str]


def _section_source(choices_path: str | None, config_path: str | None) -> tuple[dict, str]:
    """The document to plan from, and where its section came from."""
    config_doc: dict = {}
    if config_path:
        doc = read_yaml(config_path)
        if not isinstance(doc, dict):
            raise BadInput(f"{config_path}: the top level is not a mapping")
        config_doc = doc
    if choices_path:
        chosen = read_yaml(choices_path)
        if not isinstance(chosen, dict) or not any(k.replace("_", "").lower() == SECTION.lower() for k in map(str, chosen)):
            raise BadInput(f"{choices_path}: no {SECTION} section")
        merged = {k: v for k, v in config_doc.items() if str(k).replace("_", "").lower() != SECTION.lower()}
        merged.update(chosen)
        return merged, "screen"
    if any(str(k).replace("_", "").lower() == SECTION.lower() for k in config_doc):
        return config_doc, "config"
    return {}, "none"


def run_hook(
    root: str,
    target: str | None,
    oem: str | None,
    choices: str | None,
    config: str | None,
    app: str | None,
) -> HookResult:
    if choices is None and os.path.exists(DEFAULT_CHOICES):
        choices = DEFAULT_CHOICES
    if config is None:
        config = os.environ.get(CONFIG_ENV) or None
    if config is None and target and os.path.exists(paths.under(target, "oem/harvester.config")):
        config = paths.under(target, "oem/harvester.config")
    doc, source = _section_source(choices, config)
    if source == "none":
        return HookResult("none", [], [])
    cfg = parse_config(doc, choices or config or "<config>")
    facts = gather(root)
    plan = make_plan(facts, cfg.choices, cfg.install)
    if plan.fatal_refusals:
        raise Refused(*[f"refused: {r.address or 'host'}: {r.reason}" for r in plan.fatal_refusals], "nothing written")

    with tempfile.TemporaryDirectory(prefix="installer-ext-target-") as scratch:
        if oem is not None:
            # The OEM partition is mounted on its own (elemental: /run/cos/oem): give
            # write_target a root whose oem/ is that mount.
            if not os.path.isdir(oem):
                raise BadInput(f"--oem {oem}: no such directory")
            os.symlink(os.path.abspath(oem), os.path.join(scratch, "oem"))
            base = scratch
        elif target is not None:
            base = target
        else:
            raise BadInput("give --target (the installed system's root) or --oem (its OEM partition)")
        written = write_target(plan, base)
        import yaml

        text = "# The config installer-ext planned from at install time (" + source + ").\n"
        text += yaml.safe_dump(doc, sort_keys=False)
        changed = atomic_write(paths.under(base, MERGED_CONFIG_FILE), text, 0o600)
        written.append(Written(MERGED_CONFIG_FILE, changed))
        if app:
            with open(app, "rb") as f:
                data = f.read()
            written.append(Written(paths.APP_FILE, atomic_write(paths.under(base, paths.APP_FILE), data, 0o755)))
    log.info("install hook: %s choices, %d files", source, len(written))
    return HookResult(source, written, plan.warnings)


def running_app() -> str | None:
    """The .pyz this process runs from, to copy into the target for the node's units."""
    import sys

    main = os.path.abspath(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    return main if main.endswith(".pyz") and os.path.isfile(main) else None


__all__ = ["run_hook", "running_app", "HookResult"]
