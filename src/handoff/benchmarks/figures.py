"""How the benchmarks summarise their timings: a percentile, and milliseconds to one decimal."""

from __future__ import annotations

from collections.abc import Sequence


def percentile(values: Sequence[float], q: float) -> float | None:
    """The `q` quantile of `values` (nearest rank, no interpolation); None when there are none."""
    return nearest_rank(values, q) if values else None


def nearest_rank(values: Sequence[float], q: float) -> float:
    """The `q` quantile of `values`, which holds at least one (nearest rank, no interpolation)."""
    ranked = sorted(values)
    return ranked[min(len(ranked) - 1, int(q * len(ranked)))]


def rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 1)
