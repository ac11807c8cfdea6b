"""``python -m kubepulse.cli``: the same as ``kubectl pulse``."""

from __future__ import annotations

import sys

from kubepulse.cli import main

sys.exit(main())
