"""Which PCI functions carry the host's network: the default route, and the ports of
Harvester's management bridge.

Routes (Linux, unchanged since v3.x):
- ROOT/proc/net/route, net/ipv4/fib_trie.c fib_route_seq_show(): a header, then
  "IFACE\\tDEST\\tGATEWAY\\tFLAGS\\tREFCNT\\tUSE\\tMETRIC\\tMASK\\t..." with DEST and MASK as
  8 hex digits. A default route has DEST and MASK 0; only the first nexthop's device is
  printed for a multipath route.
- ROOT/proc/net/ipv6_route, net/ipv6/ip6_fib.c ipv6_route_native_seq_show(): "DEST PLEN
  SRC SRCPLEN NEXTHOP METRIC REFCNT USE FLAGS IFACE"; a default route has PLEN 00.
  Both: RTF_UP (0x1) set, RTF_REJECT (0x200) not (the kernel's unreachable default on
  `lo`, flags 00200200, is no route out). No file: no such stack (ipv6.disable=1).

From an interface down to its NICs: the `lower_NAME` links the kernel keeps for every
stacked device (net/core/dev.c netdev_adjacent_sysfs_add(): bond, bridge, VLAN, macvlan,
team), with a bond's `bonding/slaves` and a bridge's `brif/` read as well. A NIC is the
PCI function on its ROOT/sys/class/net/NAME path (host/links.py).

Harvester's management network (harvester/harvester-installer, branches v1.4-v1.8 and
master, pkg/config/constants.go): the bridge `mgmt-br` (MgmtInterfaceName), whose port is
the bond `mgmt-bo` (MgmtBondInterfaceName), whose ports are the NICs the installer was
given; a VLAN id >= 2 puts `mgmt-br.<id>` on the bridge and the address there (cos.go
updateBridge). The binder runs early in the boot, maybe before NetworkManager or wicked
has built the bond, so the configuration is read as well:
- v1.7+: NetworkManager keyfiles in ROOT/etc/NetworkManager/system-connections
  (`bond-slave-<nic>.nmconnection`: `interface-name=<nic>`, `master=mgmt-bo`; the bond's
  own file `master=mgmt-br`), persisted by harv-install's save_nm_state();
- v1.4-v1.6: wicked files ROOT/etc/sysconfig/network/ifcfg-mgmt-bo
  (`BONDING_SLAVE_<n>='<nic>'`) and ifcfg-mgmt-br (`BRIDGE_PORTS='mgmt-bo'`), written by
  the installer's yip stage every boot.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable

from installer_ext.host import links
from installer_ext.host.sysfs import SysRoot

MGMT_BRIDGE = "mgmt-br"
MGMT_BOND = "mgmt-bo"
NM_CONNECTIONS = "etc/NetworkManager/system-connections"
IFCFG_DIR = "etc/sysconfig/network"

RTF_UP = 0x0001
RTF_REJECT = 0x0200
_IFNAME = re.compile(r"\A[A-Za-z0-9_.:@+-]{1,15}\Z")  # IFNAMSIZ 16 with the NUL
_HEX = re.compile(r"\A[0-9A-Fa-f]+\Z")
MAX_ROUTE_BYTES = 16 << 20
MAX_CONFIG_FILES = 512
MAX_CONFIG_BYTES = 64 << 10
# The kernel nests stacked devices at most MAX_NEST_DEV (8) deep (include/linux/netdevice.h;
# net/core/dev.c in older kernels): a deeper walk is a loop or a broken tree, and is
# reported, not followed.
MAX_DEPTH = 16
MAX_PATHS = 256


def parse_route(text: str) -> list[str]:
    """Interfaces with an IPv4 default route."""
    out = []
    for line in text.splitlines()[1:]:
        f = line.split()
        if len(f) < 8 or not (_HEX.match(f[1]) and _HEX.match(f[3]) and _HEX.match(f[7])):
            continue
        dest, flags, mask = int(f[1], 16), int(f[3], 16), int(f[7], 16)
        if dest == 0 and mask == 0 and flags & RTF_UP and not flags & RTF_REJECT and f[0] != "*":
            out.append(f[0])
    return list(dict.fromkeys(out))


def parse_ipv6_route(text: str) -> list[str]:
    """Interfaces with an IPv6 default route."""
    out = []
    for line in text.splitlines():
        f = line.split()
        if len(f) != 10 or not (_HEX.match(f[0]) and _HEX.match(f[1]) and _HEX.match(f[8])):
            continue
        dest, plen, flags = int(f[0], 16), int(f[1], 16), int(f[8], 16)
        if dest == 0 and plen == 0 and flags & RTF_UP and not flags & RTF_REJECT and f[9] != "lo":
            out.append(f[9])
    return list(dict.fromkeys(out))


def read_default_routes(sr: SysRoot) -> tuple[list[str] | None, str]:
    """(interfaces with a default route, what was read); None when the IPv4 table cannot
    be read. The IPv6 table is optional (no IPv6 stack, no file)."""
    path4 = os.path.join(sr.proc, "net", "route")
    text = _read_table(path4)
    if text is None:
        return None, path4
    found = parse_route(text)
    path6 = os.path.join(sr.proc, "net", "ipv6_route")
    if os.path.lexists(path6):
        text6 = _read_table(path6)
        if text6 is None:
            return None, path6
        found += [i for i in parse_ipv6_route(text6) if i not in found]
    return found, path4


def _read_table(path: str) -> str | None:
    data = SysRoot.read_bytes(path, MAX_ROUTE_BYTES + 1)
    if data is None or len(data) > MAX_ROUTE_BYTES:
        return None
    return data.decode("latin-1")


def lowers(sr: SysRoot, name: str) -> list[str]:
    """The interfaces directly under `name` (its ports, slaves, parent)."""
    base = os.path.join(sr.sys, "class", "net", name)
    found = [e[len("lower_"):] for e in sr.listdir(base) if e.startswith("lower_")]
    found += sr.listdir(os.path.join(base, "brif"))
    slaves = sr.read_text(os.path.join(base, "bonding", "slaves"), 4096)
    found += slaves.split() if slaves else []
    return sorted({n for n in found if _IFNAME.match(n)})


class TooDeep(Exception):
    pass


def stack(top: str, below) -> list[list[str]]:
    """Every path from `top` down to an interface with nothing below it, through
    `below(name) -> [names]`. Raises TooDeep past MAX_DEPTH levels or MAX_PATHS paths."""
    out: list[list[str]] = []
    todo = [[top]]
    while todo:
        path = todo.pop()
        if len(path) > MAX_DEPTH or len(out) + len(todo) > MAX_PATHS:
            raise TooDeep(f"the interfaces under {top} ({' → '.join(path[:4])} → ...)")
        under = [n for n in below(path[-1]) if n not in path]
        if not under:
            out.append(path)
        todo.extend([*path, n] for n in reversed(under))
    return out


def nic_function(sr: SysRoot, name: str) -> str | None:
    """The PCI function of a network interface (None for a virtual one)."""
    return links.pci_of_path(sr.readlink(os.path.join(sr.sys, "class", "net", name)))


# --- Harvester's management network as configured --------------------------------------------

def _config_files(sr: SysRoot, rel: str, match) -> Iterable[tuple[str, str]]:
    base = sr.path(rel)
    names = sorted(n for n in sr.listdir(base) if match(n))[:MAX_CONFIG_FILES]
    for n in names:
        text = sr.read_text(os.path.join(base, n), MAX_CONFIG_BYTES)
        if text is not None:
            yield os.path.join("/", rel, n), text


def _keyfile(text: str) -> dict[str, dict[str, str]]:
    """NetworkManager's keyfile format (a GLib key file): [group] and key=value lines."""
    out: dict[str, dict[str, str]] = {}
    group: dict[str, str] | None = None
    for line in text.splitlines():
        line = line.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            group = out.setdefault(line[1:-1], {})
        elif group is not None and "=" in line:
            key, _, value = line.partition("=")
            group[key.strip()] = value.strip()
    return out


def _ifcfg(text: str) -> dict[str, str]:
    """A sysconfig/wicked ifcfg file: KEY='value' shell assignments."""
    out = {}
    for line in text.splitlines():
        m = re.match(r"\A\s*([A-Z0-9_]+)=(.*)\Z", line)
        if m:
            value = m.group(2).strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
                value = value[1:-1]
            out[m.group(1)] = value
    return out


def configured_ports(sr: SysRoot) -> dict[str, list[tuple[str, str]]]:
    """Interface -> [(port, the file that says so)] from Harvester's network files."""
    out: dict[str, list[tuple[str, str]]] = {}

    def add(parent: str, port: str, source: str) -> None:
        if _IFNAME.match(parent) and _IFNAME.match(port) and parent != port:
            out.setdefault(parent, []).append((port, source))

    profiles = [(p, _keyfile(t)) for p, t in _config_files(sr, NM_CONNECTIONS, lambda n: n.endswith(".nmconnection"))]
    by_ref: dict[str, str] = {}
    for _, kf in profiles:
        conn = kf.get("connection", {})
        ifname = conn.get("interface-name")
        if ifname:
            for ref in (conn.get("id"), conn.get("uuid"), ifname):
                if ref:
                    by_ref.setdefault(ref, ifname)
    for path, kf in profiles:
        conn = kf.get("connection", {})
        master = conn.get("master") or conn.get("controller")
        if master and conn.get("interface-name"):
            add(by_ref.get(master, master), conn["interface-name"], path)
    for path, text in _config_files(sr, IFCFG_DIR, lambda n: n.startswith("ifcfg-")):
        name = os.path.basename(path)[len("ifcfg-"):]
        cfg = _ifcfg(text)
        for key, value in cfg.items():
            if key.startswith("BONDING_SLAVE"):
                add(name, value, path)
        for port in cfg.get("BRIDGE_PORTS", "").split():
            add(name, port, path)
    return out


def functions_in_use(sr: SysRoot, default_ifaces: list[str]) -> tuple[dict[str, list[str]], list[str]]:
    """(PCI function -> why it must stay with the host: it carries a default route, or it
    is (or is configured as) a port of the management bridge; what could not be walked)."""
    out: dict[str, list[str]] = {}
    problems: list[str] = []

    def add(fn: str | None, reason: str) -> None:
        if fn and reason not in out.setdefault(fn, []):
            out[fn].append(reason)

    def walk(top: str, below) -> list[list[str]]:
        try:
            return stack(top, below)
        except TooDeep as exc:
            problems.append(str(exc))
            return []

    live = lambda n: lowers(sr, n)  # noqa: E731
    for iface in default_ifaces:
        if _IFNAME.match(iface):
            for path in walk(iface, live):
                add(nic_function(sr, path[-1]), f"carries the default route ({' → '.join(path)})")
    for path in walk(MGMT_BRIDGE, live):
        if len(path) > 1:
            add(nic_function(sr, path[-1]), f"is a port of Harvester's management bridge ({' → '.join(path)})")
    ports = configured_ports(sr)
    sources: dict[tuple[str, str], str] = {(p, c): src for p, items in ports.items() for c, src in items}
    for path in walk(MGMT_BRIDGE, lambda n: [c for c, _ in ports.get(n, [])]):
        if len(path) > 1:
            add(nic_function(sr, path[-1]),
                f"is configured as a port of Harvester's management bridge ({' → '.join(path)}, "
                f"{sources[(path[-2], path[-1])]})")
    return out, problems


def carriers(sr: SysRoot) -> frozenset[str]:
    """Every PCI function that has a network interface."""
    return frozenset(n.address for n in links.read_net(sr) if n.address)
