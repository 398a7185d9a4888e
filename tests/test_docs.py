"""docs/design.md stays true of the JSON the program prints.

The design document lists every key of `detect --json`, `plan --json` (plan.json) and
`status --json` in one table each. These tests take the keys from the program itself
(the real commands on the example machine, the fake machines and the real kernel's
recordings; the plan's JSON Schema) and compare them with the tables: a key added to or
removed from an output without the table following fails here, with the key named.

Key paths: `cpu.vendor` is key `vendor` of object `cpu`; `devices[].sriov.total_vfs` is
a key of each item of list `devices`. A row whose type is a `map` (names chosen at run
time, like `settings`) is a leaf: its own keys are data, not contract.
"""

from __future__ import annotations

import json
import os
import re
import shutil

import pytest

from installer_ext.plan.planfile import load_schema as load_plan_schema
from tests.cli import run
from tests.fakesys.builder import build
from tests.fakesys.machines import ALL, amd_epyc_server, node_of, sriov_host

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DESIGN = os.path.join(REPO, "docs", "design.md")
EXAMPLE = os.path.join(REPO, "examples", "workstation")
EXAMPLE_CONFIG = os.path.join(REPO, "examples", "workstation.yaml")

DETECT = "### `detect --json`"
PLAN = "### `plan --json` and plan.json"
STATUS = "### `status --json`"

# ---------------------------------------------------------------------------------------
# The tables


_ROW = re.compile(r"^\|\s*`([^`]+)`\s*\|(.*)\|\s*$")


def _cells(rest: str) -> list[str]:
    """The cells after the first one; `\\|` is a pipe inside a cell."""
    return [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", rest)]


def doc_table(heading: str, text: str | None = None) -> dict[str, str]:
    """{key path: type} of the first table under `heading` in docs/design.md."""
    if text is None:
        with open(DESIGN, encoding="utf-8") as f:
            text = f.read()
    lines = text.splitlines()
    try:
        start = lines.index(heading)
    except ValueError:
        pytest.fail(f"docs/design.md has no heading {heading!r}", pytrace=False)
    level = len(heading) - len(heading.lstrip("#"))
    rows: dict[str, str] = {}
    seen_table = False
    for line in lines[start + 1:]:
        stripped = line.lstrip()
        if stripped.startswith("#") and len(stripped) - len(stripped.lstrip("#")) <= level:
            break
        m = _ROW.match(line)
        if m:
            seen_table = True
            key, cells = m.group(1), _cells(m.group(2))
            assert key not in rows, f"docs/design.md, {heading}: key {key} listed twice"
            assert len(cells) >= 2 and cells[0] and cells[1], f"docs/design.md, {heading}: {key} needs a type and a meaning"
            rows[key] = cells[0]
        elif seen_table and not line.startswith("|"):
            break
    assert rows, f"docs/design.md: no key table under {heading!r}"
    return rows


def maps_of(table: dict[str, str]) -> set[str]:
    return {k for k, t in table.items() if t.startswith("map")}


# ---------------------------------------------------------------------------------------
# The keys the program prints


def json_paths(doc: object, maps: set[str], prefix: str = "") -> set[str]:
    """Every key path in `doc`; below a path in `maps` nothing more."""
    out: set[str] = set()
    if isinstance(doc, dict):
        for k, v in doc.items():
            p = f"{prefix}.{k}" if prefix else str(k)
            out.add(p)
            if p not in maps:
                out |= json_paths(v, maps, p)
    elif isinstance(doc, list):
        for item in doc:
            out |= json_paths(item, maps, prefix + "[]")
    return out


def schema_paths(schema: dict, maps: set[str], root: dict | None = None, prefix: str = "") -> set[str]:
    """Every property path a JSON Schema allows (local `$ref`s followed)."""
    root = root or schema
    out: set[str] = set()
    if "$ref" in schema:
        ref = schema["$ref"]
        assert ref.startswith("#/"), ref
        target = root
        for part in ref[2:].split("/"):
            target = target[part]
        out |= schema_paths(target, maps, root, prefix)
    for k, sub in schema.get("properties", {}).items():
        p = f"{prefix}.{k}" if prefix else k
        out.add(p)
        if p not in maps:
            out |= schema_paths(sub, maps, root, p)
    if "items" in schema:
        out |= schema_paths(schema["items"], maps, root, prefix + "[]")
    return out


def _json(*argv: str) -> object:
    r = run(*argv)
    assert r.rc in (0, 3), f"installer-ext {' '.join(argv)}: exit {r.rc}: {r.err}"
    return json.loads(r.out)


def _differences(name: str, documented: set[str], printed: set[str]) -> list[str]:
    lines = [f"{name}: {k} is in the output but not in docs/design.md's table" for k in sorted(printed - documented)]
    lines += [f"{name}: {k} is in docs/design.md's table but not in the output" for k in sorted(documented - printed)]
    return lines


# ---------------------------------------------------------------------------------------
# detect --json


@pytest.fixture(scope="module")
def detect_docs(tmp_path_factory, real_kernel) -> list[object]:
    """`detect --json` on the example machine, every fake machine (SR-IOV with few VFs)
    and the real kernel's recordings (IOMMU on and off)."""
    roots = [EXAMPLE, real_kernel("on"), real_kernel("off")]
    for name, make in ALL.items():
        machine = sriov_host(nics=2, vfs=4) if make is sriov_host else make()
        roots.append(build(machine, str(tmp_path_factory.mktemp(name))))
    return [_json("detect", "--json", "--root", root) for root in roots]


def test_every_key_of_detect_json_is_in_the_design(detect_docs):
    table = doc_table(DETECT)
    printed: set[str] = set()
    for doc in detect_docs:
        printed |= json_paths(doc, maps_of(table))
    assert not _differences("detect --json", set(table), printed)


# ---------------------------------------------------------------------------------------
# plan --json (the schema of plan.json is its contract)


def test_every_key_of_plan_json_is_in_the_design():
    table = doc_table(PLAN)
    allowed = schema_paths(load_plan_schema(), maps_of(table))
    assert not _differences("plan.schema.json", set(table), allowed)


def test_the_plan_the_example_prints_has_only_documented_keys():
    """The schema is the contract, and the example's plan is read against the table too:
    a key the schema allows but the program never prints would be listed all the same."""
    table = doc_table(PLAN)
    doc = _json("plan", "--json", "--root", EXAMPLE, "--config", EXAMPLE_CONFIG)
    assert json_paths(doc, maps_of(table)) <= set(table)


# ---------------------------------------------------------------------------------------
# status --json


EPYC_CONFIG = """\
install:
  device: /dev/nvme0n1
  managementInterface:
    interfaces: [{name: enp2s0f0}]
pciPassthrough:
  enabled: true
  gpuDrivers: true
  devices:
    - address: "0000:03:00.0"
  sriov:
    - address: "0000:02:00.1"
      numVfs: 2
      vfsToVfio: true
"""


def _put(root: str, rel: str, text: str) -> None:
    path = os.path.join(root, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


@pytest.fixture(scope="module")
def status_docs(tmp_path_factory) -> list[object]:
    """`status --json` on a node where each writer really ran (render, the kernel-args
    keeper, the binder with devices and SR-IOV, a first boot that gave up waiting for
    the API), after `unbind` gave the devices back, on a node where nothing ran, and on
    one whose files are broken."""
    from installer_ext import paths

    base = tmp_path_factory.mktemp("status")
    node = build(node_of(amd_epyc_server()), str(base / "node"))
    config = str(base / "config.yaml")
    with open(config, "w") as f:
        f.write(EPYC_CONFIG)
    plan, grubenv = os.path.join(node, paths.PLAN_FILE), os.path.join(node, paths.GRUBENV_FILE)

    def must(*argv: str, rcs: tuple[int, ...] = (0,)) -> None:
        r = run(*argv)
        assert r.rc in rcs, f"installer-ext {' '.join(argv)}: exit {r.rc}: {r.err}"

    must("render", "--root", node, "--config", config, "--target", node)
    must("kernel-args", "--plan", plan, "--grubenv", grubenv, "--root", node)
    # A fake tree: the writes land in plain files and no driver moves, so devices fail.
    must("bind", "--root", node, "--timeout", "0.1", rcs=(1,))
    must("firstboot", "--root", node, "--node-name", "harv-0", "--deadline", "0.2", "--poll-interval", "0.05",
         "--poll-max", "0.1", "--quiet", rcs=(1,))
    docs = [_json("status", "--json", "--root", node)]

    given_back = str(base / "given-back")
    shutil.copytree(node, given_back, symlinks=True)
    must("unbind", "--root", given_back, "--timeout", "0.1", rcs=(0, 1))
    must("bind", "--root", given_back, "--timeout", "0.1")
    docs.append(_json("status", "--json", "--root", given_back))

    empty = str(base / "empty")
    os.makedirs(empty)
    docs.append(_json("status", "--json", "--root", empty))

    broken = str(base / "broken")
    os.makedirs(broken)
    _put(broken, paths.INSTALL_STATUS_FILE, "{not json")
    _put(broken, paths.BIND_STATUS_FILE, "[]")
    _put(broken, paths.KERNEL_ARGS_STATUS_FILE, "[" * 10)
    _put(broken, paths.FIRSTBOOT_STATE_DIR + "/steps/api.json",
         json.dumps({"step": "api", "status": "failed", "result": {"reason": "no API"}, "at": "t"}))
    docs.append(_json("status", "--json", "--root", broken))

    # A server node: its reconciler carried out two nodes' requests (reconcile.json as
    # firstboot/cluster.py writes it; a real pass needs the API server of tests/kube).
    server = str(base / "server")
    os.makedirs(server)
    _put(server, paths.FIRSTBOOT_STATE_DIR + "/" + paths.RECONCILE_STATUS, json.dumps({
        "state": "done", "message": "2 pending request(s): harv-1 done, harv-2 failed; 41 API requests",
        "updated": "t", "by": "harv-0",
        "nodes": {"harv-1": {"state": "done", "reason": ""}, "harv-2": {"state": "failed", "reason": "no PCIDevice"}}}))
    docs.append(_json("status", "--json", "--root", server))
    return docs


def test_every_key_of_status_json_is_in_the_design(status_docs):
    table = doc_table(STATUS)
    printed: set[str] = set()
    for doc in status_docs:
        printed |= json_paths(doc, maps_of(table))
    assert not _differences("status --json", set(table), printed)


def test_the_status_states_are_the_ones_the_writers_reach(status_docs):
    """The fixture reaches what the table describes: a record, the binder's devices and
    SR-IOV lines, a given-back mark, first boot from status.json and from step records,
    and the notes of broken files (else the key comparison above proves little)."""
    full, given_back, empty, broken, server = status_docs
    assert full["install"]["record"]["outcome"] == "rendered" and full["install"]["set"]["complete"] is True
    assert full["bind"]["devices"] and full["bind"]["sriov"] and full["bind"]["given_back"] is None
    assert full["firstboot"]["source"] == "status.json" and full["firstboot"]["steps"]
    assert full["kernel_args"]["wanted"] == ["iommu=pt"]
    assert given_back["bind"]["given_back"]["file"].endswith("given-back.json")
    assert empty["firstboot"]["state"] == "not-run" and empty["bind"] is None and empty["kernel_args"] is None
    assert broken["install"]["note"] and broken["bind"]["note"] and broken["firstboot"]["source"] == "steps"
    assert full["reconcile"] is None and server["reconcile"]["nodes"]["harv-2"]["state"] == "failed"


# ---------------------------------------------------------------------------------------
# What the design names exists


_LINK = re.compile(r"\]\(([^)\s]+)\)")
_CODE = re.compile(r"`([^`\s]+)`")
# Our own top-level directories and the packages of installer_ext: a code span that
# starts with one of these names a file of this repository (upstream paths in the
# document start with pkg/, package/, plugin/, ... and are not checked here).
_OURS = ("installer_ext", "tests", "templates", "iso-overlay", "bench", "examples")
_PACKAGES = ("host", "config", "plan", "render", "boot", "firstboot", "kube", "install", "tui")


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lowercase, punctuation but `-` and `_` dropped,
    spaces to `-`."""
    text = heading.strip().lstrip("#").strip().lower().replace("`", "")
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def _anchors(path: str) -> set[str]:
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    out, fenced = set(), False
    for line in lines:
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and line.startswith("#"):
            out.add(github_slug(line))
    return out


def _design_text() -> str:
    with open(DESIGN, encoding="utf-8") as f:
        return f.read()


def test_the_design_links_to_documents_and_sections_that_exist():
    problems = []
    for target in _LINK.findall(_design_text()):
        if "://" in target:
            continue
        file, _, anchor = target.partition("#")
        path = os.path.normpath(os.path.join(os.path.dirname(DESIGN), file)) if file else DESIGN
        if not os.path.isfile(path):
            problems.append(f"{target}: no file {os.path.relpath(path, REPO)}")
        elif anchor and anchor not in _anchors(path):
            problems.append(f"{target}: no heading with that anchor in {os.path.relpath(path, REPO)}")
    assert not problems


def test_the_files_the_design_names_exist():
    """A module moved or renamed leaves the design naming what is not there: found here."""
    import glob

    problems = []
    for span in set(_CODE.findall(_design_text())):
        first = span.split("/", 1)[0]
        if "/" not in span or span.startswith("/") or first not in _OURS + _PACKAGES:
            continue
        rel = span if first in _OURS else f"installer_ext/{span}"
        if not glob.glob(os.path.join(REPO, rel.rstrip("/"))):
            problems.append(f"docs/design.md names `{span}`: no {rel} in the repository")
    assert not sorted(problems)


# ---------------------------------------------------------------------------------------
# The checker itself


def test_the_table_reader_and_the_key_walk():
    text = "\n".join([
        "## Contracts", "", STATUS, "", "Words.", "",
        "| key | type | meaning |", "|---|---|---|",
        "| `a` | object | the a |", "| `a.b` | `x` \\| `y` | with a pipe |", "| `m` | map name → bool | free names |",
        "", "| `not` | the | next table |", "### next", "| `z` | int | elsewhere |",
    ])
    table = doc_table(STATUS, text)
    assert table == {"a": "object", "a.b": "`x` | `y`", "m": "map name → bool"}
    doc = {"a": {"b": 1}, "m": {"free": True}, "l": [{"c": 1}, {"d": {"e": 2}}], "s": [1, 2]}
    assert json_paths(doc, maps_of(table)) == {"a", "a.b", "m", "l", "l[].c", "l[].d", "l[].d.e", "s"}
    schema = {"properties": {"a": {"$ref": "#/$defs/a"}, "m": {"additionalProperties": {"type": "boolean"}},
                             "l": {"items": {"properties": {"c": {}}}}},
              "$defs": {"a": {"properties": {"b": {}}}}}
    assert schema_paths(schema, {"m"}) == {"a", "a.b", "m", "l", "l[].c"}
    with pytest.raises(pytest.fail.Exception):
        doc_table("### absent", text)
    assert github_slug("## How installer-ext's arguments reach the line") == "how-installer-exts-arguments-reach-the-line"
    assert github_slug("### The node boot (test_node_boot.py)") == "the-node-boot-test_node_bootpy"
    assert github_slug("## The screen's library: urwid 5.0.1") == "the-screens-library-urwid-501"
