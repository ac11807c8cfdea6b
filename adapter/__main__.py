"""``kubepulse-adapter``: the custom and external metrics API server.

The adapter is not part of this release yet; until it is, the command says so and exits
with status 1 rather than pretending to serve. The library it will stand on (store,
statistics, selectors, quantities) is in :mod:`kubepulse`.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from kubepulse import __version__

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Explain that the adapter is not available in this version."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments in (["--version"], ["version"]):
        print(f"kubepulse-adapter {__version__}")
        return 0
    print(
        f"kubepulse-adapter {__version__}: the metrics API server is not part of this "
        "version yet. Use `kubepulse-exporter` for node metrics, and see README.md "
        "for what is available.",
        file=sys.stderr,
    )
    return 1


if __name__ == "__main__":
    sys.exit(main())
