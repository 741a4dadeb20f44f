"""Fewer points to draw, the same picture: min/max per pixel bucket.

A week of one watch is 150k points per metric; a chart 1,200 pixels wide can show at
most two values per pixel column (the lowest and the highest), so the time range is cut
into ``buckets`` equal buckets and each keeps its minimum and its maximum, in time order
(one point where they are the same sample). Every extreme survives: a one-sample SpO2 dip
is still drawn, which taking every n-th sample would lose. A series with at most two
points per bucket is drawn whole.
"""

from __future__ import annotations

from collections.abc import Sequence

BUCKETS = 1200
"""About the plot area's width in pixels on a laptop screen."""


def min_max(
    times: Sequence[int], values: Sequence[float], start: int, end: int, buckets: int = BUCKETS
) -> tuple[list[int], list[float]]:
    """The points of each bucket's minimum and maximum over ``start <= t <= end``; ``times``
    ascending and inside that range."""
    if len(times) <= 2 * buckets:
        return list(times), list(values)
    width = max(end - start, 1) / buckets
    kept: list[int] = []  # indexes into times/values
    low = high = 0
    current = -1
    for i, t in enumerate(times):
        bucket = min(int((t - start) / width), buckets - 1)
        if bucket != current:
            if current >= 0:
                kept.extend(sorted({low, high}))
            current, low, high = bucket, i, i
        elif values[i] < values[low]:
            low = i
        elif values[i] > values[high]:
            high = i
    kept.extend(sorted({low, high}))
    return [times[i] for i in kept], [values[i] for i in kept]
