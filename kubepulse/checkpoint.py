"""Checkpoint files of the embedded time-series store, so a restart keeps its history.

The bytes come from :mod:`kubepulse.store.snapshot`; this module only moves them to and
from disk:

- :func:`save_checkpoint` writes atomically: a temporary file in the same directory,
  flushed and fsynced, renamed over the checkpoint with :func:`os.replace`, then the
  directory fsynced so the rename itself survives a power cut. A crash at any moment
  leaves either the old checkpoint or the new one, never a mix.
- :func:`load_checkpoint` reads one back and raises
  :class:`~kubepulse.errors.CheckpointError` for anything torn or corrupt.
- :func:`restore_or_empty` is what the adapter calls at start-up: the stored history, or
  an empty store and a message saying why. A corrupt file is renamed aside
  (``<name>.corrupt-<UTC time>``) for inspection, never deleted and never loaded.

One writer per path: the temporary file has a fixed name, ``.<name>.tmp``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from kubepulse.errors import CheckpointError
from kubepulse.store.snapshot import dump_store, load_store
from kubepulse.store.tsdb import TimeSeriesStore

__all__ = [
    "CheckpointInfo",
    "load_checkpoint",
    "restore_or_empty",
    "save_checkpoint",
]

_READ_BLOCK_BYTES = 1 << 20
_WRITE_BUFFER_BYTES = 1 << 20


@dataclass(frozen=True, slots=True)
class CheckpointInfo:
    """What :func:`save_checkpoint` wrote.

    Attributes:
        path: the checkpoint file.
        size_bytes: its size in bytes.
        series_count: how many series it holds.
        sample_count: how many samples it holds.
        duration_seconds: how long writing took, fsyncs included (monotonic clock).
    """

    path: Path
    size_bytes: int
    series_count: int
    sample_count: int
    duration_seconds: float


def _temporary_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp")


def _fsync_directory(directory: Path) -> None:
    """Make a rename in ``directory`` durable (a no-op where directories cannot be opened)."""
    try:
        descriptor = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. Windows
        return
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def save_checkpoint(store: TimeSeriesStore, path: str | os.PathLike[str]) -> CheckpointInfo:
    """Write ``store`` to ``path`` atomically and durably.

    Raises:
        CheckpointError: the file cannot be written (no space, no permission, no such
            directory). The previous checkpoint, if any, is left as it was.
    """
    started = time.monotonic()
    target = Path(path)
    temporary = _temporary_path(target)
    size_bytes = 0
    try:
        with open(temporary, "wb", buffering=_WRITE_BUFFER_BYTES) as output:
            for piece in dump_store(store):
                output.write(piece)
                size_bytes += len(piece)
            output.flush()
            os.fsync(output.fileno())
        os.replace(temporary, target)
        _fsync_directory(target.parent)
    except OSError as error:
        _remove_quietly(temporary)
        raise CheckpointError(
            f"cannot write checkpoint {target}: {error}; check that {target.parent} exists, "
            "is writable and has free space. The previous checkpoint is unchanged"
        ) from error
    return CheckpointInfo(
        path=target,
        size_bytes=size_bytes,
        series_count=store.series_count,
        sample_count=store.sample_count,
        duration_seconds=time.monotonic() - started,
    )


def _remove_quietly(temporary: Path) -> None:
    """Remove a half-written temporary file; the save's own error is the one to report."""
    try:
        if temporary.is_file():
            temporary.unlink()
    except OSError:  # pragma: no cover - nothing more to do; the next save truncates it
        pass


def _blocks(source: BinaryIO) -> Iterator[bytes]:
    while block := source.read(_READ_BLOCK_BYTES):
        yield block


def load_checkpoint(
    path: str | os.PathLike[str], *, settings_from: TimeSeriesStore | None = None
) -> TimeSeriesStore:
    """Read the store saved at ``path``.

    Args:
        path: the checkpoint file.
        settings_from: a store whose settings the loaded store takes (see
            :func:`kubepulse.store.snapshot.load_store`); by default the checkpoint's own.

    Raises:
        CheckpointError: the file is missing, unreadable, torn or corrupt; the message
            names the file and, for damage, the record and byte offset.
    """
    target = Path(path)
    try:
        with open(target, "rb") as source:
            return _load(source, target, settings_from)
    except OSError as error:
        raise CheckpointError(
            f"cannot read checkpoint {target}: {error}; check the path and its permissions"
        ) from error


def _load(source: BinaryIO, target: Path, settings_from: TimeSeriesStore | None) -> TimeSeriesStore:
    try:
        return load_store(_blocks(source), settings_from=settings_from)
    except CheckpointError as error:
        raise CheckpointError(f"checkpoint {target}: {error}") from error


def _aside_path(path: Path, wall_clock: Callable[[], float]) -> Path:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(wall_clock()))
    candidate = path.with_name(f"{path.name}.corrupt-{stamp}")
    attempt = 1
    while candidate.exists():
        candidate = path.with_name(f"{path.name}.corrupt-{stamp}-{attempt}")
        attempt += 1
    return candidate


def restore_or_empty(
    path: str | os.PathLike[str],
    *,
    factory: Callable[[], TimeSeriesStore],
    wall_clock: Callable[[], float] = time.time,
) -> tuple[TimeSeriesStore, str | None]:
    """The store saved at ``path``, or an empty one and the reason it is empty.

    - No file: ``(factory(), None)``: a first start is not a problem.
    - A good file: the saved history, with the settings of ``factory()``'s store.
    - A torn or corrupt file (or one written with another relative accuracy): it is
      renamed to ``<name>.corrupt-<UTC time>`` in the same directory, never deleted, and
      ``(factory(), message)`` is returned; the message names the file, the damage and
      where the file went. Log it.
    - An unreadable file (permissions): ``(factory(), message)``, the file left alone.

    Args:
        path: the checkpoint file.
        factory: builds an empty store with the current configuration.
        wall_clock: seconds since the epoch, for the name of a moved-aside file.
    """
    target = Path(path)
    empty = factory()
    try:
        source = open(target, "rb")  # noqa: SIM115 - closed in the finally below
    except FileNotFoundError:
        return empty, None
    except OSError as error:
        return empty, (
            f"cannot read checkpoint {target} ({error}); the adapter starts with an empty "
            "store. Fix the file's permissions to keep history across restarts"
        )
    try:
        return _load(source, target, empty), None
    except OSError as error:
        return empty, (
            f"cannot read checkpoint {target} ({error}); the adapter starts with an empty "
            "store and will overwrite the file at the next checkpoint"
        )
    except CheckpointError as error:
        damage = str(error)
    finally:
        source.close()
    aside = _aside_path(target, wall_clock)
    try:
        os.rename(target, aside)
    except OSError as error:
        return empty, (
            f"{damage}. It could not be moved aside to {aside} ({error}); the adapter "
            "starts with an empty store and will overwrite it at the next checkpoint"
        )
    return empty, (
        f"{damage}. The file was moved aside to {aside} for inspection; the adapter "
        "starts with an empty store"
    )
