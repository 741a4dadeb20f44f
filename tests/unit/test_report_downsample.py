"""The report's min/max down-sampling keeps every bucket's extremes and nothing else."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from phoneagent.report.downsample import min_max

BUCKETS = 10


@st.composite
def series(draw: st.DrawFn) -> tuple[list[int], list[float]]:
    steps = draw(st.lists(st.integers(0, 50), min_size=1, max_size=400))
    times = [sum(steps[: i + 1]) for i in range(len(steps))]
    values = draw(st.lists(st.floats(-1e6, 1e6), min_size=len(times), max_size=len(times)))
    return times, values


def _bucket(t: int, start: int, end: int) -> int:
    return min(int((t - start) / (max(end - start, 1) / BUCKETS)), BUCKETS - 1)


@given(series())
def test_each_bucket_keeps_its_lowest_and_highest_value(
    data: tuple[list[int], list[float]],
) -> None:
    times, values = data
    start, end = times[0], times[-1]
    kept_times, kept_values = min_max(times, values, start, end, BUCKETS)
    if len(times) <= 2 * BUCKETS:
        assert (kept_times, kept_values) == (times, values)
        return
    assert len(kept_times) <= 2 * BUCKETS
    assert kept_times == sorted(kept_times)
    for bucket in {_bucket(t, start, end) for t in times}:
        inside = [v for t, v in zip(times, values, strict=True) if _bucket(t, start, end) == bucket]
        drawn = [
            v
            for t, v in zip(kept_times, kept_values, strict=True)
            if _bucket(t, start, end) == bucket
        ]
        assert min(drawn) == min(inside) and max(drawn) == max(inside)
        assert len(drawn) <= 2


def test_a_lone_spike_survives_a_thousandfold_reduction() -> None:
    times = list(range(100_000))
    values = [60.0] * 100_000
    values[54_321] = 211.0
    kept_times, kept_values = min_max(times, values, 0, 99_999, BUCKETS)
    assert 211.0 in kept_values and 54_321 in kept_times
