"""Why a function cannot go to VMs, or a request is refused, as data: stable codes
(docs/planner.md has the table) and the `Blocker` record. The screen words each code
itself; the command line shows the planner's sentence.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# Blocker codes: why a function cannot go to VMs.
BLOCK_NO_IOMMU = "no-iommu"
BLOCK_UNKNOWN = "unknown"
BLOCK_BOOT_VGA = "boot-vga"
BLOCK_BRIDGE = "bridge"
BLOCK_SRIOV_PF = "sriov-pf"
BLOCK_MGMT_NIC = "management-nic"
BLOCK_INSTALL_DISK = "install-disk"
BLOCK_DATA_DISK = "data-disk"
BLOCK_HOST_GPU = "host-gpu"
BLOCK_SAME_GROUP = "same-group"
# Refusals that are not a blocker of the function itself.
REFUSE_NO_INTERRUPT_REMAPPING = "no-interrupt-remapping"
REFUSE_VF_ADDRESSES = "sriov-vf-addresses"  # a PF's VF addresses cannot be worked out
REFUSE_VF_GROUP = "sriov-vf-group"  # a PF's VFs would share its IOMMU group
REFUSE_KERNEL_ARG = "kernel-arg"  # an extraKernelArgs token the policy owns (subject: the token)


@dataclass(frozen=True)
class Blocker:
    """Why a function must not be given to vfio-pci, as data: `code` says what,
    `subject` names the thing it is about (the interface, the disk, the number of VFs,
    for `same-group` the culprit's own code), `tentative` is set while the install
    config has not chosen yet (the NIC or disk *may* become the management network or
    the install disk), `by` is the function that causes a `same-group` blocker.
    `reason` is the planner's sentence for the command line; a screen words the
    fields itself and never reads the sentence back."""

    code: str
    reason: str
    subject: str | None = None
    tentative: bool = False
    by: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "reason": self.reason,
            "subject": self.subject,
            "tentative": self.tentative,
            "by": self.by,
        }
