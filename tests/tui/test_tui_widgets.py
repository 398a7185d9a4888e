"""Widget tests: the form and the preview rendered to a canvas at fixed sizes, driven
by keypress, no terminal. `screen` keeps the last canvas of each widget, as the
terminal display does (see test_tui_redraw.py: urwid 5.0.1 redraws wrongly otherwise
unseen)."""

from __future__ import annotations

import pytest
import urwid
from urwid.testing import press, render_runs, render_text, resolve_attr

from installer_ext.config.model import Choices, SriovChoice
from installer_ext.tui import hints
from installer_ext.tui.devicelist import RowLayout
from installer_ext.tui.form import Form
from installer_ext.tui.palette import PALETTE
from installer_ext.config.rewrite import section_text
from installer_ext.tui.preview import Preview, preview_lines

SMALL, BIG = (80, 24), (200, 60)


class Calls:
    def __init__(self) -> None:
        self.names: list[str] = []

    def __getattr__(self, name):
        return lambda *a: self.names.append(name)


def make_form(session):
    calls = Calls()
    return Form(session, calls.next, calls.back), calls


_held: dict[int, urwid.Canvas] = {}


def screen(w, size=SMALL) -> list[str]:
    canvas = w.render(size, focus=True)
    _held[id(w)] = canvas  # as urwid's raw display keeps `_screen_buf_canvas`
    return [row.decode("utf-8") for row in canvas.text]


def flat(rows: list[str]) -> str:
    """The screen as one line of words (wrapped sentences joined)."""
    return " ".join(" ".join(r.split()) for r in rows)


def details(form, size=SMALL) -> str:
    rows = screen(form, size)
    i = next(i for i, row in enumerate(rows) if row.startswith("-" * 20))
    return rows[i + 1]


def row_of(rows: list[str], short: str) -> str:
    return next(r for r in rows if f" {short} " in r[:16])


def go_to(form, address: str, size=SMALL) -> None:
    short = address[5:]
    press(form, size, "tab") if form.body.focus_position != 3 else None
    for key in ("down", "up"):
        for _ in range(60):
            if details(form, size).startswith(f" {short} "):
                return
            press(form, size, key)
    raise AssertionError(f"{address} not reachable:\n" + "\n".join(screen(form, size)))


@pytest.mark.parametrize("size", [SMALL, BIG])
def test_the_form_fills_the_screen_with_title_host_switches_list_and_footer(session_of, size):
    form, _ = make_form(session_of("intel-workstation"))
    rows = screen(form, size)
    assert len(rows) == size[1] and all(len(r) == size[0] for r in rows)
    assert rows[0].startswith(" GPU drivers / PCI passthrough")
    assert rows[1].startswith(" CPU Intel, VT-x on | IOMMU on (12 groups) | interrupt remapping on")
    assert any("[ ] Enable PCI passthrough" in r and "[ ] Install GPU drivers / device plugin" in r for r in rows)
    assert any(r.startswith("-- IOMMU group 1, 3 functions, 1 bridge not shown") for r in rows)
    assert not any(" 00:00.0 " in r for r in rows)  # a host bridge: never bound, not listed...
    assert "b shows 5 bridges" in flat(rows)
    # The focus starts on the first switch: the details and the keys are about it.
    assert details(form, size).startswith(" Enable PCI passthrough: off (Space turns it on)")
    assert "Space on/off" in rows[-1] and "Enter next" in rows[-1] and "Esc back" in rows[-1]
    nvidia = row_of(rows, "01:00.0")
    assert nvidia.startswith("[ ] 01:00.0   gpu     NVIDIA GA102")
    assert "nvidia" in nvidia and nvidia.rstrip().endswith("can go to VMs")


def test_b_shows_and_hides_the_bridges(session_of):
    form, _ = make_form(session_of("intel-workstation"))
    press(form, SMALL, "tab", "b", "home")
    rows = screen(form)
    assert any(r.startswith("-- IOMMU group 0, 1 function") for r in rows)
    assert row_of(rows, "00:00.0").rstrip().endswith("host/ISA bridge")
    assert "b hides 5 bridges" in flat(rows)
    press(form, SMALL, "b")
    assert not any(" 00:00.0 " in r for r in screen(form))


def test_space_on_the_gpu_selects_its_group_and_the_panel_says_so(session_of):
    form, _ = make_form(session_of("intel-workstation"))
    press(form, SMALL, " ")  # the focus starts on "Enable PCI passthrough"
    assert form.session.choices.enabled
    go_to(form, "0000:01:00.0")
    press(form, SMALL, " ")
    rows = screen(form, SMALL)
    assert row_of(rows, "01:00.0").startswith("[x]")
    assert row_of(rows, "01:00.1").startswith("[x]")
    assert "to VMs with 01:00.0" in row_of(rows, "01:00.1")
    text = flat(rows)
    assert "whole IOMMU group 1" in text
    assert "2 to VMs" in text


def test_space_on_a_blocked_device_shows_the_reason_in_the_red_panel(session_of):
    form, _ = make_form(session_of("intel-workstation", Choices(enabled=True)))
    go_to(form, "0000:00:02.0")
    assert "Blocked: boot display (boot_vga): the console would go dark" in flat(screen(form))
    press(form, SMALL, " ")
    runs = render_runs(form, SMALL, focus=True)
    red = ["".join(t for a, t in row if a == "error") for row in runs]
    red_text = " ".join(x.strip() for x in red if x.strip())
    assert "cannot be given to VMs" in red_text and "boot display" in red_text
    assert form.session.choices.devices == ()


def test_focused_row_has_a_visible_focus_without_colour(session_of):
    form, _ = make_form(session_of("intel-workstation", Choices(enabled=True)))
    go_to(form, "0000:01:00.0")
    runs = render_runs(form, SMALL, focus=True)
    focused = next(row for row in runs if any(" 01:00.0 " in t for _, t in row))
    attrs = {a for a, t in focused if t.strip()}
    assert attrs and all(a.endswith("focus") for a in attrs)
    for a in attrs:
        assert resolve_attr(a, PALETTE, colors=1).standout
        assert resolve_attr(a, PALETTE, colors=16).background != "black"


def test_filter_narrows_the_list_and_esc_clears_it(session_of):
    form, _ = make_form(session_of("intel-workstation"))
    press(form, SMALL, "tab", "/", "n", "v", "m", "e")
    rows = screen(form)
    listed = [r for r in rows if r[4:11] in ("00:17.0", "02:00.0", "01:00.0")]
    assert [r[4:11] for r in listed] == ["02:00.0"]
    assert any("1 of 19 match" in r for r in rows)
    assert any("Filter: nvme" in r for r in rows)
    press(form, SMALL, "enter")  # leaves the filter, keeps it
    assert form.needle == "nvme" and not form.filter_focused
    press(form, SMALL, "esc")  # clears it first, does not leave
    assert form.needle == ""
    assert any("19 functions" in r for r in screen(form))


def test_filter_matches_state_words(session_of):
    form, _ = make_form(session_of("intel-workstation", Choices(enabled=True)))
    press(form, SMALL, "tab", "/", *"boot display")
    rows = screen(form)
    assert any("1 of 19 match" in r for r in rows)
    assert row_of(rows, "00:02.0")


def test_esc_once_warns_and_twice_leaves(session_of):
    form, calls = make_form(session_of("intel-workstation"))
    press(form, SMALL, "esc")
    assert calls.names == []
    assert "Esc again leaves" in flat(screen(form))
    press(form, SMALL, "down")
    press(form, SMALL, "esc")
    assert calls.names == []  # another key in between: asks again
    press(form, SMALL, "esc")
    assert calls.names == ["back"]


def test_enter_goes_on_from_the_list_and_from_the_vf_count(session_of):
    form, calls = make_form(session_of("amd-epyc-server", Choices(enabled=True)))
    press(form, SMALL, "enter")
    assert calls.names == ["next"]


def test_vf_count_field_validates_against_the_maximum(session_of):
    form, _ = make_form(session_of("amd-epyc-server", Choices(enabled=True)))
    go_to(form, "0000:02:00.0")
    press(form, SMALL, "down")  # the "VFs at boot" line under the PF
    press(form, SMALL, "9", "9")
    text = flat(screen(form))
    assert "numVfs: 99 is more than 0000:02:00.0 supports (sriov_totalvfs 64)" in text
    assert "VFs at boot: 99" in text
    press(form, SMALL, "backspace")
    assert form.session.choices.sriov == (SriovChoice("0000:02:00.0", 9, True, "pciPassthrough.sriov[0]"),)
    assert not form.session.errors
    press(form, SMALL, "right", " ")  # to the "VFs to VMs" box, untick it
    assert form.session.choices.sriov[0].vfs_to_vfio is False
    assert "at boot 9 on host" in "\n".join(screen(form))
    press(form, SMALL, "left")  # back to the count: a letter is not taken
    assert press(form, SMALL, "x") == ["x"]
    assert form.session.choices.sriov[0].num_vfs == 9 and "VFs at boot: 9 " in flat(screen(form))


@pytest.mark.slow
def test_vfs_fold_under_their_pf_on_a_big_host(session_of):
    s = session_of("big")
    form, _ = make_form(s)
    rows = screen(form)
    assert any("4101 functions" in r for r in rows)
    assert len(form.walker.entries) < 100  # 4064 VFs folded away
    pf = "0000:20:00.0"
    go_to(form, pf)
    press(form, SMALL, "right")  # unfolds and goes to the "VFs at boot" line
    assert sum(1 for e in form.walker.entries if e.kind == "vf") == 254
    assert form.walker.focus_entry().kind == "sriov"
    press(form, SMALL, "down")  # the first VF
    rows = screen(form)
    assert details(form).startswith(" 20:01.0 8086:1889 group 20 ")
    assert any(r.startswith("      20:01.0 nic") and "VF, host driver iavf" in r for r in rows)
    press(form, SMALL, "left")
    assert sum(1 for e in form.walker.entries if e.kind == "vf") == 0
    assert details(form).startswith(" 20:00.0 ")


@pytest.mark.slow
def test_page_keys_keep_the_focused_row_on_screen(session_of):
    form, _ = make_form(session_of("big"))
    go_to(form, "0000:20:00.0")
    press(form, SMALL, "right")
    for _ in range(12):
        press(form, SMALL, "page down")
        rows = screen(form)
        focus = details(form).split()[0]
        i = next(i for i, r in enumerate(rows) if r.startswith("-" * 20))
        assert any(f" {focus} " in r[:16] for r in rows[:i]), "\n".join(rows)
    press(form, SMALL, "end")
    assert details(form).startswith(" 3e:00.0 ")
    press(form, SMALL, "home")
    assert details(form).startswith(" 00:17.0 ")  # the first function that is not a bridge


@pytest.mark.parametrize("machine", ["intel-workstation", "intel-workstation-iommu-off", "amd-epyc-server", "no-iommu-desktop"])
def test_the_host_state_line_fits_80_columns(session_of, machine):
    form, _ = make_form(session_of(machine))
    rows = screen(form)
    assert rows[1].startswith(" CPU ") and rows[2].startswith(" ")  # one line, the next one indented
    assert rows[1].rstrip().endswith(("remapping on", "remapping OFF", "remapping unknown"))


def test_widths_stay_inside_narrow_and_wide_screens(session_of):
    s = session_of("amd-epyc-server")
    layout = RowLayout(s.facts.devices)
    for cols in (60, 80, 132, 200):
        widths = layout.widths(cols)
        assert widths is not None and sum(widths) + 5 == cols
    assert layout.widths(30) is None  # too narrow: urwid's own sharing
    form, _ = make_form(s)
    for size in ((60, 20), (80, 24), (200, 60)):
        rows = screen(form, size)
        assert len(rows) == size[1] and all(len(r) == size[0] for r in rows)


def test_preview_lists_exactly_what_will_be_written(session_of):
    s = session_of("intel-workstation", Choices(enabled=True, gpu_drivers=True))
    s.toggle("0000:01:00.0")
    lines = [t for _, t in preview_lines(s, "/out.yaml")]
    text = "\n".join(lines)
    assert "  " + " ".join(s.plan.kernel_args) in lines and "intel_iommu=on" in s.plan.kernel_args
    assert "    01:00.0  NVIDIA GA102 [GeForce RTX 3080]  (selected, by id 10de:2206)" in lines
    assert "    01:00.1  NVIDIA GA102 High Definition Audio Controller  (same group, by id 10de:1aef)" in lines
    assert "  settings: gpu-enable=true, pci-pt-enable=true" in lines
    assert "  addon: pcidevices-controller enabled" in lines
    assert "  device plugin expected: none" in lines
    head = "Enter writes to /out.yaml: this pciPassthrough section"
    assert head in text
    yaml_lines = [line[2:] for line in lines[lines.index(head) + 1 :]]
    assert "\n".join(yaml_lines) + "\n" == section_text(s.section())


@pytest.mark.slow
def test_preview_sums_up_thousands_of_vfs(session_of):
    s = session_of("big", Choices(enabled=True))
    assert s.set_sriov("0000:20:00.0", 200, True).ok
    lines = [t for _, t in preview_lines(s, None)]
    assert "  20:00.0: 200 VFs (20:01.0 .. 20:19.7), by address" in lines
    assert "  20:00.0: 200 of 256 VFs, to vfio-pci for VMs" in lines
    assert len(lines) < 60


def test_preview_keys_confirm_and_back(session_of):
    s = session_of("intel-workstation")
    calls = Calls()
    p = Preview(preview_lines(s, None), calls.confirm, calls.back)
    rows = render_text(p, SMALL, focus=True)
    assert rows[0].startswith(" Confirm: what will be written")
    assert "Enter confirm and write" in rows[-1]
    press(p, SMALL, "page down", "enter", "esc")
    assert calls.names == ["confirm", "back"]


def test_switch_refused_by_the_planner_goes_back_off(session_of):
    form, _ = make_form(session_of("no-iommu-desktop"))
    press(form, SMALL, " ")
    assert not form.sw_enabled.get_state()
    assert "no IOMMU on this host" in flat(screen(form))


def test_every_palette_entry_has_a_mono_form():
    for name, _fg, bg, mono in PALETTE:
        assert isinstance(resolve_attr(name, PALETTE, colors=1), urwid.AttrSpec)
        if name.endswith("focus") or name in ("title", "footer", "error"):
            assert mono, name
        # The Linux console blinks bright backgrounds: only the 8 dark ones are used.
        assert bg in ("black", "dark blue", "dark red", "light gray", "dark cyan", "dark green", "brown", "dark magenta")


@pytest.mark.parametrize("size", [(40, 10), (20, 5), (80, 8), (1, 1)])
def test_tiny_terminals_draw_without_error(session_of, size):
    s = session_of("intel-workstation")
    form, _ = make_form(s)
    for w in (form, Preview(preview_lines(s, None), Calls().confirm, Calls().back)):
        rows = screen(w, size)
        assert len(rows) == size[1] and all(len(r) == size[0] for r in rows)


def test_the_details_and_the_keys_follow_the_focus(session_of):
    form, _ = make_form(session_of("intel-workstation"))
    assert details(form).startswith(" Enable PCI passthrough: off")
    press(form, SMALL, "right")
    assert details(form).startswith(" Install GPU drivers / device plugin: off")
    press(form, SMALL, "tab")  # to the list: the first function
    rows = screen(form)
    assert details(form).startswith(" 01:00.0 10de:2206 group 1 ")
    assert "Space select" in rows[-1] and "Space on/off" not in rows[-1]
    press(form, SMALL, "/")
    rows = screen(form)
    assert details(form).startswith(" Filter: type part of an address")
    assert "Esc clear" in rows[-1]


def test_right_on_a_physical_function_goes_to_its_vf_count_even_without_vfs(session_of):
    form, _ = make_form(session_of("amd-epyc-server", Choices(enabled=True)))
    go_to(form, "0000:02:00.1")  # SR-IOV capable, no VFs made yet
    assert "Right VFs at boot" in screen(form)[-1]
    press(form, SMALL, "right")
    assert form.walker.focus_entry().kind == "sriov"
    text = flat(screen(form))
    assert "VFs made at every boot" in text and " 0-9 " in screen(form)[-1]
    press(form, SMALL, "4")
    assert form.session.sriov_choice("0000:02:00.1").num_vfs == 4


def test_a_digit_typed_on_a_physical_function_goes_into_its_vf_count(session_of):
    form, _ = make_form(session_of("amd-epyc-server", Choices(enabled=True)))
    go_to(form, "0000:02:00.1")
    press(form, SMALL, "1", "2")
    assert form.session.sriov_choice("0000:02:00.1").num_vfs == 12
    assert "at boot 12 for VMs" in flat(screen(form))


def test_at_60_columns_the_switches_stack_and_stay_whole(session_of):
    form, _ = make_form(session_of("intel-workstation"))
    rows = screen(form, (60, 15))
    assert any(r.startswith(" [ ] Enable PCI passthrough") for r in rows)
    assert any(r.startswith(" [ ] Install GPU drivers / device plugin") for r in rows)
    assert "Up/Down switch" in rows[-1]  # from the first frame: the keys of the stacked switches
    press(form, (60, 15), "down", " ")  # stacked: Down reaches the second switch
    assert form.session.choices.gpu_drivers
    press(form, (60, 15), "tab")
    rows = screen(form, (60, 15))
    assert sum(1 for r in rows if r[4:11] in ("01:00.0", "01:00.1", "00:02.0")) >= 2  # the list has rows
    # Side by side again where they fit.
    rows = screen(form, SMALL)
    assert any("[ ] Enable PCI passthrough" in r and "[X] Install GPU drivers" in r for r in rows)


def test_changing_the_filter_clears_a_message_about_another_row(session_of):
    form, _ = make_form(session_of("intel-workstation", Choices(enabled=True)))
    go_to(form, "0000:00:02.0")
    press(form, SMALL, " ")
    assert "cannot be given to VMs" in flat(screen(form))
    press(form, SMALL, "/", "n")
    assert "cannot be given to VMs" not in flat(screen(form))
    assert form.message.lines == []


def test_a_pending_error_stays_when_the_filter_changes(session_of):
    form, _ = make_form(session_of("amd-epyc-server", Choices(enabled=True)))
    go_to(form, "0000:02:00.0")
    press(form, SMALL, "9", "9")
    assert "sriov_totalvfs 64" in flat(screen(form))
    press(form, SMALL, "up", "/", "x")
    assert "sriov_totalvfs 64" in flat(screen(form))


def test_emptying_the_filter_keeps_the_row_found_with_it(session_of):
    form, _ = make_form(session_of("intel-workstation"))
    press(form, SMALL, "tab", "/", *"nvme", "enter")
    assert details(form).startswith(" 02:00.0 ")
    press(form, SMALL, "esc")
    assert form.needle == "" and details(form).startswith(" 02:00.0 ")
    assert any("19 functions" in r for r in screen(form))


def test_the_leave_question_goes_away_with_the_next_key(session_of):
    form, calls = make_form(session_of("intel-workstation"))
    press(form, SMALL, "esc")
    assert "Esc again leaves" in flat(screen(form))
    press(form, SMALL, "tab")
    assert "Esc again leaves" not in flat(screen(form)) and calls.names == []


def test_unsafe_interrupts_are_offered_where_interrupt_remapping_is_off(session_of):
    form, _ = make_form(session_of("ir-off", Choices(enabled=True)))
    assert form.sw_unsafe is not None
    rows = screen(form)
    assert any(f"[ ] {hints.SWITCH_UNSAFE}" in r for r in rows)
    press(form, SMALL, "down")  # the third switch is on the next row at 80 columns
    assert details(form).startswith(f" {hints.SWITCH_UNSAFE}: off")
    assert "no interrupt remapping" in flat(screen(form))
    press(form, SMALL, " ")
    assert form.session.choices.allow_unsafe_interrupts


def test_unsafe_interrupts_are_not_offered_where_remapping_is_on_even_if_the_config_sets_them(session_of):
    form, _ = make_form(session_of("intel-workstation", Choices(enabled=True, allow_unsafe_interrupts=True)))
    assert form.sw_unsafe is None
    assert "unsafe" not in flat(screen(form)).lower().replace("allowunsafeinterrupts", "")
    assert form.session.section()["allowUnsafeInterrupts"] is True  # the config's value is written back as it was


def test_every_key_line_has_a_variant_for_80_and_for_60_columns():
    for name in dir(hints):
        if name.startswith("KEYS_"):
            variants = getattr(hints, name)
            assert [len(v) for v in variants] == sorted((len(v) for v in variants), reverse=True), name
            assert any(len(v) + 1 <= 80 for v in variants[:-1]), name
            assert any(len(v) + 1 <= 60 for v in variants[:-1]), name


def test_a_wrapped_details_line_keeps_its_indent(session_of):
    form, _ = make_form(session_of("intel-workstation"))
    rows = screen(form, (60, 24))
    i = next(i for i, r in enumerate(rows) if r.startswith("-" * 20))
    assert rows[i + 2].startswith(" IOMMU kernel arguments") and rows[i + 3].startswith(" ")
