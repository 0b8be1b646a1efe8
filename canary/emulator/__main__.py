"""``python -m canary.emulator``: run the mesh emulator (see docs/emulator.md)."""

import sys

from canary.emulator.command import main

sys.exit(main())
