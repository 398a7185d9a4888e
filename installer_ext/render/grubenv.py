"""GRUB's environment block (grub-core/lib/envblk.c): a fixed-size file, normally
1024 bytes, that starts with "# GRUB Environment Block\\n", holds `name=value` lines
(backslash escapes a backslash or a newline in a value) and is padded with '#'.

Elemental's GRUB line appends `$third_party_kernel_args`, which harv-install sets from
the installer's additionalKernelArguments. We merge our arguments into it and keep every
other variable and every argument that is not ours.
"""

from __future__ import annotations

from installer_ext.errors import ExtError

HEADER = b"# GRUB Environment Block\n"
DEFAULT_SIZE = 1024
KERNEL_ARGS_VAR = "third_party_kernel_args"


class GrubenvError(ExtError):
    pass


def _unescape(raw: bytes) -> bytes:
    out = bytearray()
    i = 0
    while i < len(raw):
        c = raw[i]
        if c == 0x5C and i + 1 < len(raw):  # backslash: take the next byte as is
            out.append(raw[i + 1])
            i += 2
            continue
        out.append(c)
        i += 1
    return bytes(out)


def _escape(value: bytes) -> bytes:
    out = bytearray()
    for c in value:
        if c in (0x5C, 0x0A):
            out.append(0x5C)
        out.append(c)
    return bytes(out)


def parse(data: bytes, path: str = "grubenv") -> list[tuple[str, str]]:
    """Variables in file order."""
    if not data.startswith(HEADER):
        raise GrubenvError(f"{path}: not a GRUB environment block (no '# GRUB Environment Block' header)")
    body = data[len(HEADER):]
    out: list[tuple[str, str]] = []
    i = 0
    while i < len(body):
        if body[i] == 0x23:  # '#': padding or a comment line
            nl = body.find(b"\n", i)
            if nl < 0:
                break
            i = nl + 1
            continue
        # A value may hold escaped newlines: find the first unescaped one.
        j = i
        while j < len(body):
            if body[j] == 0x5C:
                j += 2
                continue
            if body[j] == 0x0A:
                break
            j += 1
        line = body[i:j]
        i = j + 1
        name, sep, value = line.partition(b"=")
        if not sep:
            continue
        out.append((name.decode("utf-8", "replace"), _unescape(value).decode("utf-8", "replace")))
    return out


def build(variables: list[tuple[str, str]], size: int = DEFAULT_SIZE, path: str = "grubenv") -> bytes:
    body = b"".join(n.encode() + b"=" + _escape(v.encode()) + b"\n" for n, v in variables)
    data = HEADER + body
    if len(data) > size:
        raise GrubenvError(f"{path}: the variables need {len(data)} bytes, more than the {size}-byte block holds")
    return data + b"#" * (size - len(data))


def merge_kernel_args(
    data: bytes | None, ours: list[str], previous_ours: list[str], path: str = "grubenv"
) -> bytes:
    """The block with `ours` in third_party_kernel_args: tokens we wrote before
    (`previous_ours`) are replaced, every other token and variable is kept in order."""
    if data is None:
        variables: list[tuple[str, str]] = []
        size = DEFAULT_SIZE
    else:
        variables = parse(data, path)
        size = max(len(data), DEFAULT_SIZE)
    current = next((v for n, v in variables if n == KERNEL_ARGS_VAR), None)
    tokens = current.split() if current else []
    drop = set(previous_ours) | set(ours)
    kept = [t for t in tokens if t not in drop]
    value = " ".join(kept + ours)
    if current is None:
        if value:
            variables.append((KERNEL_ARGS_VAR, value))
    else:
        variables = [(n, value if n == KERNEL_ARGS_VAR else v) for n, v in variables]
    return build(variables, size, path)
