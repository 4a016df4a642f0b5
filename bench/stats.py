"""Small statistics for noisy timings: medians, percentiles and ratios, rounded for the report."""

from __future__ import annotations

import statistics
from collections.abc import Sequence


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else 0.0


def percentile(values: Sequence[float], p: float) -> float:
    """The p-th percentile (0 < p < 100), nearest rank on the sorted values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(p / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator else None


def ms(seconds: float) -> float:
    return round(seconds * 1000, 3)
