"""How the screen words the planner's blockers and refusals: from their fields (code,
subject, tentative, by), never by reading the planner's sentence back."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from installer_ext.config.model import Choices, InstallInfo, ManagementInterface
from installer_ext.host.facts import gather
from installer_ext.plan.model import Refusal
from installer_ext.tui.session import Session
from installer_ext.tui.words import row_state

INSTALL = InstallInfo(
    known=True,
    device="/dev/sda",
    data_disk="/dev/nvme0n1",
    management=(ManagementInterface("eno1", None, "install.managementInterface.interfaces[0]"),),
)


def words(session: Session, address: str) -> tuple[str, str]:
    st = row_state(session, session.facts.device(address))
    return st.mark, st.short


@pytest.fixture(scope="module")
def facts(machine_root):
    return gather(machine_root("intel-workstation"))


def test_rows_before_the_install_config_is_known(facts):
    s = Session(facts, InstallInfo(), Choices(enabled=True))
    assert words(s, "0000:00:1f.6") == (" - ", "may be mgmt network")
    assert words(s, "0000:00:1f.3") == (" - ", "same group as 00:1f.6")
    assert words(s, "0000:00:17.0") == (" - ", "may hold install disk")
    assert words(s, "0000:00:02.0") == (" - ", "boot display")
    assert words(s, "0000:00:1f.0") == (" - ", "host/ISA bridge")
    assert words(s, "0000:03:00.0") == ("[ ]", "can go to VMs")


def test_rows_once_the_install_config_is_known(facts):
    s = Session(facts, INSTALL, Choices(enabled=True))
    assert words(s, "0000:00:1f.6") == (" - ", "management net eno1")
    assert words(s, "0000:00:17.0") == (" - ", "install disk sda")
    assert words(s, "0000:02:00.0") == (" - ", "data disk nvme0n1")


@pytest.mark.parametrize(
    "refusal, short",
    [
        (Refusal("0000:03:00.0", "Lorem ipsum", "management-nic", fatal=True, subject="eth7"), "management net eth7"),
        (Refusal("0000:03:00.0", "Lorem ipsum", "management-nic", fatal=True, subject="eth7", tentative=True),
         "may be mgmt network"),
        (Refusal("0000:03:00.0", "Lorem ipsum", "data-disk", fatal=True, subject="sdz"), "data disk sdz"),
        (Refusal("0000:03:00.0", "Lorem ipsum", "same-group", fatal=True, by="0000:00:1f.6",
                 subject="management-nic"), "same group as 00:1f.6"),
        (Refusal("0000:03:00.0", "Lorem ipsum", "no-interrupt-remapping", fatal=True), "no interrupt remapping"),
        (Refusal("0000:03:00.0", "Lorem ipsum", "sriov-vf-group", fatal=True), "VFs share its group"),
    ],
)
def test_row_words_come_from_the_fields_not_the_sentence(facts, refusal, short):
    """Whatever the planner's sentence says (here: nothing of use), the row's words
    follow the refusal's code and subject; the sentence is shown whole below."""
    dev = facts.device("0000:03:00.0")
    session = SimpleNamespace(
        passthrough={}, refused={dev.address: refusal}, host_gpus=set(), blocked={}, selectable=set(),
        group_of={}, sriov_plan=lambda address: None,
    )
    st = row_state(session, dev)
    assert (st.mark, st.short, st.long) == (" ! ", "refused: " + short, "Refused: Lorem ipsum")
