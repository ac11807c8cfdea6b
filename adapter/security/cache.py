"""A small bounded cache with per-entry lifetimes, for TokenReview and SubjectAccessReview answers.

kube-apiserver is asked at most once per key and lifetime: an HPA polling every 15 s, or
several HPAs asking at the same moment, cost one review, not one per request. Answers
expire after a lifetime chosen per answer (an allowed decision lives longer than a
denied one), and the cache never holds more than ``max_entries``: the least recently
used entry goes first. Concurrent lookups of the same missing key share one load, so a
burst of identical requests after expiry sends one review, not a stampede.

The clock is a parameter (``time.monotonic`` by default) so that tests move time by hand.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = ["TTLCache"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


@dataclass(frozen=True, slots=True)
class _Entry(Generic[V]):
    value: V
    expires_at: float


class TTLCache(Generic[K, V]):
    """Bounded least-recently-used cache whose entries expire after their own lifetime.

    Args:
        max_entries: most entries kept; the least recently used is evicted beyond it.
        clock: seconds from an arbitrary origin that never goes backwards.
    """

    def __init__(self, max_entries: int, clock: Callable[[], float] = time.monotonic) -> None:
        if max_entries < 1:
            raise ValueError(f"max_entries must be at least 1, got {max_entries}")
        self._max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[K, _Entry[V]] = OrderedDict()
        self._loading: dict[K, asyncio.Task[V]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def max_entries(self) -> int:
        """The bound given at construction."""
        return self._max_entries

    def get(self, key: K) -> V | None:
        """The live value for ``key``, or ``None`` when absent or expired."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.expires_at <= self._clock():
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return entry.value

    def put(self, key: K, value: V, ttl_seconds: float) -> None:
        """Keep ``value`` for ``ttl_seconds``; a lifetime of zero or less stores nothing."""
        if ttl_seconds <= 0:
            self._entries.pop(key, None)
            return
        self._entries[key] = _Entry(value, self._clock() + ttl_seconds)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)

    def live_keys(self) -> list[K]:
        """The keys of live entries, least recently used first (for inspection)."""
        now = self._clock()
        return [key for key, entry in self._entries.items() if entry.expires_at > now]

    def clear(self) -> None:
        """Forget every entry (loads in progress still finish and store their answer)."""
        self._entries.clear()

    async def get_or_load(
        self,
        key: K,
        load: Callable[[], Awaitable[V]],
        ttl_for: Callable[[V], float],
    ) -> tuple[V, bool]:
        """The cached value for ``key``, or the result of ``load()`` cached for ``ttl_for(value)``.

        Returns ``(value, was_cached)``. Callers that ask for the same missing key while a
        load runs wait for that load instead of starting their own. A load that raises is
        not cached and its exception reaches every waiter. Cancelling one waiter (a client
        that went away) does not cancel the load the others wait for.
        """
        cached = self.get(key)
        if cached is not None:
            return cached, True
        task = self._loading.get(key)
        if task is None:
            task = asyncio.ensure_future(self._load_and_store(key, load, ttl_for))
            self._loading[key] = task
            task.add_done_callback(lambda done: self._finished(key, done))
        value = await asyncio.shield(task)
        return value, False

    def _finished(self, key: K, task: asyncio.Task[V]) -> None:
        if self._loading.get(key) is task:
            del self._loading[key]
        # Every waiter may have been cancelled; reading the exception here keeps asyncio
        # from reporting it as never retrieved. The waiters still receive it.
        if not task.cancelled():
            task.exception()

    async def _load_and_store(
        self, key: K, load: Callable[[], Awaitable[V]], ttl_for: Callable[[V], float]
    ) -> V:
        value = await load()
        self.put(key, value, ttl_for(value))
        return value
