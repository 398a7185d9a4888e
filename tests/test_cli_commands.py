"""How a command is wired: one table in cli.py, one declaration per command in its face
module (installer_ext/commands), one path from the command line to `run`, and only the
chosen command's module imported."""

from __future__ import annotations

import argparse
import ast
import dataclasses
import importlib
import os
import pkgutil
import subprocess
import sys

import pytest

import installer_ext
import installer_ext.commands
from installer_ext import cli
from installer_ext.commands import Command
from installer_ext.errors import BadInput, Refused
from tests.cli import REPO, run

NAMES = list(cli.MODULES)
# What `detect` must never load: the screen, the templates, the schema validator, the
# YAML parser, TLS (the first-boot client), udev.
HEAVY = ("urwid", "jinja2", "jsonschema", "yaml", "ssl", "pyudev")
FACES = "installer_ext.commands"


def face_modules() -> set[str]:
    """Every module of the faces package that declares commands (common.py holds helpers)."""
    names = {f"{FACES}.{m.name}" for m in pkgutil.iter_modules(installer_ext.commands.__path__)}
    return {n for n in names if hasattr(importlib.import_module(n), "COMMANDS")}


def test_the_table_and_the_declarations_agree():
    declared = {}
    for module in face_modules():
        for c in importlib.import_module(module).COMMANDS:
            assert isinstance(c, Command), (module, c)
            assert c.name not in declared, f"{c.name} declared in {declared.get(c.name)} and {module}"
            declared[c.name] = module
    assert declared == cli.MODULES


@pytest.mark.parametrize("name", NAMES)
def test_every_command_has_one_line_of_help_and_shows_it(name):
    c = cli.command(name)
    assert c.help and "\n" not in c.help and c.help == c.help.strip()
    r = run(name, "--help")
    assert r.rc == 0, r.err
    assert r.out.startswith(f"usage: installer-ext {name} ")
    # The command's --help opens with its help, wrapped as argparse wraps it.
    assert " ".join(r.out.split("\n\n")[1].split()) == c.help


def test_the_top_level_help_lists_every_command_with_its_help():
    r = run("--help")
    assert r.rc == 0, r.err
    text = " ".join(r.out.split())
    listed = [line.split()[0] for line in r.out.splitlines() if line.startswith("    ") and line[4] != " "]
    assert listed == NAMES  # each once, in the table's order
    for name in NAMES:
        assert f"{name} {cli.command(name).help}" in text


def _recording(monkeypatch, name: str, outcome) -> list[argparse.Namespace]:
    """Replace command `name`'s run in its module's declaration by one that records the
    parsed arguments and returns or raises `outcome`."""
    seen: list[argparse.Namespace] = []
    module = importlib.import_module(cli.MODULES[name])

    def fake_run(args: argparse.Namespace) -> int:
        seen.append(args)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    replaced = tuple(dataclasses.replace(c, run=fake_run) if c.name == name else c for c in module.COMMANDS)
    monkeypatch.setattr(module, "COMMANDS", replaced)
    return seen


# The least each command's parser accepts.
REQUIRED = {
    "plan": ["--config", "c.yaml"],
    "render": ["--config", "c.yaml", "--target", "t"],
    "kernel-args": ["--plan", "p.json", "--grubenv", "g"],
}


@pytest.mark.parametrize("name", NAMES)
def test_every_command_runs_through_the_same_path(name, monkeypatch, capsys):
    """main() parses with the command's own options, calls its declared run with them,
    and turns its result and its errors into the same exit codes and lines."""
    argv = [name, *REQUIRED.get(name, [])]
    seen = _recording(monkeypatch, name, 0)
    assert cli.main(argv) == 0
    [args] = seen
    assert args.command == name and args.debug is False
    defaults = vars(cli.build_parser(name).parse_args(argv))
    assert vars(args) == defaults

    _recording(monkeypatch, name, BadInput("--root /x: no such directory", "second line"))
    capsys.readouterr()
    assert cli.main(argv) == 2
    assert capsys.readouterr().err == "installer-ext: --root /x: no such directory\ninstaller-ext: second line\n"

    _recording(monkeypatch, name, Refused("refused: 01:00.0: in use"))
    assert cli.main(argv) == 3
    assert capsys.readouterr().err == "installer-ext: refused: 01:00.0: in use\n"

    _recording(monkeypatch, name, KeyError("boom"))
    assert cli.main(argv) == 1
    err = capsys.readouterr().err
    assert err == "installer-ext: internal error: KeyError: 'boom' (rerun with --debug)\n"

    _recording(monkeypatch, name, KeyError("boom"))
    with pytest.raises(KeyError):
        cli.main(["--debug", *argv])


def _loaded(*argv: str) -> tuple[set[str], set[str]]:
    """(heavy modules, face modules) a fresh interpreter has loaded after main(argv)."""
    code = (
        "import contextlib, io, sys\n"
        "from installer_ext.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try:\n"
        f"        main({list(argv)!r})\n"
        "    except SystemExit:\n"
        "        pass\n"
        "print(' '.join(sorted(sys.modules)))\n"
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert p.returncode == 0, p.stderr
    modules = set(p.stdout.split())
    heavy = {m for m in modules if m.split(".")[0] in HEAVY}
    faces = {m for m in modules if m.startswith(FACES + ".")} - {f"{FACES}.common"}
    return heavy, faces


def test_detect_loads_its_own_face_and_nothing_heavy(machine_root):
    heavy, faces = _loaded("detect", "--root", machine_root("intel-workstation"), "--json")
    assert heavy == set()
    assert faces == {f"{FACES}.detect"}
    heavy, faces = _loaded("detect", "--root", machine_root("intel-workstation"))
    assert heavy == set() and faces == {f"{FACES}.detect"}


@pytest.mark.parametrize("name", NAMES)
def test_a_commands_help_loads_its_own_face_only(name):
    heavy, faces = _loaded(name, "--help")
    assert faces == {cli.MODULES[name]}
    assert heavy == set(), f"{name} --help imports {sorted(heavy)}"


def test_the_top_level_help_loads_every_face_and_nothing_heavy():
    heavy, faces = _loaded("--help")
    assert faces == set(cli.MODULES.values())
    assert heavy == set()


def _imports(path: str) -> set[str]:
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), path)
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
    return out


def test_the_layers_hold_no_command_line_code():
    """argparse belongs to cli.py and the faces; no layer module imports the CLI."""
    pkg = os.path.dirname(installer_ext.__file__)
    offenders = []
    for dirpath, _, files in os.walk(pkg):
        for f in files:
            if not f.endswith(".py"):
                continue
            path = os.path.join(dirpath, f)
            rel = os.path.relpath(path, pkg)
            if rel == "cli.py" or rel == "__main__.py" or rel.startswith("commands" + os.sep):
                continue
            bad = {m for m in _imports(path) if m == "argparse" or m == "installer_ext.cli" or m.startswith(FACES)}
            if bad:
                offenders.append(f"{rel}: {sorted(bad)}")
    assert offenders == []
