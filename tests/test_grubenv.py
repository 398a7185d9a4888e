"""The grubenv module against the real `grub-editenv`: it reads a block as GRUB reads it,
gives back every line it does not edit byte for byte, edits only its own variables, and
writes blocks that grub-editenv (and so harv-install) can still read and edit."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from installer_ext.grubline import EXTRA_VAR, RECORD_VAR, THIRD_PARTY_VAR, Bootargs
from installer_ext.render.grubenv import DEFAULT_SIZE, HEADER, GrubenvError, merge_kernel_args, parse
from tests.harvester_boot import editenv, editenv_pairs, grub_variables

WANTED = ["intel_iommu=on", "iommu=pt", "vfio_iommu_type1.allow_unsafe_interrupts=1", "video=efifb:off"]
ADDED = ["vfio_iommu_type1.allow_unsafe_interrupts=1", "video=efifb:off"]


def block(tmp_path, *assignments: str | bytes) -> str:
    path = str(tmp_path / "grubenv")
    editenv(path, "create")
    if assignments:
        editenv(path, "set", *assignments)
    return path


def write(path: str, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)


def read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def raw_block(*lines: bytes, size: int = DEFAULT_SIZE) -> bytes:
    body = b"".join(lines)
    return HEADER + body + b"#" * (size - len(HEADER) - len(body))


# -- reading as GRUB does ---------------------------------------------------------------

NAMES = st.sampled_from(["a", "x", "third_party_kernel_args", "extra_cmdline", "saved_entry", "n.1", "A_b"])
VALUES = st.binary(max_size=40).filter(lambda v: b"\n" not in v and b"\0" not in v)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(items=st.lists(st.tuples(NAMES, VALUES), max_size=6))
def test_variables_are_what_grub_editenv_lists(tmp_path, items):
    path = block(tmp_path)
    for name, value in items:  # one `set` each: grub-editenv escapes as GRUB does
        editenv(path, "set", name.encode() + b"=" + value)
    data = read(path)
    parsed = parse(data, path)
    assert [(n.encode(), v.encode("utf-8", "surrogateescape")) for n, v in parsed.pairs()] == editenv_pairs(path)
    assert parsed.to_bytes() == data


def test_escaped_backslashes_and_newlines_are_values(tmp_path):
    path = block(tmp_path, "weird=a\\b", "nl=one\ntwo", "third_party_kernel_args=quiet")
    parsed = parse(read(path), path)
    assert parsed.variables() == {"weird": "a\\b", "nl": "one\ntwo", THIRD_PARTY_VAR: "quiet"}
    merged = merge_kernel_args(read(path), ["x=1"], path, Bootargs((), True))
    write(path, merged.data)
    editenv(path, "set", "after=1")  # harv-install's step still works
    listed = editenv(path, "list").decode()
    assert "weird=a\\b\nnl=one\ntwo\nthird_party_kernel_args=quiet\n" in listed
    assert listed.endswith("extra_cmdline=x=1\ninstaller_ext_kernel_args=x=1\nafter=1\n")


def test_the_last_of_two_lines_is_the_one_grub_uses(tmp_path):
    path = str(tmp_path / "grubenv")
    write(path, raw_block(b"third_party_kernel_args=foo=bar\n", b"saved_entry=cos\n", b"third_party_kernel_args=console=ttyS0\n"))
    assert grub_variables(path)[THIRD_PARTY_VAR] == "console=ttyS0"  # GRUB's own reading
    assert parse(read(path), path).get(THIRD_PARTY_VAR) == "console=ttyS0"


@pytest.mark.parametrize(
    "data, words",
    [
        (b"", "not a GRUB environment block"),
        (b"# GRUB Environment Block", "not a GRUB environment block"),
        (b"hello\n" + b"#" * 1018, "not a GRUB environment block"),
        (raw_block(b"novalue\n"), "a line with no '='"),
        (HEADER + b"x=1\ny=unterminated", "no newline before the '#' padding"),
        (HEADER + b"x=a\\\n" + b"#" * 100, "a line with no '=' or no end"),
    ],
)
def test_a_corrupt_block_is_bad_input(data, words):
    with pytest.raises(GrubenvError, match=words) as exc:
        parse(data, "/oem/grubenv")
    assert exc.value.exit_code == 2 and exc.value.lines[0].startswith("/oem/grubenv: ")


# -- merging: only our own tokens, everything else byte for byte ---------------------------


def test_other_variables_come_back_byte_for_byte(tmp_path):
    lines = [b"x=caf\xe9\n", b"# a comment line\n", b"saved_entry=cos\n", b"third_party_kernel_args=multipath=off\n", b"y=a\\\\b\n"]
    data = raw_block(*lines)
    merged = merge_kernel_args(data, WANTED, "grubenv")
    assert merged.changed and merged.ours == tuple(ADDED)
    assert merged.data.startswith(HEADER + b"".join(lines))
    assert len(merged.data) == len(data)
    path = str(tmp_path / "grubenv")
    write(path, merged.data)
    pairs = dict(editenv_pairs(path))
    assert pairs[b"x"] == b"caf\xe9" and pairs[EXTRA_VAR.encode()] == " ".join(ADDED).encode()
    assert pairs[RECORD_VAR.encode()] == " ".join(ADDED).encode()


def test_what_harvester_sets_is_not_added(tmp_path):
    path = block(tmp_path, "third_party_kernel_args=multipath=off video=efifb:off")
    merged = merge_kernel_args(read(path), WANTED, path)
    assert merged.harvester_sets == ("intel_iommu=on", "iommu=pt", "video=efifb:off")
    assert merged.ours == ("vfio_iommu_type1.allow_unsafe_interrupts=1",)


def test_a_later_override_is_answered_by_appending(tmp_path):
    path = block(tmp_path, "third_party_kernel_args=iommu=nopt")
    assert merge_kernel_args(read(path), ["iommu=pt"], path).ours == ("iommu=pt",)


def test_only_the_recorded_tokens_are_ever_removed(tmp_path):
    path = block(tmp_path, "extra_cmdline=foo=bar quiet", "third_party_kernel_args=console=ttyS0 foo=bar")
    first = merge_kernel_args(read(path), ["foo=bar", "x=1", "quiet"], path)
    assert first.ours == ("x=1",)
    write(path, first.data)
    assert grub_variables(path)[EXTRA_VAR] == "foo=bar quiet x=1"
    again = merge_kernel_args(read(path), ["foo=bar", "x=1", "quiet"], path)
    assert not again.changed and again.data == read(path)
    off = merge_kernel_args(read(path), [], path)
    write(path, off.data)
    env = grub_variables(path)
    assert env[EXTRA_VAR] == "foo=bar quiet" and RECORD_VAR not in env
    assert env[THIRD_PARTY_VAR] == "console=ttyS0 foo=bar"


def test_a_variable_we_created_goes_away_with_our_last_token(tmp_path):
    path = block(tmp_path, "saved_entry=cos")
    original = read(path)
    write(path, merge_kernel_args(original, ["x=1"], path).data)
    assert grub_variables(path) == {"saved_entry": "cos", EXTRA_VAR: "x=1", RECORD_VAR: "x=1"}
    assert merge_kernel_args(read(path), [], path).data == original


def test_our_token_twice_removes_ours_not_the_users(tmp_path):
    # The user has x=1 too, before ours: the last occurrence is ours.
    path = block(tmp_path, "extra_cmdline=x=1 x=1", f"{RECORD_VAR}=x=1")
    off = merge_kernel_args(read(path), [], path)
    write(path, off.data)
    assert grub_variables(path)[EXTRA_VAR] == "x=1"


def test_duplicate_lines_of_our_variable_collapse_where_grub_reads(tmp_path):
    path = str(tmp_path / "grubenv")
    write(path, raw_block(b"extra_cmdline=dead\n", b"saved_entry=cos\n", b"extra_cmdline=user\n"))
    merged = merge_kernel_args(read(path), ["x=1"], path, Bootargs((), True))
    write(path, merged.data)
    assert editenv_pairs(path) == [(b"saved_entry", b"cos"), (b"extra_cmdline", b"user x=1"), (RECORD_VAR.encode(), b"x=1")]


def test_a_full_block_is_refused_with_one_line(tmp_path):
    path = block(tmp_path, "filler=" + "f" * 900)
    with pytest.raises(GrubenvError, match="no room for x=1") as exc:
        merge_kernel_args(read(path), ["x=1"], path)
    assert exc.value.exit_code == 2 and len(exc.value.lines) == 1
    # Taking out, or nothing to add, needs no room.
    assert not merge_kernel_args(read(path), [], path).changed


def test_a_new_block_is_one_grub_editenv_reads_and_edits(tmp_path):
    path = str(tmp_path / "grubenv")
    write(path, merge_kernel_args(None, [], "grubenv").data)
    assert editenv_pairs(path) == []
    merged = merge_kernel_args(None, ["x=1"], "grubenv")
    write(path, merged.data)
    editenv(path, "set", "third_party_kernel_args=multipath=off")
    assert grub_variables(path) == {EXTRA_VAR: "x=1", RECORD_VAR: "x=1", THIRD_PARTY_VAR: "multipath=off"}
    assert os.path.getsize(path) == DEFAULT_SIZE


def test_a_token_that_is_not_plain_never_reaches_the_block():
    with pytest.raises(GrubenvError, match="not a kernel argument token"):
        merge_kernel_args(None, ["x=$(reboot)"], "grubenv")


def test_every_block_written_can_still_be_edited_by_grub_editenv(tmp_path):
    """harv-install runs `grub2-editenv set third_party_kernel_args=...` after the hooks
    (under bash -e): the reserve keeps room for it."""
    path = block(tmp_path, "filler=" + "f" * 480)
    merged = merge_kernel_args(read(path), ADDED, path)
    write(path, merged.data)
    editenv(path, "set", "third_party_kernel_args=" + "m" * 200)
    env = grub_variables(path)
    assert env[EXTRA_VAR] == " ".join(ADDED) and env[THIRD_PARTY_VAR] == "m" * 200
