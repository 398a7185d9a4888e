"""What confirming writes, in words: the lines of the preview screen (pure text).

Everything comes from the Plan of the choices about to be written, plus the YAML
itself. SR-IOV VFs are summed up per physical function so a host with thousands of
them gives a preview one can read.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import urwid

from installer_ext.config.rewrite import section_text
from installer_ext.plan import model as pm
from installer_ext.report import short_address
from installer_ext.tui.chrome import Footer, title_widget
from installer_ext.tui.session import SECTION, Session
from installer_ext.tui.words import device_words, shorten

log = logging.getLogger(__name__)


def _bind(e: pm.Passthrough) -> str:
    if e.bind_at_boot == pm.BIND_IDS:
        return f"by id {e.vendor_id}:{e.device_id}"
    return "by address"


def preview_lines(s: Session, output: str | None, config: str | None = None) -> list[tuple[str, str]]:
    """(style, text) lines; styles: head, text, warn, code. Leading spaces are the
    indent, kept for the wrapped part of a long line too. `config`: the install
    config the screen started from (written back with this section)."""
    p = s.plan
    f = s.facts
    out: list[tuple[str, str]] = []

    def head(t: str) -> None:
        out.append(("head", t))

    def line(t: str, style: str = "text") -> None:
        out.append((style, t))

    head(f"PCI passthrough: {'on' if p.enabled else 'off'}    GPU drivers / device plugin: {'on' if p.gpu_drivers else 'off'}")
    line("")
    head("Kernel arguments of the installed system")
    line("  " + (" ".join(p.kernel_args) if p.kernel_args else "(none added)"))
    if p.harvester_kernel_args:
        line("  already set by Harvester: " + " ".join(p.harvester_kernel_args))
    if p.kernel_args:
        line("  added by installer-ext: " + (" ".join(p.added_kernel_args) or "nothing"))
    line("")
    head("Bound to vfio-pci at every boot")
    plain = [e for e in p.passthrough if e.why != pm.WHY_SRIOV_VF]
    if not plain and not p.sriov:
        line("  nothing")
    by_group: dict[object, list[pm.Passthrough]] = {}
    for e in plain:
        by_group.setdefault((e.iommu_group is None, e.iommu_group), []).append(e)
    for (_, gid), entries in sorted(by_group.items(), key=lambda kv: (kv[0][0], kv[0][1] or 0)):
        pred = "*" if entries[0].group_predicted else ""
        line(f"  IOMMU group {'?' if gid is None else gid}{pred}:")
        for e in entries:
            dev = f.device(e.address)
            name = device_words(dev) if dev is not None else f"{e.vendor_id}:{e.device_id}"
            why = "selected" if e.why == pm.WHY_SELECTED else "same group"
            line(f"    {short_address(e.address)}  {name}  ({why}, {_bind(e)})")
    for sp in p.sriov:
        vfs = [e for e in p.passthrough if e.why == pm.WHY_SRIOV_VF and e.vf_of == sp.address]
        if sp.vfs_to_vfio and vfs:
            span = f" ({short_address(vfs[0].address)} .. {short_address(vfs[-1].address)})" if len(vfs) > 1 else ""
            line(f"  {short_address(sp.address)}: {len(vfs)} VFs{span}, by address")
    if any(e.group_predicted for e in plain):
        line("  * predicted group: checked again on the installed system before binding")
    line("")
    if p.sriov:
        head("SR-IOV at every boot")
        for sp in p.sriov:
            dest = "to vfio-pci for VMs" if sp.vfs_to_vfio else "left on the host driver"
            line(f"  {short_address(sp.address)}: {sp.num_vfs} of {sp.total_vfs} VFs, {dest}")
        line("")
    head("On the host for containers")
    if p.host_gpus:
        for a in p.host_gpus:
            dev = f.device(a)
            line(f"  {short_address(a)}  {device_words(dev) if dev else a}")
    else:
        line("  no GPU" if p.gpu_drivers else "  nothing (GPU drivers off)")
    line("  device plugin expected: " + (", ".join(p.device_plugins) if p.device_plugins else "none"))
    line("")
    head("Harvester at first boot")
    if p.settings:
        line("  settings: " + ", ".join(f"{k}={v}" for k, v in sorted(p.settings.items())))
    else:
        line("  settings: left alone")
    if p.addons:
        line("  addon: " + ", ".join(f"{k} {'enabled' if v else 'disabled'}" for k, v in sorted(p.addons.items())))
    else:
        line("  addon: left alone")
    line("  PCIDeviceClaims for the bound devices: " + ("yes" if p.claims else "no"))
    if p.warnings:
        line("")
        head("Warnings")
        for w in p.warnings:
            line("  " + shorten(w), "warn")
    line("")
    where = f"writes to {output}" if output else "prints on leaving the screen"
    if config:
        head(f"Enter {where}: {config} with this {SECTION} section")
    else:
        head(f"Enter {where}: this {SECTION} section")
    for t in section_text(s.section()).splitlines():
        line("  " + t, "code")
    return out


PREVIEW_FOOTERS = (
    "Up/Down/PgUp/PgDn scroll  Enter confirm and write  Esc back to the devices",
    "Arrows scroll  Enter confirm and write  Esc back",
    "Enter write  Esc back",
)


def _line(style: str, text: str) -> urwid.Widget:
    body = text.lstrip(" ")
    indent = 1 + len(text) - len(body)
    return urwid.AttrMap(urwid.Padding(urwid.Text(body), left=indent), style)


class Preview(urwid.WidgetWrap):
    """The confirmation screen: the preview lines in a scrolling list; Enter confirms
    and writes, Esc goes back to the devices."""

    def __init__(self, lines: list[tuple[str, str]], on_confirm: Callable[[], None], on_back: Callable[[], None]) -> None:
        self._on_confirm = on_confirm
        self._on_back = on_back
        self.lines = lines
        body = urwid.ListBox(urwid.SimpleFocusListWalker([_line(st, t) for st, t in lines]))
        self.message = Footer(PREVIEW_FOOTERS)
        frame = urwid.Frame(
            body,
            header=title_widget("Confirm: what will be written"),
            footer=self.message,
        )
        super().__init__(frame)

    def keypress(self, size, key):
        key = super().keypress(size, key)
        if key == "enter":
            self._on_confirm()
            return None
        if key == "esc":
            self._on_back()
            return None
        return key
