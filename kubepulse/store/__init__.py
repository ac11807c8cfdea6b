"""The embedded time-series store: compressed chunks, series, the store, its snapshots.

- :mod:`~kubepulse.store.chunk`: lossless compressed chunks of one series' samples,
  each carrying the mergeable summary of its samples.
- :mod:`~kubepulse.store.series`: one series, a raw head and hourly chunks behind it.
- :mod:`~kubepulse.store.tsdb`: :class:`TimeSeriesStore`, every series by name and labels
  with a postings index, retention and deletion.
- :mod:`~kubepulse.store.snapshot`: the checkpoint byte format (files are written by
  :mod:`kubepulse.checkpoint`).

Pure: nothing here reads a clock, a file or the network.
"""

from __future__ import annotations

from kubepulse.store.chunk import decode_chunk, encode_chunk
from kubepulse.store.series import AppendOutcome, Series, SeriesSettings
from kubepulse.store.snapshot import (
    SNAPSHOT_FORMAT_VERSION,
    SNAPSHOT_MAGIC,
    dump_store,
    load_store,
)
from kubepulse.store.tsdb import (
    METRIC_NAME_LABEL,
    CompactionResult,
    LabelMatcher,
    SeriesHandle,
    TimeSeriesStore,
)

__all__ = [
    "METRIC_NAME_LABEL",
    "SNAPSHOT_FORMAT_VERSION",
    "SNAPSHOT_MAGIC",
    "AppendOutcome",
    "CompactionResult",
    "LabelMatcher",
    "Series",
    "SeriesHandle",
    "SeriesSettings",
    "TimeSeriesStore",
    "decode_chunk",
    "dump_store",
    "encode_chunk",
    "load_store",
]
