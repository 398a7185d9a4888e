"""The screen writes the whole install config back with only its section replaced:
comments and order kept wherever the text allows, the same data always."""

from __future__ import annotations

import pytest

from installer_ext.config.goyaml import parse_yaml
from installer_ext.config.rewrite import section_text, with_section

NEW = {"enabled": True, "devices": [{"address": "0000:02:00.0"}]}

CONFIG = """\
# Harvester install config for node 3
schemeVersion: 1
token: secret   # the cluster token
install:
  mode: create
  device: /dev/sda   # the SATA disk
  managementInterface:
    interfaces:
      - name: eno1
pciPassthrough:
  enabled: false
  # the GPU, later
  devices: []

# OS settings below
os:
  hostname: node3
"""


def test_the_rest_of_the_document_stays_byte_for_byte():
    doc = parse_yaml(CONFIG, "c")
    out = with_section(CONFIG, doc, NEW, "c")
    assert out.comments_kept
    head, tail = CONFIG.split("pciPassthrough:\n")
    assert out.text.startswith(head)
    assert out.text.endswith("\n# OS settings below\nos:\n  hostname: node3\n")
    assert section_text(NEW) in out.text
    again = parse_yaml(out.text, "o")
    assert again["pciPassthrough"] == NEW
    assert {k: v for k, v in again.items() if k != "pciPassthrough"} == {
        k: v for k, v in doc.items() if k != "pciPassthrough"
    }
    assert list(again) == list(doc)  # the key order too


def test_a_config_without_the_section_gets_it_at_the_end():
    text = "install:\n  device: /dev/sda  # keep me"  # no final newline
    out = with_section(text, parse_yaml(text, "c"), NEW, "c")
    assert out.comments_kept and out.text == text + "\n" + section_text(NEW)


@pytest.mark.parametrize(
    "text",
    [
        "pciPassthrough: {enabled: false}  # old\ninstall: {device: /dev/sda}\n",
        "pci_passthrough:\n  enabled: false\ninstall:\n  device: /dev/sda\n",
        "install:\n  device: /dev/sda\npciPassthrough:\n",
        "install:\n  device: /dev/sda\npciPassthrough:\n  enabled: false",
    ],
)
def test_other_spellings_and_shapes_of_the_section_are_replaced_in_place(text):
    out = with_section(text, parse_yaml(text, "c"), NEW, "c")
    assert out.comments_kept
    again = parse_yaml(out.text, "o")
    assert again == {"install": {"device": "/dev/sda"}, "pciPassthrough": NEW}


def test_where_the_text_cannot_be_edited_the_data_is_written_again():
    # An anchor in the section that another key uses: cutting the section out would
    # break the alias. The same data comes back, without the comments.
    text = "pciPassthrough:\n  harvester: &h {addon: false}\nnotes: *h  # uses the anchor\n"
    doc = parse_yaml(text, "c")
    out = with_section(text, doc, NEW, "c")
    assert not out.comments_kept
    assert parse_yaml(out.text, "o") == {"notes": {"addon": False}, "pciPassthrough": NEW}
    flow = "{install: {device: /dev/sda}, pciPassthrough: {enabled: false}}"
    out = with_section(flow, parse_yaml(flow, "c"), NEW, "c")
    assert not out.comments_kept and parse_yaml(out.text, "o") == {"install": {"device": "/dev/sda"}, "pciPassthrough": NEW}


def test_without_a_config_only_the_section_is_written():
    out = with_section(None, None, NEW, "c")
    assert out.text == section_text(NEW) and out.text.startswith("pciPassthrough:\n  enabled: true\n")
