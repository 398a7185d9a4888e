"""A model of what the Harvester installer (harvester-installer v1.8; v1.4-v1.7 differ
only in fields we do not read) does with an install config on its way to the hooks.

- `load(original)`: pkg/config/schemas.go LoadHarvesterConfig: the YAML goes into the
  HarvesterConfig struct (pkg/config/config.go); keys match the struct's json names in
  any spelling pkg/config/rename.go FuzzyNames accepts (config/keys.py is_spelling: case, snake_case, a final "s" or "es" dropped; never `-`);
  keys the struct does not have (our `pciPassthrough`) are dropped.
- `marshal(struct)`: gopkg.in/yaml.v3 v3.0.1 `yaml.Marshal`, as pkg/console/util.go
  saveTemp writes `$HARVESTER_CONFIG`: keys are the Go field names lowercased (yaml.v3
  ignores json tags), every field is present with its zero value, four-space indents.
  tests/fixtures/harvester-installer/harvester-config.v1.8.yaml is the real Go output
  this is checked against.
- `hook_env(...)`: the environment harv-install and so elemental's hooks get
  (pkg/console/util.go generateEnvAndConfig and doInstall).
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from installer_ext.config.keys import is_spelling

# (yaml key, json name, kind, sub-struct): the struct fields in declaration order.
S, B, I, LS, MS, IF, P = "str", "bool", "int", "list-str", "map-str", "iface", "ptr"
NETWORK_INTERFACE = [("name", "name", S, None), ("hwaddr", "hwAddr", S, None)]
NETWORK = [
    ("interfaces", "interfaces", "list", NETWORK_INTERFACE), ("method", "method", S, None), ("ip", "ip", S, None),
    ("subnetmask", "subnetMask", S, None), ("gateway", "gateway", S, None),
    ("defaultroute", None, B, None),  # json:"-": never loaded from a config
    ("bondoptions", "bondOptions", MS, None), ("mtu", "mtu", I, None), ("vlanid", "vlanId", I, None),
]
BASIC_AUTH = [("user", "user", S, None), ("password", "password", S, None)]
WEBHOOK = [("event", "event", S, None), ("method", "method", S, None), ("headers", "headers", MS, None),
           ("url", "url", S, None), ("payload", "payload", S, None), ("insecure", "insecure", B, None),
           ("basicauth", "basicAuth", "struct", BASIC_AUTH)]
ADDON = [("enabled", "enabled", B, None), ("valuescontent", "valuesContent", S, None)]
LH_DEFAULTS = [(k.lower(), k, P, None) for k in ("guaranteedEngineManagerCPU", "guaranteedReplicaManagerCPU",
                                                  "guaranteedInstanceManagerCPU", "storageReservedPercentageForDefaultDisk")]
CHART = [("storageclass", "storageClass", "struct", [("replicacount", "replicaCount", I, None)]),
         ("longhorn", "longhorn", "struct", [("defaultsettings", "defaultSettings", "struct", LH_DEFAULTS)]),
         ("enablegocoverdir", "enableGoCoverDir", B, None)]
INSTALL = [
    ("automatic", "automatic", B, None), ("skipchecks", "skipchecks", B, None), ("mode", "mode", S, None),
    ("managementinterface", "managementInterface", "struct", NETWORK),
    ("vip", "vip", S, None), ("viphwaddr", "vipHwAddr", S, None), ("vipmode", "vipMode", S, None),
    ("clusterdns", "clusterDns", S, None), ("clusterpodcidr", "clusterPodCidr", S, None),
    ("clusterservicecidr", "clusterServiceCidr", S, None), ("forceefi", "forceEfi", B, None),
    ("device", "device", S, None), ("configurl", "configUrl", S, None), ("silent", "silent", B, None),
    ("isourl", "isoUrl", S, None), ("poweroff", "powerOff", B, None), ("noformat", "noFormat", B, None),
    ("debug", "debug", B, None), ("tty", "tty", S, None), ("forcegpt", "forceGpt", B, None), ("role", "role", S, None),
    ("withnetimages", "withNetImages", B, None), ("wipealldisks", "wipeAllDisks", B, None),
    ("wipediskslist", "wipeDisksList", LS, None), ("forcembr", "forceMbr", B, None), ("datadisk", "dataDisk", S, None),
    ("webhooks", "webhooks", "list", WEBHOOK), ("addons", "addons", "map-struct", ADDON),
    ("harvester", "harvester", "struct", CHART), ("rawdiskimagepath", "rawDiskImagePath", S, None),
    ("persistentpartitionsize", "persistentPartitionSize", S, None),
]
FILE = [("encoding", "encoding", S, None), ("content", "content", S, None), ("owner", "owner", S, None),
        ("path", "path", S, None), ("rawfilepermissions", "permissions", S, None)]
OS = [
    ("afterinstallchrootcommands", "afterInstallChrootCommands", LS, None), ("sshauthorizedkeys", "sshAuthorizedKeys", LS, None),
    ("writefiles", "writeFiles", "list", FILE), ("hostname", "hostname", S, None), ("modules", "modules", LS, None),
    ("sysctls", "sysctls", MS, None), ("ntpservers", "ntpServers", LS, None), ("dnsnameservers", "dnsNameservers", LS, None),
    ("password", "password", S, None), ("environment", "environment", MS, None), ("labels", "labels", MS, None),
    ("sshd", "sshd", "struct", [("sftp", "sftp", B, None), ("disablepasswordauth", "disablePasswordAuth", B, None)]),
    ("persistentstatepaths", "persistentStatePaths", LS, None),
    ("externalstorage", "externalStorageConfig", "struct", [("enabled", "enabled", B, None), ("multipathconfig", "multiPathConfig", IF, None)]),
    ("additionalkernelarguments", "additionalKernelArguments", S, None),
]
HARVESTER_CONFIG = [
    ("schemeversion", "schemeVersion", I, None), ("serverurl", "serverUrl", S, None), ("token", "token", S, None),
    ("sans", "sans", LS, None), ("os", "os", "struct", OS), ("install", "install", "struct", INSTALL),
    ("runtimeversion", "runtimeVersion", S, None), ("rancherversion", "rancherVersion", S, None),
    ("harvesterchartversion", "harvesterChartVersion", S, None), ("monitoringchartversion", "monitoringChartVersion", S, None),
    ("systemsettings", "systemSettings", MS, None), ("loggingchartversion", "loggingChartVersion", S, None),
    ("kubeovnoperatorchartversion", "kubeovnChartVersion", S, None),
]
_ZERO = {S: "", B: False, I: 0, LS: [], MS: {}, IF: None, P: None, "list": [], "map-struct": {}}


def _load(fields, doc: Any) -> dict[str, Any]:
    given = doc if isinstance(doc, dict) else {}
    out: dict[str, Any] = {}
    for key, json_name, kind, sub in fields:
        value = next((v for k, v in given.items() if is_spelling(k, json_name)), None) if json_name else None
        if kind == "struct":
            out[key] = _load(sub, value)
        elif kind == "list":
            out[key] = [_load(sub, v) for v in value or []]
        elif kind == "map-struct":
            out[key] = {str(k): _load(sub, v) for k, v in (value or {}).items()}
        else:
            out[key] = _ZERO[kind] if value is None else value
    return out


def load(original: dict[str, Any]) -> dict[str, Any]:
    """The struct the installer holds after loading `original` (unknown keys dropped)."""
    return _load(HARVESTER_CONFIG, original)


_PLAIN = re.compile(r"^[A-Za-z0-9/._@](?:[A-Za-z0-9/._:@=,+ -]*[A-Za-z0-9/._@=,+-])?$")


def _scalar(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    s = str(v)
    if s == "" or not _PLAIN.match(s) or yaml.safe_load(s) != s or ": " in s:
        return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return s


def _emit(v: Any, indent: int, out: list[str], first_prefix: str | None = None) -> None:
    pad = " " * indent
    items = list(v.items())
    for i, (k, val) in enumerate(items):
        lead = first_prefix if (i == 0 and first_prefix is not None) else pad
        if isinstance(val, dict) and val:
            out.append(f"{lead}{k}:")
            _emit(val, indent + 4, out)
        elif isinstance(val, list) and val:
            out.append(f"{lead}{k}:")
            for item in val:
                if isinstance(item, dict):
                    _emit(item, indent + 6, out, first_prefix=" " * (indent + 4) + "- ")
                else:
                    out.append(f"{' ' * (indent + 4)}- {_scalar(item)}")
        elif isinstance(val, dict):
            out.append(f"{lead}{k}: {{}}")
        elif isinstance(val, list):
            out.append(f"{lead}{k}: []")
        else:
            out.append(f"{lead}{k}: {_scalar(val)}")


def marshal(struct: dict[str, Any]) -> str:
    """yaml.v3's Marshal of the struct, as the installer writes $HARVESTER_CONFIG."""
    out: list[str] = []
    _emit(struct, 0, out)
    return "\n".join(out) + "\n"


def hook_env(config_file: str, original_url: str, struct: dict[str, Any], cos_file: str = "/tmp/cos.3101776937") -> dict[str, str]:
    """The variables harv-install (and so elemental's after-install hooks) gets from
    harvester-installer pkg/console/util.go v1.8: generateEnvAndConfig (ToCosInstallEnv's
    HARVESTER_* from the install section, after ConfigURL was pointed at the generated
    cos config; HARVESTER_CONFIG; HARVESTER_INSTALLATION_LOG; the original URL as
    HARVESTER_STREAMDISK_CLOUDINIT_URL) and doInstall (data disk, kernel arguments,
    ELEMENTAL_CONFIG*)."""
    inst = struct["install"]
    env = {
        "HARVESTER_AUTOMATIC": str(inst["automatic"]).lower(),
        "HARVESTER_MODE": inst["mode"],
        "HARVESTER_DEVICE": inst["device"],
        "HARVESTER_CONFIG_URL": cos_file,  # NOT the original: it was replaced first
        "HARVESTER_TTY": inst["tty"],
        "HARVESTER_CONFIG": config_file,
        "HARVESTER_INSTALLATION_LOG": "/var/log/console.log",
        "HARVESTER_STREAMDISK_CLOUDINIT_URL": original_url,
        "HARVESTER_ADDITIONAL_KERNEL_ARGUMENTS": struct["os"]["additionalkernelarguments"] or "multipath=off",
        "ELEMENTAL_CONFIG": "/tmp/elemental/config.yaml",
        "ELEMENTAL_CONFIG_DIR": "/tmp/elemental",
    }
    if inst["datadisk"]:
        env["HARVESTER_DATA_DISK"] = inst["datadisk"]
    return env
