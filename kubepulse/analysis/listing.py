"""The ``top`` option of the analyzers with long lists: keep the first N, say what was cut.

At 50,000 pods a limit-breach report lists about 130,000 efficiency figures and
serialises to some 110 MB of JSON; nobody reads that, and an API client may not even
hold it. Analyzers whose lists grow with the number of containers (limit breaches,
recommendations, node pressure's eviction ranking) therefore take ``top``: each list
keeps only its first ``top`` items, in the list's own order (worst or largest first),
while the report's counts still cover every item. What was cut is recorded per list,
under the name the API gives the list, so that a reader can tell a short list from a
cut one.

``top=None`` keeps everything, which is the default everywhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final, TypeVar

from kubepulse.errors import KubepulseValueError

__all__ = ["MAXIMUM_TOP", "Truncation", "check_top"]

MAXIMUM_TOP: Final = 100_000
"""The largest ``top`` accepted: beyond it, leave ``top`` out to get every item."""

_T = TypeVar("_T")


def check_top(top: object) -> int | None:
    """``top`` as a count, or ``None`` for no cut.

    Raises:
        KubepulseValueError: ``top`` is not a whole number between 1 and
            :data:`MAXIMUM_TOP`; the message says what to give instead.
    """
    if top is None:
        return None
    if isinstance(top, bool) or not isinstance(top, int) or not 1 <= top <= MAXIMUM_TOP:
        raise KubepulseValueError(
            f"top must be a whole number between 1 and {MAXIMUM_TOP}, got {top!r}; give the "
            "number of items to keep in each list (e.g. 100), or None to keep them all"
        )
    return top


class Truncation:
    """Cuts lists to ``top`` items and remembers the full length of each list it cut."""

    __slots__ = ("_top", "full_lengths")

    def __init__(self, top: int | None) -> None:
        self._top = top
        self.full_lengths: dict[str, int] = {}
        """API list name (``containerEfficiency``) -> items before the cut, for cut lists."""

    def first(self, name: str, items: Sequence[_T], total: int | None = None) -> tuple[_T, ...]:
        """The first ``top`` of ``items`` (all of them without ``top``), as a tuple.

        ``total`` is the list's full length when ``items`` was already cut by the
        caller (who then built only the items kept); by default ``len(items)``.
        """
        full = len(items) if total is None else total
        if self._top is not None and full > self._top:
            self.full_lengths[name] = full
            return tuple(items[: self._top])
        return tuple(items)
