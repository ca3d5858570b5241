"""The bench's pure statistics (bench/stats.py): no root, no peers."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.stats import first_last, growth, ratio, summarize


def test_summary_of_odd_and_even_counts() -> None:
    s = summarize([3.0, 1.0, 2.0])
    assert (s.n, s.min, s.median, s.max) == (3, 1.0, 2.0, 3.0)
    assert summarize([4.0, 1.0, 2.0, 3.0]).median == 2.5
    assert summarize([7.0]).as_dict() == {"n": 1, "min": 7.0, "median": 7.0, "max": 7.0}


def test_summary_refuses_empty_or_non_finite() -> None:
    with pytest.raises(ValueError):
        summarize([])
    with pytest.raises(ValueError):
        summarize([1.0, float("nan")])
    with pytest.raises(ValueError):
        summarize([float("inf")])


def test_ratio_is_none_when_a_side_is_missing() -> None:
    assert ratio(80.0, 160.0) == 0.5
    assert ratio(None, 1.0) is None
    assert ratio(1.0, None) is None
    assert ratio(1.0, 0.0) is None
    assert ratio(-24.8, 316.0) is None


def test_first_last_and_growth() -> None:
    samples = [1.0] * 10 + [5.0] * 80 + [2.0] * 10
    first, last = first_last(samples)
    assert first == [1.0] * 10 and last == [2.0] * 10
    assert growth(samples) == 2.0
    assert growth([3.0] * 20) == 1.0
    with pytest.raises(ValueError):
        first_last([1.0] * 19)
    with pytest.raises(ValueError):
        first_last([1.0] * 20, k=0)
