"""Pure statistics of the bench: summaries of samples, ratios, first/last medians.

No I/O: unit-tested in tests/unit/test_bench_stats.py.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Summary:
    """min / median / max of one peer's samples for one figure."""

    n: int
    min: float
    median: float
    max: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def summarize(samples: Sequence[float]) -> Summary:
    """The summary of a non-empty list of samples (ValueError when empty or not finite)."""
    if not samples:
        raise ValueError("no samples")
    if not all(math.isfinite(s) for s in samples):
        raise ValueError("samples must be finite numbers")
    return Summary(n=len(samples), min=min(samples), median=statistics.median(samples),
                   max=max(samples))


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """numerator / denominator, or None when either is missing or not positive (a ratio
    of a difference that came out negative says nothing)."""
    if numerator is None or denominator is None or denominator <= 0 or numerator <= 0:
        return None
    return numerator / denominator


def first_last(samples: Sequence[float], k: int = 10) -> tuple[list[float], list[float]]:
    """The first k and the last k samples (ValueError unless there are at least 2k)."""
    if k <= 0:
        raise ValueError("k must be positive")
    if len(samples) < 2 * k:
        raise ValueError(f"need at least {2 * k} samples, have {len(samples)}")
    return list(samples[:k]), list(samples[-k:])


def growth(samples: Sequence[float], k: int = 10) -> float | None:
    """Median of the last k over median of the first k (1.0: no growth with scale)."""
    first, last = first_last(samples, k)
    return ratio(statistics.median(last), statistics.median(first))


def percentile(samples: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) of samples, nearest-rank (a value that occurred)."""
    if not samples:
        raise ValueError("no samples")
    if not 0 <= q <= 100:
        raise ValueError("q must be within 0..100")
    ordered = sorted(samples)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def paired_differences(a: Sequence[float], b: Sequence[float]) -> list[float]:
    """b[i] - a[i] for the rounds both have (a round's two samples side by side)."""
    return [y - x for x, y in zip(a, b, strict=False)]
