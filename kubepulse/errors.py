"""The exception hierarchy of kubepulse.

Everything the library raises on purpose derives from :class:`KubepulseError`, so callers
can catch one type. Errors caused by bad input also derive from :class:`ValueError`, and
their message says what was wrong and what to do about it.
"""

from __future__ import annotations

__all__ = [
    "CheckpointError",
    "KubepulseError",
    "KubepulseValueError",
    "UnknownObjectError",
]


class KubepulseError(Exception):
    """Base class of every error kubepulse raises on purpose."""


class KubepulseValueError(KubepulseError, ValueError):
    """Bad input: a quantity, selector, duration, object or argument that cannot be used."""


class UnknownObjectError(KubepulseValueError):
    """The input names an object the cluster does not have: a namespace, node, Deployment.

    The message lists (some of) the names that do exist. APIs answer it with 404.
    """


class CheckpointError(KubepulseError):
    """A checkpoint on disk is torn, corrupt or from an unknown format version.

    It is never loaded partially: the caller decides whether to start empty, and the
    file is kept for inspection.
    """
