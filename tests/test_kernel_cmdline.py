"""Kernel argument names compared the way the kernel compares them, the command line
split the way the kernel splits it, and the policy of arguments installer-ext owns."""

from __future__ import annotations

import pytest

from installer_ext.kernel_cmdline import (
    OWNED,
    UNSAFE_INTERRUPTS_ARG,
    canonical,
    effective,
    missing,
    refusal,
    same_param,
    split_cmdline,
)

# Arguments that defeat the plan, each under the spellings the kernel reads the same.
REFUSED = [
    "pcie_acs_override=downstream", "pcie-acs-override=downstream", "pcie_acs-override=id:10de:2206",
    "pcie_acs_override",
    "intel_iommu=off", "intel-iommu=off", "intel_iommu=on,off", "intel_iommu=off,sm_on",
    "iommu=off", "iommu=pt,off", "iommu=offline",
    "amd_iommu=off", "amd-iommu=off", "amd_iommu=fullflush,off", "amd_iommu=xoff",
    "intremap=off", "intremap=nosid,off", "nointremap",
    "vfio.enable_unsafe_noiommu_mode=1", "vfio.enable-unsafe-noiommu-mode", "vfio.enable_unsafe_noiommu_mode=0",
    "vfio-pci.ids=10de:2206", "vfio_pci.ids=", "vfio-pci.ids",
    "pci-stub.ids=10de:2206", "pci_stub.ids=8086:1533",
    "modprobe.blacklist=vfio_pci", "modprobe.blacklist=nouveau,vfio-pci", "module_blacklist=vfio_iommu_type1",
    "rd.driver.blacklist=vfio", "rdblacklist=vfio-pci-core", "module-blacklist=vfio",
    "initcall_blacklist=vfio_pci_init", "initcall-blacklist=foo_init,vfio_init",
    "installer_ext.skip=1", "installer-ext.skip=1", "installer_ext.skip", "installer_ext.anything=x",
    "vfio_iommu_type1.allow_unsafe_interrupts=1", "vfio-iommu-type1.allow-unsafe-interrupts=1",
    "vfio_iommu_type1.allow_unsafe_interrupts",
    "third_party_kernel_args=x", "foo=third_party_kernel_args",
]
ACCEPTED = [
    "intel_iommu=on", "iommu=pt", "amd_iommu=force_isolation", "intel_iommu=on,sm_on,igfx_off",
    "intel_iommu", "iommu", "amd_iommu", "intremap=nosid", "intremap=on",
    "modprobe.blacklist=nouveau", "modprobe.blacklist", "rd.driver.blacklist=nouveau,radeon",
    "initcall_blacklist=foo_init", "vfio_pci.disable_vga=1", "vfio-pci.disable_idle_d3=1",
    "vfio_iommu_type1.dma_entry_limit=131072", "video=efifb:off", "nvidia-drm.modeset=1",
    "console=ttyS0,115200n8", "multipath=off", "rd.driver.pre=vfio-pci",
    # The kernel compares names case-sensitively: these are other, unknown parameters
    # that it passes to init as environment variables.
    "INTEL_IOMMU=off", "Pcie_acs_override=downstream", "VFIO-PCI.ids=10de:2206",
]


@pytest.mark.parametrize("token", REFUSED)
def test_the_policy_refuses_what_defeats_the_plan(token):
    assert refusal(token) is not None, token


@pytest.mark.parametrize("token", ACCEPTED)
def test_the_policy_lets_other_arguments_through(token):
    assert refusal(token) is None, (token, refusal(token))


def test_a_dash_spelling_is_named_in_the_reason():
    why = refusal("pcie-acs-override=downstream")
    assert "fakes IOMMU isolation" in why and "the kernel reads pcie-acs-override as pcie_acs_override" in why


def test_the_reason_names_the_kernels_spelling_only_when_it_differs():
    owned = {o.name: o.reason for o in OWNED}
    assert refusal("installer_ext.skip=1") == owned["installer_ext."]
    assert refusal("installer-ext.skip=1") == (
        owned["installer_ext."] + " (the kernel reads installer-ext.skip as installer_ext.skip)")
    assert refusal("intel_iommu=off") == owned["intel_iommu"]
    assert refusal("intel-iommu=off") == owned["intel_iommu"] + " (the kernel reads intel-iommu as intel_iommu)"


def test_the_planners_own_arguments_pass_when_allowed():
    assert refusal(UNSAFE_INTERRUPTS_ARG) is not None
    assert refusal(UNSAFE_INTERRUPTS_ARG, allowed={UNSAFE_INTERRUPTS_ARG}) is None
    assert refusal("intel_iommu=off", allowed={UNSAFE_INTERRUPTS_ARG}) is not None


def test_the_owned_list_is_short_and_documented():
    names = [o.name for o in OWNED]
    assert len(names) == len(set(names)) <= 20
    assert all(o.reason and o.when for o in OWNED)
    assert {"pcie_acs_override", "intel_iommu", "amd_iommu", "iommu", "vfio_pci.ids", "modprobe.blacklist", "installer_ext."} <= set(names)


def test_names_compare_like_parameq():
    assert canonical("vfio-pci.ids") == "vfio_pci.ids"
    assert same_param("intel-iommu=off", "intel_iommu=on")
    assert same_param("a-b_c", "a_b-c=1")
    assert not same_param("intel_iommu=on", "Intel_iommu=on")  # case-sensitive
    assert not same_param("iommu=pt", "iommu.passthrough=1")
    assert not same_param("intel_iommu", "intel_iommux")


def test_split_cmdline_follows_next_arg():
    text = 'BOOT_IMAGE=(loop0)/boot/vmlinuz  console=tty1\tx="a b" "y=c d" "z e" w\n'
    assert split_cmdline(text) == ["BOOT_IMAGE=(loop0)/boot/vmlinuz", "console=tty1", "x=a b", "y=c d", "z e", "w"]
    assert split_cmdline("") == [] and split_cmdline("   \n") == []
    assert split_cmdline("=x a==b") == ["=x", "a==b"]
    # An "=" that opens the argument is no separator (next_arg's `equals == 0` means none
    # found), so the quotes of what follows are kept, as the kernel keeps them.
    assert split_cmdline('="a b" c') == ['="a b"', "c"]
    # A closing quote is dropped only where a quote opened the argument or its value
    # (next_arg: `if (quoted && args[i-1] == '"')`); an unquoted one is kept, as is the
    # last character of a quoted argument that never closes.
    assert split_cmdline('a=b" c') == ['a=b" c']
    assert split_cmdline('ab"') == ['ab"']
    assert split_cmdline('"a=bc') == ["a=bc"]


def test_the_last_argument_of_a_parameter_is_the_one_that_counts():
    line = ["intel_iommu=on", "iommu=pt", "intel-iommu=off"]
    assert not effective(line, "intel_iommu=on")
    assert effective(line, "intel_iommu=off") and effective(line, "iommu=pt")
    assert effective(["quiet"], "quiet") and not effective(["quiet=1"], "quiet")
    # An empty value is a value: `quiet=` is not `quiet` (val "" against val NULL).
    assert not effective(["quiet="], "quiet") and not effective(["quiet"], "quiet=")
    # An argument the line does not have at all does not take effect, with or without a value.
    assert missing(["quiet", "iommu=pt"], ["splash"]) == ["quiet", "iommu=pt"]
    assert missing(["iommu=pt", "x=1", "intel_iommu=on"], line) == ["x=1", "intel_iommu=on"]
