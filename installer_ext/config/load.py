"""Load and validate the install config's `pciPassthrough` section (and the `install`
keys the planner needs) into typed `Config`.

Every problem becomes one line naming the key path, the bad value and what is expected
(`pciPassthrough.devices[2].address: "0000:zz:00.0" is not a PCI address like
0000:65:00.0`), raised together as BadInput (exit 2). Nothing from the file reaches a
path or a command before it has passed the strict patterns here.
"""

from __future__ import annotations

import difflib
import functools
import importlib.resources
import json
import logging
import re
from typing import Any

import yaml

from installer_ext.config import keys
from installer_ext.config.model import (
    Choices,
    Config,
    HarvesterChoice,
    InstallInfo,
    ManagementInterface,
    Selector,
    SriovChoice,
)
from installer_ext.errors import BadInput
from installer_ext.fsutil import read_input
from installer_ext.host.address import normalize_address

log = logging.getLogger(__name__)

SECTION = "pciPassthrough"
MAX_BYTES = 1 << 20
MAX_DEPTH = 64
MAX_NODES = 200_000

_TOP_KEYS = [SECTION, "install", "os", "schemeVersion", "serverUrl", "token", "systemSettings"]
_SECTION_KEYS = [
    "enabled", "gpuDrivers", "devices", "hostGpus", "sriov", "allowUnsafeInterrupts",
    "extraKernelArgs", "harvester", "devicePlugin",
]
_HARVESTER_KEYS = ["settings", "addon", "claims"]
_SELECTOR_KEYS = ["address", "id", "kind"]
_SRIOV_KEYS = ["address", "numVfs", "vfsToVfio"]
_INSTALL_KEYS = ["mode", "device", "dataDisk", "managementInterface", "automatic"]
_MGMT_KEYS = ["interfaces", "method", "bondOptions"]
_IFACE_KEYS = ["name", "hwAddr"]

# Kernel arguments that are never written, whatever the config says.
FORBIDDEN_ARGS = {
    "pcie_acs_override": "fakes IOMMU isolation (an out-of-tree patch); never offered",
    "installer_ext.skip": "is the rescue switch for the GRUB menu, not a permanent argument",
}


def load_schema() -> dict[str, Any]:
    # importlib.resources: the schema is read from a source tree, a wheel or the .pyz.
    text = importlib.resources.files("installer_ext.config").joinpath("schema.json").read_text(encoding="utf-8")
    return json.loads(text)


class _Resolver(yaml.resolver.Resolver):
    """YAML 1.1 scalars as Go's yaml (the Harvester installer) reads them: no base-60
    numbers, so an unquoted `0000:01:00.0` or `02:00.0` stays a string instead of
    becoming the float 60.0 or 120.0."""


_Resolver.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag not in ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float")]
    for first, resolvers in yaml.resolver.Resolver.yaml_implicit_resolvers.items()
}
_Resolver.add_implicit_resolver(
    "tag:yaml.org,2002:int",
    re.compile(r"""^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+)$""", re.X),
    list("-+0123456789"),
)
_Resolver.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9_]+(?:[eE][-+][0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)


class _Loader(yaml.reader.Reader, yaml.scanner.Scanner, yaml.parser.Parser, yaml.composer.Composer,
              yaml.constructor.SafeConstructor, _Resolver):
    """A SafeLoader with the resolver above that refuses a key given twice."""

    def __init__(self, stream: str) -> None:
        yaml.reader.Reader.__init__(self, stream)
        yaml.scanner.Scanner.__init__(self)
        yaml.parser.Parser.__init__(self)
        yaml.composer.Composer.__init__(self)
        yaml.constructor.SafeConstructor.__init__(self)
        _Resolver.__init__(self)


def _construct_mapping(loader: _Loader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            hashable = key in seen
        except TypeError:
            raise yaml.constructor.ConstructorError(
                None, None, "a mapping key must be a plain value", key_node.start_mark
            ) from None
        if hashable:
            raise yaml.constructor.ConstructorError(
                None, None, f"key {key!r} given twice", key_node.start_mark
            )
        seen.add(key)
    return yaml.constructor.SafeConstructor.construct_mapping(loader, node, deep=deep)


_Loader.yaml_constructors = dict(yaml.constructor.SafeConstructor.yaml_constructors)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def show(value: Any) -> str:
    """A value as the user would recognise it in a message, escapes visible."""
    try:
        text = json.dumps(value, ensure_ascii=True)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "empty"
    if isinstance(value, (int, float)):
        return "a number"
    return "a string"


def read_yaml(path: str) -> Any:
    """The parsed YAML of `path`, or BadInput with one clear line."""
    data = read_input(path, MAX_BYTES, "an install config")
    if b"\0" in data:
        raise BadInput(f"{path}: binary data (NUL byte at offset {data.index(0)}), not YAML")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BadInput(f"{path}: not UTF-8 text (bad byte at offset {exc.start}), not YAML") from None
    if not text.strip():
        raise BadInput(f"{path}: empty file; expected an install config with a {SECTION} section")
    try:
        doc = yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1} column {mark.column + 1}: " if mark else ""
        problem = exc.problem or exc.context or "invalid YAML"
        raise BadInput(f"{path}: not valid YAML: {where}{problem}") from None
    except yaml.YAMLError as exc:
        raise BadInput(f"{path}: not valid YAML: {str(exc).splitlines()[0]}") from None
    except RecursionError:
        raise BadInput(f"{path}: nested too deeply") from None
    if doc is None:
        raise BadInput(f"{path}: empty file (only comments); expected an install config with a {SECTION} section")
    _check_shape(doc, path)
    return doc


def _check_shape(doc: Any, path: str) -> None:
    """Refuse recursive aliases and absurd nesting before anything walks the tree."""
    count = 0
    stack: list[tuple[Any, int, frozenset[int]]] = [(doc, 0, frozenset())]
    while stack:
        node, depth, parents = stack.pop()
        count += 1
        if count > MAX_NODES:
            raise BadInput(f"{path}: more than {MAX_NODES} values, not an install config")
        if depth > MAX_DEPTH:
            raise BadInput(f"{path}: nested more than {MAX_DEPTH} levels deep")
        if isinstance(node, (dict, list)):
            if id(node) in parents:
                raise BadInput(f"{path}: a YAML alias refers to itself (recursive structure)")
            inner = parents | {id(node)}
            children = node.values() if isinstance(node, dict) else node
            for child in children:
                stack.append((child, depth + 1, inner))


def _key_path(base: str, parts) -> str:
    out = base
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else f".{p}"
    return out


def _expected(schema: dict[str, Any]) -> str:
    desc = schema.get("description")
    if desc:
        return desc.split(": ", 1)[0]
    t = schema.get("type")
    return f"of type {t}" if t else "valid here"


@functools.lru_cache(maxsize=1)
def _schema_validator():
    import jsonschema  # imported here: `detect` must not pay for it

    def strict_pattern(validator, pattern, instance, schema):
        # Python's `$` also matches before a final newline; a whole-string match is
        # what the schema means (ECMA-262 semantics).
        if not validator.is_type(instance, "string"):
            return
        m = re.search(pattern, instance)
        if m is None or m.start() != 0 or m.end() != len(instance):
            yield jsonschema.ValidationError(f"{instance!r} does not match {pattern!r}")

    base = jsonschema.Draft202012Validator
    cls = jsonschema.validators.extend(base, {"pattern": strict_pattern})
    return cls(load_schema())


def _format_error(err, base: str) -> list[str]:
    path = _key_path(base, err.absolute_path)
    v = err.validator
    inst = err.instance
    if v == "additionalProperties":
        allowed = list(err.schema.get("properties", {}))
        out = []
        for key in inst:
            if key in allowed:
                continue
            hint = difflib.get_close_matches(keys.fold(str(key)), [keys.fold(a) for a in allowed], n=1, cutoff=0.6)
            suggestion = ""
            if hint:
                suggestion = next(a for a in allowed if keys.fold(a) == hint[0])
                suggestion = f' (did you mean "{suggestion}"?)'
            out.append(f"{path}.{key}: unknown key{suggestion}; expected one of {', '.join(allowed)}")
        return out
    if v == "required":
        missing = [k for k in err.validator_value if k not in inst]
        return [f"{path}: missing key {k!r}" for k in missing]
    if v in ("minProperties", "maxProperties"):
        found = ", ".join(map(str, inst)) or "nothing"
        return [f"{path}: a selector needs exactly one of address, id, kind (found: {found})"]
    if v == "type":
        return [f"{path}: {show(inst)} is {_type_name(inst)}, expected {_expected(err.schema)}"]
    if v == "enum":
        hint = difflib.get_close_matches(str(inst), [str(x) for x in err.validator_value], n=1, cutoff=0.6)
        suggestion = f' (did you mean "{hint[0]}"?)' if hint else ""
        return [f"{path}: {show(inst)} is not {_expected(err.schema)}{suggestion}"]
    if v in ("pattern", "minimum", "maximum", "maxLength", "maxItems"):
        return [f"{path}: {show(inst)} is not {_expected(err.schema)}"]
    return [f"{path}: {err.message}"]


def _canon_section(section: dict[str, Any], errors: list[str]) -> dict[str, Any]:
    section, errs = keys.canonicalize(section, _SECTION_KEYS, SECTION)
    errors += errs
    if isinstance(section.get("harvester"), dict):
        section["harvester"], errs = keys.canonicalize(section["harvester"], _HARVESTER_KEYS, f"{SECTION}.harvester")
        errors += errs
    for name, canon in (("devices", _SELECTOR_KEYS), ("hostGpus", _SELECTOR_KEYS), ("sriov", _SRIOV_KEYS)):
        items = section.get(name)
        if isinstance(items, list):
            for i, item in enumerate(items):
                if isinstance(item, dict):
                    items[i], errs = keys.canonicalize(item, canon, f"{SECTION}.{name}[{i}]")
                    errors += errs
    return section


def _selectors(items: list[dict[str, Any]], base: str) -> tuple[Selector, ...]:
    out = []
    for i, item in enumerate(items):
        path = f"{base}[{i}]"
        if "address" in item:
            out.append(Selector(address=normalize_address(item["address"]), path=f"{path}.address"))
        elif "id" in item:
            out.append(Selector(id=item["id"].lower(), path=f"{path}.id"))
        else:
            out.append(Selector(kind=item["kind"], path=f"{path}.kind"))
    return tuple(out)


def parse_section(section: Any, errors: list[str]) -> Choices:
    """Validate a `pciPassthrough` value; errors are appended as lines."""
    if section is None:
        section = {}
    if not isinstance(section, dict):
        errors.append(f"{SECTION}: {show(section)} is {_type_name(section)}, expected a mapping")
        return Choices()
    section = _canon_section(dict(section), errors)
    validator = _schema_validator()
    found = sorted(validator.iter_errors(section), key=lambda e: [str(p) for p in e.absolute_path])
    for err in found:
        errors += _format_error(err, SECTION)

    args = []
    extra = section.get("extraKernelArgs", [])
    for i, token in enumerate(extra if isinstance(extra, list) else []):
        name = token.split("=", 1)[0] if isinstance(token, str) else None
        if name in FORBIDDEN_ARGS:
            errors.append(f"{SECTION}.extraKernelArgs[{i}]: {show(token)} {FORBIDDEN_ARGS[name]}")
        elif token not in args:
            args.append(token)
    if found:
        return Choices()
    h = section.get("harvester", {})
    host = section.get("hostGpus")
    return Choices(
        enabled=section.get("enabled", False),
        gpu_drivers=section.get("gpuDrivers", False),
        devices=_selectors(section.get("devices", []), f"{SECTION}.devices"),
        host_gpus=None if host is None else _selectors(host, f"{SECTION}.hostGpus"),
        sriov=tuple(
            SriovChoice(
                address=normalize_address(s["address"]) or "",
                num_vfs=s["numVfs"],
                vfs_to_vfio=s.get("vfsToVfio", True),
                path=f"{SECTION}.sriov[{i}]",
            )
            for i, s in enumerate(section.get("sriov", []))
        ),
        allow_unsafe_interrupts=section.get("allowUnsafeInterrupts", False),
        extra_kernel_args=tuple(args),
        harvester=HarvesterChoice(
            settings=h.get("settings", True), addon=h.get("addon", True), claims=h.get("claims", True)
        ),
        device_plugin=section.get("devicePlugin", "auto"),
    )


def _string(value: Any, path: str, errors: list[str]) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        errors.append(f"{path}: {show(value)} is {_type_name(value)}, expected a string")
        return None
    if "\n" in value or "\0" in value:
        errors.append(f"{path}: {show(value)} contains a line break or NUL")
        return None
    return value


def parse_install(install: Any, errors: list[str]) -> InstallInfo:
    if install is None:
        return InstallInfo(known=False)
    if not isinstance(install, dict):
        errors.append(f"install: {show(install)} is {_type_name(install)}, expected a mapping")
        return InstallInfo(known=False)
    install, errs = keys.canonicalize(install, _INSTALL_KEYS, "install")
    errors += errs
    mgmt: list[ManagementInterface] = []
    mi = install.get("managementInterface")
    if isinstance(mi, dict):
        mi, errs = keys.canonicalize(mi, _MGMT_KEYS, "install.managementInterface")
        errors += errs
        ifaces = mi.get("interfaces") or []
        if not isinstance(ifaces, list):
            errors.append(f"install.managementInterface.interfaces: {show(ifaces)} is {_type_name(ifaces)}, expected a list")
            ifaces = []
        for i, iface in enumerate(ifaces):
            path = f"install.managementInterface.interfaces[{i}]"
            if not isinstance(iface, dict):
                errors.append(f"{path}: {show(iface)} is {_type_name(iface)}, expected a mapping")
                continue
            iface, errs = keys.canonicalize(iface, _IFACE_KEYS, path)
            errors += errs
            name = _string(iface.get("name"), f"{path}.name", errors)
            hw = _string(iface.get("hwAddr"), f"{path}.hwAddr", errors)
            if name or hw:
                mgmt.append(ManagementInterface(name, hw.lower() if hw else None, path))
    elif mi is not None:
        errors.append(f"install.managementInterface: {show(mi)} is {_type_name(mi)}, expected a mapping")
    return InstallInfo(
        known=True,
        mode=_string(install.get("mode"), "install.mode", errors),
        device=_string(install.get("device"), "install.device", errors),
        data_disk=_string(install.get("dataDisk"), "install.dataDisk", errors),
        management=tuple(mgmt),
    )


def parse_config(doc: Any, source: str = "<config>") -> Config:
    if not isinstance(doc, dict):
        raise BadInput(f"{source}: the top level is {_type_name(doc)}, expected a mapping with a {SECTION} section")
    errors: list[str] = []
    top, errs = keys.canonicalize(doc, _TOP_KEYS, "")
    errors += [e.lstrip(".") for e in errs]
    choices = parse_section(top.get(SECTION), errors)
    install = parse_install(top.get("install"), errors)
    if errors:
        raise BadInput(*errors)
    return Config(choices=choices, install=install, source=source, has_section=SECTION in top)


def load_config(path: str) -> Config:
    config = parse_config(read_yaml(path), path)
    log.debug("config %s: %s", path, config)
    return config
