"""`python -m installer_ext` runs the command line."""

import sys

from installer_ext.cli import main

sys.exit(main())
