"""GRUB's environment block (/oem/grubenv), read and edited the way GRUB does it.

Format (grub-core/lib/envblk.c, GNU GRUB; the openSUSE/grub2 tree SUSE builds from):
the file starts with the signature "# GRUB Environment Block\\n" and is at least 26
bytes (grub_envblk_open()); `grub_envblk_iterate()` then walks it: a line starting with
`#` is a comment (the padding is one), anything else is NAME=VALUE where NAME runs to
the first `=` and VALUE to the first newline not escaped by a backslash (a backslash
escapes the next byte). A name without `=` or a value without a newline before the end
is "broken": GRUB stops reading there. `load_env` (grub-core/commands/loadenv.c,
set_var()) sets each variable in file order, so of two lines with one name the LAST
one wins. `grub_envblk_set()` needs a newline just before the trailing `#` padding and
takes new room out of that padding; the file keeps its size (save_env writes in place).

Here a block is kept as its raw lines: a variable this module does not edit comes back
byte for byte (whatever its encoding), and so does every comment line.

installer-ext's own arguments go to `extra_cmdline`, and the tokens it added are
recorded in `installer_ext_kernel_args` (installer_ext/grubline.py says why), so a
later run removes exactly those and never an argument somebody else put there.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

from installer_ext.errors import BadInput
from installer_ext.fsutil import read_input
from installer_ext.grubline import EXTRA_VAR, HARVESTER_BOOTARGS, RECORD_VAR, Bootargs, already_set, harvester_line
from installer_ext.host.address import KERNEL_ARG_RE
from installer_ext.kernel_cmdline import effective

HEADER = b"# GRUB Environment Block\n"
MIN_SIZE = len(HEADER) + 1  # sizeof (GRUB_ENVBLK_SIGNATURE), grub_envblk_open()
DEFAULT_SIZE = 1024  # what `grub-editenv FILE create` writes (util/grub-editenv.c)
MAX_SIZE = 64 << 10  # more is not an environment block
# Room left free whenever installer-ext adds to the block: harv-install, after the
# install hooks, and Harvester's upgrade set third_party_kernel_args with
# `grub2-editenv set`, which fails on a full block (and harv-install runs under bash -e).
RESERVE = 256
# Values are kept as str with the bytes that are not UTF-8 escaped (surrogateescape):
# decoding and encoding give back the same bytes.
_ENC = ("utf-8", "surrogateescape")


class GrubenvError(BadInput):
    """The block cannot be read or edited as GRUB would (exit 2, naming the file)."""


@dataclass
class _Line:
    raw: bytes  # the line as it is in the file, newline included
    name: bytes | None  # None: a comment line
    value: bytes | None  # unescaped


def _unescape(raw: bytes) -> bytes:
    out = bytearray()
    i = 0
    while i < len(raw):
        if raw[i] == 0x5C and i + 1 < len(raw):
            i += 1
        out.append(raw[i])
        i += 1
    return bytes(out)


def _escape(value: bytes) -> bytes:
    out = bytearray()
    for c in value:
        if c in (0x5C, 0x0A):
            out.append(0x5C)
        out.append(c)
    return bytes(out)


def _line_end(body: bytes, i: int) -> int:
    """Index just past the newline that ends the line at `i` (find_next_line()), or
    -1 when the body ends first."""
    while i < len(body):
        if body[i] == 0x5C:
            i += 2
        elif body[i] == 0x0A:
            return i + 1
        else:
            i += 1
    return -1


class Block:
    """A parsed environment block: its lines in file order and its size in bytes."""

    def __init__(self, lines: list[_Line], size: int) -> None:
        self.lines = lines
        self.size = size

    @classmethod
    def empty(cls, size: int = DEFAULT_SIZE) -> Block:
        return cls([], size)

    @classmethod
    def parse(cls, data: bytes, path: str) -> Block:
        if len(data) < MIN_SIZE or not data.startswith(HEADER):
            raise GrubenvError(f"{path}: not a GRUB environment block (no '# GRUB Environment Block' header)")
        body = data[len(HEADER):]
        content = body.rstrip(b"#")
        if content and not content.endswith(b"\n"):
            raise GrubenvError(f"{path}: corrupt GRUB environment block (no newline before the '#' padding)")
        lines: list[_Line] = []
        i = 0
        while i < len(content):
            if content[i] == 0x23:  # '#': a comment line
                end = _line_end(content, i)
                end = len(content) if end < 0 else end
                lines.append(_Line(content[i:end], None, None))
                i = end
                continue
            eq = content.find(b"=", i)  # GRUB looks for it across newlines, too
            end = _line_end(content, eq + 1) if eq >= 0 else -1
            if eq < 0 or end < 0:
                raise GrubenvError(f"{path}: corrupt GRUB environment block (a line with no '=' or no end at byte {len(HEADER) + i})")
            lines.append(_Line(content[i:end], content[i:eq], _unescape(content[eq + 1 : end - 1])))
            i = end
        return cls(lines, len(data))

    # -- GRUB's view ---------------------------------------------------------------
    def get(self, name: str) -> str | None:
        """The value GRUB ends up with (the last line of that name), or None."""
        key = name.encode()
        value = None
        for line in self.lines:
            if line.name == key:
                value = line.value
        return None if value is None else value.decode(*_ENC)

    def variables(self) -> dict[str, str]:
        """Every variable as load_env sets them (the last line of a name wins)."""
        out: dict[str, str] = {}
        for line in self.lines:
            if line.name is not None and line.value is not None:
                out[line.name.decode(*_ENC)] = line.value.decode(*_ENC)
        return out

    def pairs(self) -> list[tuple[str, str]]:
        """(name, value) of every variable line in file order, as `grub-editenv list` prints them."""
        return [(ln.name.decode(*_ENC), ln.value.decode(*_ENC)) for ln in self.lines if ln.name is not None and ln.value is not None]

    # -- editing ---------------------------------------------------------------------
    def set(self, name: str, value: str) -> None:
        """Set `name` where GRUB reads it: the last line of that name is replaced and
        earlier ones (never read by GRUB) are dropped; a new name goes at the end."""
        key = name.encode()
        raw = key + b"=" + _escape(value.encode(*_ENC)) + b"\n"
        new = _Line(raw, key, value.encode(*_ENC))
        idx = [i for i, ln in enumerate(self.lines) if ln.name == key]
        if not idx:
            self.lines.append(new)
            return
        self.lines[idx[-1]] = new
        for i in reversed(idx[:-1]):
            del self.lines[i]

    def delete(self, name: str) -> None:
        key = name.encode()
        self.lines = [ln for ln in self.lines if ln.name != key]

    def content(self) -> bytes:
        return b"".join(ln.raw for ln in self.lines)

    def to_bytes(self) -> bytes:
        body = self.content()
        return HEADER + body + b"#" * (self.size - len(HEADER) - len(body))

    def free(self) -> int:
        """Bytes of padding left (what grub_envblk_set() can still take)."""
        return self.size - len(HEADER) - len(self.content())


def read(path: str) -> bytes | None:
    """The bytes of the block at `path`, or None when there is no such file."""
    return read_input(path, MAX_SIZE, "a GRUB environment block", missing_ok=True, error=GrubenvError)


def parse(data: bytes, path: str = "grubenv") -> Block:
    return Block.parse(data, path)


@dataclass(frozen=True)
class Merge:
    """The result of putting the wanted arguments into a block."""

    data: bytes  # the new block (the same bytes when nothing had to change)
    changed: bool
    ours: tuple[str, ...]  # the tokens installer-ext holds in extra_cmdline now
    harvester_sets: tuple[str, ...]  # wanted arguments Harvester's own line already gives
    variables: dict[str, str]  # every variable of the new block, as GRUB sets them


def _spans(value: str) -> list[tuple[int, int]]:
    spans, i = [], 0
    while i < len(value):
        if value[i].isspace():
            i += 1
            continue
        j = i
        while j < len(value) and not value[j].isspace():
            j += 1
        spans.append((i, j))
        i = j
    return spans


def _remove(value: str, tokens: Sequence[str]) -> str:
    """`value` without the last occurrence of each token (and the blank before it)."""
    for token in reversed(tokens):
        for start, end in reversed(_spans(value)):
            if value[start:end] == token:
                cut = start
                while cut > 0 and value[cut - 1].isspace():
                    cut -= 1
                if cut == 0:  # the first word: take the blank after it instead
                    while end < len(value) and value[end].isspace():
                        end += 1
                value = value[:cut] + value[end:]
                break
    return value


def _check_tokens(wanted: Sequence[str], path: str) -> None:
    for token in wanted:
        if not KERNEL_ARG_RE.match(token):
            raise GrubenvError(f"{path}: {token!r} is not a kernel argument token; nothing written")


def merge_kernel_args(
    data: bytes | None,
    wanted: Sequence[str],
    path: str = "grubenv",
    bootargs: Bootargs = HARVESTER_BOOTARGS,
    reserve: int = RESERVE,
) -> Merge:
    """Put into the block the arguments of `wanted` that the node's line does not
    already give: Harvester's own (bootargs.cfg, third_party_kernel_args) and the other
    tokens of extra_cmdline count. Tokens recorded as installer-ext's are replaced;
    nothing else changes. `data` None: a new block, as `grub-editenv create` makes it."""
    _check_tokens(wanted, path)
    block = Block.parse(data, path) if data is not None else Block.empty()
    before = block.to_bytes() if data is None else data
    old_free = block.free()
    recorded = (block.get(RECORD_VAR) or "").split()
    extra = block.get(EXTRA_VAR)
    foreign = _remove(extra or "", recorded)
    harvester = harvester_line(bootargs, block.variables())
    baseline = harvester + foreign.split()
    ours = [w for w in dict.fromkeys(wanted) if not effective(baseline, w)]
    if ours:
        kept = foreign.rstrip()
        new_extra = (kept + " " if kept else "") + " ".join(ours)
        if new_extra != extra or block.get(RECORD_VAR) != " ".join(ours) or _dups(block):
            block.set(EXTRA_VAR, new_extra)
            block.set(RECORD_VAR, " ".join(ours))
    elif recorded or block.get(RECORD_VAR) is not None:
        if foreign.strip():
            block.set(EXTRA_VAR, foreign)
        else:
            block.delete(EXTRA_VAR)
        block.delete(RECORD_VAR)
    if block.free() < min(reserve, old_free):
        raise GrubenvError(
            f"{path}: no room for {' '.join(ours)}: the block has {old_free} bytes free and "
            f"installer-ext leaves {reserve} for Harvester's third_party_kernel_args; nothing written"
        )
    out = block.to_bytes()
    return Merge(out, out != before, tuple(ours), tuple(already_set(wanted, harvester)), block.variables())


def _dups(block: Block) -> bool:
    names = [ln.name for ln in block.lines if ln.name in (EXTRA_VAR.encode(), RECORD_VAR.encode())]
    return len(names) != len(set(names))


def ensure_directory(path: str) -> None:
    """The directory of `path` must exist (the keeper never creates /oem)."""
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise GrubenvError(f"{path}: no such directory {directory}")
