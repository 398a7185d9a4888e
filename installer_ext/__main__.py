"""`python -m installer_ext` runs the command line."""

from installer_ext.cli import entry

entry()
