"""DDSketch: the relative-error guarantee against exact quantiles, merging, bytes."""

from __future__ import annotations

import math
import random
import sys
from collections.abc import Callable

import pytest

from kubepulse.errors import KubepulseValueError
from kubepulse.stats.sketch import MIN_RELATIVE_ACCURACY, DDSketch

QUANTILES = [i / 100 for i in range(101)] + [0.001, 0.005, 0.995, 0.999]


def exact_quantile(values: list[float], q: float) -> float:
    """The lower-rank quantile the sketch promises to approximate."""
    ordered = sorted(values)
    return ordered[math.floor(q * (len(ordered) - 1))]


def exact_sum(values: list[float]) -> float:
    try:
        return math.fsum(values)
    except OverflowError:  # huge magnitudes: the sum is an infinity
        return sum(values)


def assert_within_relative_error(
    sketch: DDSketch, values: list[float], relative_accuracy: float
) -> None:
    # The bound holds up to floating-point rounding of log() near bucket edges.
    bound = relative_accuracy * (1 + 1e-9)
    for q in QUANTILES:
        expected = exact_quantile(values, q)
        answer = sketch.quantile(q)
        assert answer is not None
        if expected == 0.0:
            assert answer == 0.0, (q, answer)
        else:
            assert abs(answer - expected) <= bound * abs(expected), (q, answer, expected)


def lognormal(rng: random.Random, n: int) -> list[float]:
    return [rng.lognormvariate(0.0, 2.0) for _ in range(n)]


def mixed_signs_with_zeros(rng: random.Random, n: int) -> list[float]:
    return [rng.choice((-1.0, 0.0, 1.0, 1.0)) * rng.expovariate(0.01) for _ in range(n)]


def negatives_only(rng: random.Random, n: int) -> list[float]:
    return [-rng.uniform(0.5, 5000.0) for _ in range(n)]


def tiny_magnitudes(rng: random.Random, n: int) -> list[float]:
    return [rng.uniform(1.0, 10.0) * 1e-300 for _ in range(n)]


def huge_magnitudes(rng: random.Random, n: int) -> list[float]:
    return [rng.uniform(1.0, 1.7) * 1e308 for _ in range(n)]


def integers_with_ties(rng: random.Random, n: int) -> list[float]:
    return [float(rng.randint(0, 20)) for _ in range(n)]


def constant(rng: random.Random, n: int) -> list[float]:
    return [42.5] * n


def cpu_cores(rng: random.Random, n: int) -> list[float]:
    return [max(0.0, rng.gauss(0.5, 0.2)) for _ in range(n)]


GENERATORS: dict[str, Callable[[random.Random, int], list[float]]] = {
    "lognormal": lognormal,
    "mixed_signs_with_zeros": mixed_signs_with_zeros,
    "negatives_only": negatives_only,
    "tiny_magnitudes": tiny_magnitudes,
    "huge_magnitudes": huge_magnitudes,
    "integers_with_ties": integers_with_ties,
    "constant": constant,
    "cpu_cores": cpu_cores,
}


@pytest.mark.parametrize("relative_accuracy", [0.001, 0.01, 0.05])
@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_quantiles_are_within_relative_accuracy_of_exact_lower_rank(
    name: str, relative_accuracy: float
) -> None:
    rng = random.Random(f"{name}-{relative_accuracy}")
    values = GENERATORS[name](rng, 3000)
    sketch = DDSketch.from_values(values, relative_accuracy)

    assert sketch.count == len(values)
    assert sketch.min == min(values)
    assert sketch.max == max(values)
    assert sketch.sum == exact_sum(values)
    assert_within_relative_error(sketch, values, relative_accuracy)
    assert sketch.quantile(0.0) == min(values)
    assert sketch.quantile(1.0) == max(values)


@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_adding_one_by_one_fills_the_same_buckets_as_extend(name: str) -> None:
    values = GENERATORS[name](random.Random(name), 500)
    bulk = DDSketch.from_values(values)
    single = DDSketch()
    for value in values:
        single.add(value)

    assert single.count == bulk.count
    assert single.bucket_count() == bulk.bucket_count()
    assert [single.quantile(q) for q in QUANTILES] == [bulk.quantile(q) for q in QUANTILES]
    assert single.sum == pytest.approx(bulk.sum, rel=1e-12)


@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_merged_pieces_answer_exactly_like_one_sketch_of_everything(name: str) -> None:
    rng = random.Random(f"merge-{name}")
    values = GENERATORS[name](rng, 2000)
    cuts = sorted(rng.sample(range(1, len(values)), 9))
    bounds = zip([0, *cuts], [*cuts, len(values)], strict=True)
    pieces = [values[start:end] for start, end in bounds]

    sequential = DDSketch.from_values(pieces[0])
    for piece in pieces[1:]:
        sequential.merge(DDSketch.from_values(piece))
    bulk = DDSketch.from_values(pieces[0])
    bulk.merge_many([DDSketch.from_values(piece) for piece in pieces[1:]])
    shuffled = [DDSketch.from_values(piece) for piece in pieces]
    rng.shuffle(shuffled)
    reordered = shuffled[0].copy()
    reordered.merge_many(shuffled[1:])
    whole = DDSketch.from_values(values)

    assert bulk == sequential  # same buckets and the same sum, rounded in the same order
    for merged in (sequential, reordered):
        assert merged.count == whole.count
        assert merged.min == whole.min
        assert merged.max == whole.max
        assert merged.sum == pytest.approx(whole.sum, rel=1e-9, abs=1e-300)
        assert [merged.quantile(q) for q in QUANTILES] == [whole.quantile(q) for q in QUANTILES]


def test_merge_with_an_empty_sketch_changes_nothing() -> None:
    values = lognormal(random.Random(5), 100)
    sketch = DDSketch.from_values(values)
    before = sketch.to_bytes()
    sketch.merge(DDSketch())
    sketch.merge_many([])
    assert sketch.to_bytes() == before

    empty = DDSketch()
    empty.merge(DDSketch.from_values(values))
    assert empty == DDSketch.from_values(values)


def test_merge_rejects_a_different_relative_accuracy_and_leaves_the_sketch_unchanged() -> None:
    sketch = DDSketch.from_values([1.0, 2.0], 0.01)
    before = sketch.to_bytes()
    with pytest.raises(KubepulseValueError, match=r"different relative accuracies.*0\.01.*0\.02"):
        sketch.merge_many([DDSketch.from_values([3.0], 0.01), DDSketch.from_values([4.0], 0.02)])
    assert sketch.to_bytes() == before


def test_add_with_a_count_equals_adding_repeatedly() -> None:
    weighted = DDSketch()
    repeated = DDSketch()
    for value, count in [(3.5, 4), (-2.0, 3), (0.0, 2), (1e-3, 1)]:
        weighted.add(value, count)
        for _ in range(count):
            repeated.add(value)
    assert weighted == repeated


@pytest.mark.parametrize(
    ("values", "expected_count"),
    [
        ([math.nan], 0),
        ([1.0, math.nan, 2.0], 2),
        ([math.nan, -0.0, 0.0], 2),
    ],
)
def test_nan_is_ignored(values: list[float], expected_count: int) -> None:
    sketch = DDSketch.from_values(values)
    single = DDSketch()
    for value in values:
        single.add(value)
    assert sketch.count == single.count == expected_count


@pytest.mark.parametrize("value", [math.inf, -math.inf])
def test_infinite_values_are_rejected_with_advice(value: float) -> None:
    sketch = DDSketch()
    with pytest.raises(KubepulseValueError, match="drop or clamp"):
        sketch.add(value)
    with pytest.raises(KubepulseValueError, match="drop or clamp"):
        sketch.extend([1.0, value])
    assert sketch.is_empty


def test_count_zero_adds_nothing_and_negative_counts_are_rejected() -> None:
    sketch = DDSketch()
    sketch.add(5.0, 0)
    assert sketch.is_empty
    with pytest.raises(KubepulseValueError, match="non-negative"):
        sketch.add(5.0, -1)


@pytest.mark.parametrize("relative_accuracy", [0.0, 1.0, -0.01, 1.5, math.nan, 1e-5, 1e-300])
def test_relative_accuracy_must_be_from_1e_4_to_below_1(relative_accuracy: float) -> None:
    with pytest.raises(KubepulseValueError, match=r"at least 0\.0001 and below 1"):
        DDSketch(relative_accuracy)


@pytest.mark.parametrize("relative_accuracy", [MIN_RELATIVE_ACCURACY, 0.999])
def test_extreme_accepted_accuracies_keep_their_guarantee(relative_accuracy: float) -> None:
    values = lognormal(random.Random(2), 500)
    assert_within_relative_error(
        DDSketch.from_values(values, relative_accuracy), values, relative_accuracy
    )


@pytest.mark.parametrize("q", [-0.01, 1.01, math.nan, 99.0])
def test_quantile_outside_zero_one_is_rejected(q: float) -> None:
    with pytest.raises(KubepulseValueError, match=r"between 0 and 1.*0\.99"):
        DDSketch.from_values([1.0]).quantile(q)


def test_empty_sketch() -> None:
    sketch = DDSketch()
    assert sketch.is_empty
    assert sketch.count == 0
    assert sketch.sum == 0.0
    assert math.isnan(sketch.min)
    assert math.isnan(sketch.max)
    assert sketch.quantile(0.5) is None
    assert sketch.bucket_count() == 0


def test_copy_is_independent() -> None:
    original = DDSketch.from_values([1.0, 2.0, 3.0])
    assert original.quantile(0.5) is not None  # fills the cache that copies share
    clone = original.copy()
    clone.add(1000.0, 10)
    assert original.count == 3
    assert original.quantile(0.5) == pytest.approx(2.0, rel=0.01)
    assert clone.quantile(0.9) == pytest.approx(1000.0, rel=0.01)


def test_values_below_the_smallest_normal_float_count_as_zero() -> None:
    subnormal = sys.float_info.min / 4
    sketch = DDSketch.from_values([-subnormal, subnormal, 1.0, 2.0, 3.0])
    assert sketch.bucket_count() == 4  # the zero bucket and three positive buckets
    assert sketch.min == -subnormal  # min and max stay exact
    assert sketch.quantile(0.25) == 0.0


@pytest.mark.parametrize("relative_accuracy", [0.01, 0.03, 0.1, 0.3, 0.5])
def test_quantile_next_to_the_largest_float_does_not_overflow(relative_accuracy: float) -> None:
    # Some of these accuracies put the top bucket's representative beyond the largest
    # float; the answer must still be a float within the bound, never an OverflowError.
    largest = sys.float_info.max
    values = [largest, largest, largest * 0.999, largest * 0.999, -largest, -largest]
    sketch = DDSketch.from_values(values, relative_accuracy)
    assert_within_relative_error(sketch, values, relative_accuracy)


def test_more_than_2_to_32_values_widen_the_lanes_without_losing_counts() -> None:
    big = 2**32 + 5
    sketch = DDSketch()
    sketch.add(1.0, 2**32 - 3)
    sketch.add(50.0, 4)  # crosses 2**32: the lanes widen before this count goes in
    sketch.add(-7.0, 4)
    assert sketch.count == big
    assert sketch.quantile(0.0) == -7.0
    assert sketch.quantile(0.5) == pytest.approx(1.0, rel=0.01)
    assert sketch.quantile(1.0) == 50.0
    # Merging a narrow sketch into a wide one, and the other way round.
    narrow = DDSketch.from_values([2.0, -3.0, 0.0])
    wide_first = sketch.copy()
    wide_first.merge(narrow)
    narrow_first = narrow.copy()
    narrow_first.merge(sketch)
    assert wide_first == narrow_first
    assert wide_first.count == big + 3
    assert DDSketch.from_bytes(wide_first.to_bytes()) == wide_first


@pytest.mark.parametrize("how", ["add", "merge", "merge_many"])
def test_one_bucket_can_count_past_2_to_32(how: str) -> None:
    # A 32-bit lane would carry into the next bucket here; the lanes must widen first.
    half = 2**31 + 1
    reference = DDSketch.from_values([3.0, 10.0])
    sketch = DDSketch.from_values([10.0])
    sketch.add(3.0, half)
    other = DDSketch()
    other.add(3.0, half)
    if how == "add":
        sketch.add(3.0, half)
    elif how == "merge":
        sketch.merge(other)
    else:
        sketch.merge_many([other, DDSketch()])
    assert sketch.count == 2 * half + 1
    assert sketch.bucket_count() == 2
    assert sketch.quantile(0.5) == reference.quantile(0.0)
    assert sketch.quantile(1.0) == 10.0
    assert DDSketch.from_bytes(sketch.to_bytes()) == sketch


def test_the_count_limit_is_2_to_64() -> None:
    sketch = DDSketch()
    sketch.add(1.0, 2**64 - 1)
    with pytest.raises(KubepulseValueError, match="2\\*\\*64"):
        sketch.add(1.0)


# ---------------------------------------------------------------------- bytes


@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_bytes_round_trip(name: str) -> None:
    values = GENERATORS[name](random.Random(f"bytes-{name}"), 1000)
    sketch = DDSketch.from_values(values, 0.02)
    restored = DDSketch.from_bytes(sketch.to_bytes())
    assert restored == sketch
    assert restored.relative_accuracy == 0.02
    assert [restored.quantile(q) for q in QUANTILES] == [sketch.quantile(q) for q in QUANTILES]


def test_bytes_of_an_empty_sketch_round_trip() -> None:
    assert DDSketch.from_bytes(DDSketch(0.05).to_bytes()) == DDSketch(0.05)
    assert len(DDSketch().to_bytes()) == 10


def test_a_bucket_costs_about_two_bytes() -> None:
    rng = random.Random(11)
    sketch = DDSketch.from_values(cpu_cores(rng, 240))  # an hour at 15 s
    header = 1 + 8 + 2 + 24 + 2  # version, alpha, count, sum/min/max, store sizes
    per_bucket = (len(sketch.to_bytes()) - header) / sketch.bucket_count()
    assert per_bucket <= 2.5


def test_truncated_bytes_are_rejected_at_every_length() -> None:
    data = DDSketch.from_values(mixed_signs_with_zeros(random.Random(3), 300)).to_bytes()
    for length in range(len(data)):
        with pytest.raises(KubepulseValueError, match="corrupt DDSketch bytes"):
            DDSketch.from_bytes(data[:length])


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda data: data + b"\x00", "trailing"),
        (lambda data: b"\x02" + data[1:], "version 2"),
        (lambda data: data[:1] + b"\x00" * 8 + data[9:], "relative accuracy"),
    ],
)
def test_damaged_bytes_say_what_is_wrong(mutate: Callable[[bytes], bytes], message: str) -> None:
    data = DDSketch.from_values([1.0, 2.0, -3.0, 0.0]).to_bytes()
    with pytest.raises(KubepulseValueError, match=message):
        DDSketch.from_bytes(mutate(data))


def test_a_bucket_index_outside_min_and_max_is_rejected() -> None:
    data = bytearray(DDSketch.from_values([1.0, 2.0]).to_bytes())
    first_index_at = 1 + 8 + 1 + 24 + 1  # header, count, sum/min/max, bucket number
    assert data[first_index_at] == 0  # 1.0 is in bucket 0, zigzag-encoded as 0
    data[first_index_at] = 0x7E  # bucket 63 holds values near 3.5, above the max of 2.0
    with pytest.raises(KubepulseValueError, match="bucket index 63 is outside"):
        DDSketch.from_bytes(bytes(data))


def test_random_corruption_never_escapes_as_another_exception() -> None:
    rng = random.Random(99)
    data = bytearray(DDSketch.from_values([*lognormal(rng, 500), -1.0, 0.0]).to_bytes())
    for _ in range(2000):
        damaged = bytearray(data)
        for _ in range(rng.randint(1, 3)):
            damaged[rng.randrange(len(damaged))] = rng.randrange(256)
        try:
            restored = DDSketch.from_bytes(bytes(damaged))
        except KubepulseValueError:
            continue
        # Whatever decodes is a consistent sketch.
        assert restored.count >= restored.bucket_count() - 1
        assert restored.quantile(0.5) is not None
