"""The plumbing of a Kubernetes list+watch loop, shared by the exporter and the adapter.

- :class:`TokenBucket` keeps a loop's requests to an average rate;
- :class:`ExponentialBackoff` spaces retries after failures, with jitter so that many
  clients that lost the API server together do not return together;
- :func:`iter_lines` splits a watch response, as it arrives in chunks, into JSON lines.

No I/O: clocks and randomness are injected.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Final

from kubepulse.errors import KubepulseValueError

__all__ = ["ExponentialBackoff", "TokenBucket", "iter_lines"]

_BACKOFF_INITIAL_SECONDS: Final = 0.5
_BACKOFF_MAX_SECONDS: Final = 30.0


def iter_lines(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Split a watch stream's body, as it arrives in chunks, into its JSON lines.

    A line may span chunks and a chunk may hold many lines; blank lines are dropped and
    a last line without its newline is still yielded.
    """
    pending = b""
    for chunk in chunks:
        if not chunk:
            continue
        pending += chunk
        *complete, pending = pending.split(b"\n")
        for line in complete:
            stripped = line.strip()
            if stripped:
                yield stripped
    stripped = pending.strip()
    if stripped:
        yield stripped


class TokenBucket:
    """A token bucket that limits requests to ``rate_per_second`` on average.

    It starts full with ``burst`` tokens (default: one second's worth, at least one), so
    the first list, watch and Node read go out at once. Thread-safe; the clock is
    injected (seconds, monotonic).
    """

    def __init__(
        self,
        rate_per_second: float,
        *,
        burst: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """A full bucket of ``burst`` tokens, refilled at ``rate_per_second``.

        Raises:
            KubepulseValueError: the rate or burst is not a positive finite number.
        """
        if not rate_per_second > 0 or rate_per_second == float("inf"):
            raise KubepulseValueError(
                f"request rate {rate_per_second!r} must be a positive number of requests "
                "per second, such as 5"
            )
        capacity = max(1.0, rate_per_second) if burst is None else burst
        if not capacity >= 1 or capacity == float("inf"):
            raise KubepulseValueError(f"burst {burst!r} must be a finite number of at least 1")
        self._rate = float(rate_per_second)
        self._capacity = float(capacity)
        self._clock = clock
        self._tokens = self._capacity
        self._updated = clock()
        self._lock = threading.Lock()

    @property
    def rate_per_second(self) -> float:
        """Tokens added per second."""
        return self._rate

    def try_acquire(self) -> float:
        """Take a token if one is there: return 0. Otherwise take none and return the
        seconds until one will be."""
        with self._lock:
            now = self._clock()
            elapsed = max(0.0, now - self._updated)
            self._tokens = min(self._capacity, self._tokens + elapsed * self._rate)
            self._updated = now
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return 0.0
            return (1.0 - self._tokens) / self._rate


class ExponentialBackoff:
    """Delays between retries: ``initial_seconds`` doubling up to ``max_seconds``, jittered.

    Each delay is drawn from ``[d * (1 - jitter), d]`` where ``d`` is the capped
    exponential value, so that many exporters that lost the API server at the same moment
    do not come back at the same moment, and no delay exceeds the cap.
    ``random_fraction`` returns a float in ``[0, 1)``; tests inject a fixed one.
    """

    def __init__(
        self,
        *,
        initial_seconds: float = _BACKOFF_INITIAL_SECONDS,
        max_seconds: float = _BACKOFF_MAX_SECONDS,
        factor: float = 2.0,
        jitter: float = 0.5,
        random_fraction: Callable[[], float] = random.random,
    ) -> None:
        """A backoff that has not failed yet.

        Raises:
            KubepulseValueError: a delay is not positive, the cap is below the first
                delay, the factor is below 1 or the jitter is outside ``[0, 1]``.
        """
        if not 0 < initial_seconds <= max_seconds:
            raise KubepulseValueError(
                f"backoff delays must satisfy 0 < initial ({initial_seconds!r}) "
                f"<= max ({max_seconds!r})"
            )
        if not factor >= 1:
            raise KubepulseValueError(f"backoff factor {factor!r} must be at least 1")
        if not 0 <= jitter <= 1:
            raise KubepulseValueError(f"backoff jitter {jitter!r} must be between 0 and 1")
        self._initial = initial_seconds
        self._max = max_seconds
        self._factor = factor
        self._jitter = jitter
        self._random_fraction = random_fraction
        self._failures = 0

    @property
    def failures(self) -> int:
        """Delays handed out since the last :meth:`reset`."""
        return self._failures

    def next_delay(self) -> float:
        """The delay before the next retry, in seconds; each call backs off further."""
        ceiling = self._initial
        for _ in range(self._failures):
            ceiling *= self._factor
            if ceiling >= self._max:
                break
        ceiling = min(ceiling, self._max)
        self._failures += 1
        return ceiling * (1.0 - self._jitter * self._random_fraction())

    def reset(self) -> None:
        """Start again from ``initial_seconds`` (after a success)."""
        self._failures = 0
