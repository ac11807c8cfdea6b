"""Compressed chunks: lossless round trips, codec choice, stored summaries, corruption."""

from __future__ import annotations

import math
import random
import struct
from collections.abc import Callable, Sequence

import pytest

from kubepulse.errors import KubepulseValueError
from kubepulse.stats.summary import SeriesKind, WindowSummary
from kubepulse.store.chunk import (
    CHUNK_HEADER,
    MAX_CHUNK_SAMPLES,
    ValueCodec,
    chunk_sample_count,
    chunk_summary,
    chunk_time_range,
    decode_chunk,
    encode_chunk,
    read_chunk_header,
)

START_MS = 1_700_000_000_000 - 1_700_000_000_000 % 3_600_000
STEP_MS = 15_000


def bits(values: Sequence[float]) -> list[bytes]:
    """Float bit patterns, so that NaN payloads and -0.0 are compared exactly."""
    return [struct.pack("<d", value) for value in values]


def regular_timestamps(count: int, start_ms: int = START_MS) -> list[int]:
    return [start_ms + index * STEP_MS for index in range(count)]


def jittered_timestamps(rng: random.Random, count: int) -> list[int]:
    stamps = []
    current = START_MS
    for _ in range(count):
        current += STEP_MS + rng.randint(-40, 40)
        stamps.append(current)
    return stamps


def cpu_counter_seconds(rng: random.Random, count: int) -> list[float]:
    """A CPU usage counter in seconds with microsecond resolution, as cgroups give it."""
    usage_us = rng.randint(0, 10**11)
    rate = rng.uniform(0.01, 2.0)
    values = []
    for _ in range(count):
        rate = max(0.0, rate + rng.gauss(0.0, 0.05))
        usage_us += int(rate * STEP_MS * 1000 * rng.uniform(0.9, 1.1))
        values.append(usage_us / 10**6)
    return values


def working_set_bytes(rng: random.Random, count: int) -> list[float]:
    pages = rng.randint(10_000, 1_000_000)
    values = []
    for _ in range(count):
        pages = max(1, pages + int(rng.gauss(0, 40)))
        values.append(float(pages * 4096))
    return values


def random_floats(rng: random.Random, count: int) -> list[float]:
    return [rng.uniform(-1e6, 1e6) for _ in range(count)]


def negative_gauge(rng: random.Random, count: int) -> list[float]:
    return [float(-rng.randint(0, 1000)) for _ in range(count)]


def constant(rng: random.Random, count: int) -> list[float]:
    return [2.0**30] * count


def huge_and_tiny(rng: random.Random, count: int) -> list[float]:
    choices = [1e308, -1e308, 5e-324, -5e-324, 2.2250738585072014e-308, 1e-300, 2.0**62, -(2.0**63)]
    return [rng.choice(choices) for _ in range(count)]


def huge_integers(rng: random.Random, count: int) -> list[float]:
    """Exact integers whose differences overflow int64: must fall back to floats."""
    return [float(rng.choice((1, -1)) * 2**63 * rng.randint(1, 8)) for _ in range(count)]


def special_floats(rng: random.Random, count: int) -> list[float]:
    nan_with_payload = struct.unpack("<d", struct.pack("<Q", 0x7FF8_0000_DEAD_BEEF))[0]
    staleness_marker = struct.unpack("<d", struct.pack("<Q", 0x7FF0_0000_0000_0002))[0]
    choices = [0.0, -0.0, math.nan, nan_with_payload, staleness_marker, 1.5, -2.25]
    return [rng.choice(choices) for _ in range(count)]


def nine_decimals(rng: random.Random, count: int) -> list[float]:
    return [round(rng.uniform(0, 100), 9) for _ in range(count)]


SHAPES: dict[str, tuple[SeriesKind, Callable[[random.Random, int], list[float]]]] = {
    "cpu counter": (SeriesKind.COUNTER, cpu_counter_seconds),
    "working set": (SeriesKind.GAUGE, working_set_bytes),
    "random floats": (SeriesKind.GAUGE, random_floats),
    "negative": (SeriesKind.GAUGE, negative_gauge),
    "constant": (SeriesKind.GAUGE, constant),
    "huge and tiny": (SeriesKind.GAUGE, huge_and_tiny),
    "huge integers": (SeriesKind.GAUGE, huge_integers),
    "nine decimals": (SeriesKind.GAUGE, nine_decimals),
}


@pytest.mark.parametrize("shape", sorted(SHAPES))
@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("count", [1, 2, 3, 17, 240])
def test_round_trip_is_bit_exact(shape: str, seed: int, count: int) -> None:
    rng = random.Random(f"{shape}-{seed}-{count}")
    kind, make_values = SHAPES[shape]
    values = make_values(rng, count)
    timestamps = jittered_timestamps(rng, count) if seed % 2 else regular_timestamps(count)
    chunk = encode_chunk(kind, timestamps, values)
    decoded_timestamps, decoded_values = decode_chunk(chunk)
    assert list(decoded_timestamps) == timestamps
    assert bits(decoded_values) == bits(values)
    assert chunk_time_range(chunk) == (timestamps[0], timestamps[-1])
    assert chunk_sample_count(chunk) == count


@pytest.mark.parametrize("seed", range(4))
def test_special_floats_survive_bit_for_bit(seed: int) -> None:
    rng = random.Random(seed)
    values = special_floats(rng, 240)
    chunk = encode_chunk(SeriesKind.GAUGE, regular_timestamps(240), values, summarize=False)
    assert read_chunk_header(chunk).codec is ValueCodec.FLOAT_XOR
    assert bits(decode_chunk(chunk)[1]) == bits(values)


def test_gaps_and_irregular_timestamps_round_trip() -> None:
    rng = random.Random(7)
    timestamps = sorted(rng.sample(range(START_MS, START_MS + 3_600_000), 200))
    values = working_set_bytes(rng, 200)
    decoded_timestamps, decoded_values = decode_chunk(
        encode_chunk(SeriesKind.GAUGE, timestamps, values)
    )
    assert list(decoded_timestamps) == timestamps
    assert list(decoded_values) == values


SCALED = (ValueCodec.SCALED_DELTA, ValueCodec.SCALED_DELTA2)


@pytest.mark.parametrize(
    ("values", "codecs", "exponent"),
    [
        ([12.345678, 12.345679, 12.5], SCALED, 6),
        ([4096.0 * n for n in (3, 5, 4, 9)], SCALED, 0),
        ([9e15, 9e15 + 2, 9e15 - 4], SCALED, 0),
        ([1e300, 2e300, -1e300], (ValueCodec.FLOAT_XOR,), 0),
        ([0.1, 0.2, 0.30000000000000004], (ValueCodec.FLOAT_XOR,), 0),
        ([1.0, -0.0, 2.0], (ValueCodec.FLOAT_XOR,), 0),
        ([1.0, math.inf], (ValueCodec.FLOAT_XOR,), 0),
        ([1.0, math.nan], (ValueCodec.FLOAT_XOR,), 0),
        ([1.5, 1e308], (ValueCodec.FLOAT_XOR,), 0),
    ],
)
def test_codec_choice(values: list[float], codecs: tuple[ValueCodec, ...], exponent: int) -> None:
    chunk = encode_chunk(SeriesKind.GAUGE, regular_timestamps(len(values)), values, summarize=False)
    header = read_chunk_header(chunk)
    assert header.codec in codecs
    assert header.decimal_exponent == exponent
    assert bits(decode_chunk(chunk)[1]) == bits(values)


def test_second_differences_when_the_rate_drifts() -> None:
    """A counter whose increment grows steadily: first differences ramp, second are constant."""
    values = [0.0]
    for index in range(239):
        values.append(values[-1] + 1000 + index)
    chunk = encode_chunk(SeriesKind.COUNTER, regular_timestamps(240), values, summarize=False)
    assert read_chunk_header(chunk).codec is ValueCodec.SCALED_DELTA2
    assert list(decode_chunk(chunk)[1]) == values
    wandering = [float(1000 + (index % 7) * 3) for index in range(240)]
    chunk = encode_chunk(SeriesKind.GAUGE, regular_timestamps(240), wandering, summarize=False)
    assert read_chunk_header(chunk).codec is ValueCodec.SCALED_DELTA


def test_regular_data_compresses_to_a_few_bytes() -> None:
    """Constant values at a fixed interval cost almost nothing: the header and a little."""
    chunk = encode_chunk(
        SeriesKind.GAUGE, regular_timestamps(240), [2.0**30] * 240, summarize=False
    )
    assert len(chunk) < CHUNK_HEADER.size + 40
    # Page-aligned working sets: the common divisor removes 12 bits per sample.
    rng = random.Random(3)
    pages = working_set_bytes(rng, 240)
    page_chunk = encode_chunk(SeriesKind.GAUGE, regular_timestamps(240), pages, summarize=False)
    assert len(page_chunk) < 2 * 240


@pytest.mark.parametrize("kind", list(SeriesKind))
def test_stored_summary_equals_summary_of_the_samples(kind: SeriesKind) -> None:
    rng = random.Random(kind.value)
    values = cpu_counter_seconds(rng, 240)
    timestamps = jittered_timestamps(rng, 240)
    chunk = encode_chunk(kind, timestamps, values, relative_accuracy=0.02)
    expected = WindowSummary.from_samples(kind, timestamps, values, relative_accuracy=0.02)
    assert expected is not None
    stored = chunk_summary(chunk)
    assert stored is not None
    assert stored.to_bytes() == expected.to_bytes()


def test_chunk_without_summary() -> None:
    timestamps = regular_timestamps(3)
    assert (
        chunk_summary(encode_chunk(SeriesKind.GAUGE, timestamps, [1.0, 2.0, 3.0], summarize=False))
        is None
    )
    assert chunk_summary(encode_chunk(SeriesKind.GAUGE, timestamps, [math.nan] * 3)) is None


@pytest.mark.parametrize(
    ("timestamps", "values", "problem"),
    [
        ([], [], "empty"),
        ([1, 2], [1.0], "one timestamp per value"),
        ([1, 1], [1.0, 2.0], "strictly increasing"),
        ([2, 1], [1.0, 2.0], "strictly increasing"),
        ([0, 2**33], [1.0, 2.0], "spans at most"),
        (list(range(MAX_CHUNK_SAMPLES + 1)), [0.0] * (MAX_CHUNK_SAMPLES + 1), "at most"),
    ],
)
def test_bad_input_is_refused(timestamps: list[int], values: list[float], problem: str) -> None:
    with pytest.raises(KubepulseValueError, match=problem):
        encode_chunk(SeriesKind.GAUGE, timestamps, values)


def corrupted(chunk: bytes, position: int, byte: int) -> bytes:
    return chunk[:position] + bytes((byte,)) + chunk[position + 1 :]


def test_corrupt_chunks_are_reported() -> None:
    rng = random.Random(11)
    chunk = encode_chunk(SeriesKind.COUNTER, regular_timestamps(240), cpu_counter_seconds(rng, 240))
    with pytest.raises(KubepulseValueError, match="format version 9"):
        decode_chunk(corrupted(chunk, 0, 9))
    with pytest.raises(KubepulseValueError, match="unknown value codec"):
        decode_chunk(corrupted(chunk, 1, 7))
    with pytest.raises(KubepulseValueError, match="shorter than"):
        read_chunk_header(chunk[:5])
    header = read_chunk_header(chunk)
    body_start = CHUNK_HEADER.size
    body_end = len(chunk) - header.summary_length
    with pytest.raises(KubepulseValueError, match="corrupt chunk"):
        decode_chunk(chunk[:body_start] + chunk[body_start : body_end - 5] + chunk[body_end:])
    # A count that disagrees with the stored samples.
    wrong_count = chunk[:3] + struct.pack("<H", 239) + chunk[5:]
    with pytest.raises(KubepulseValueError, match="corrupt chunk"):
        decode_chunk(wrong_count)
