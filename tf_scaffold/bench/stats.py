"""Statistics that hold on a noisy machine: the median with a distribution-free confidence interval (order
statistics, no assumption about the shape of the noise), and paired ratios of runs made next to each other."""

from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass

CONFIDENCE = 0.95


@dataclass(frozen=True)
class Interval:
    """A median and the interval [low, high] that holds the true median with probability `coverage` (at least the
    confidence asked for when there are enough samples: 6 for 95 %; with fewer, [min, max] and what it covers)."""

    median: float
    low: float
    high: float
    coverage: float
    n: int

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2

    def as_dict(self) -> dict:
        return asdict(self)

    def text(self, digits: int = 3) -> str:
        return f"{self.median:.{digits}f} [{self.low:.{digits}f}, {self.high:.{digits}f}]"


def _binomial_tail(n: int, k: int) -> float:
    """P(B <= k) for B ~ Binomial(n, 1/2)."""
    return sum(math.comb(n, i) for i in range(k + 1)) / 2**n


def median_interval(samples: list[float], confidence: float = CONFIDENCE) -> Interval:
    """The median of `samples` with its order-statistic confidence interval.

    [x_(k), x_(n-k+1)] (sorted, 1-based) holds the population median with probability 1 - 2 P(B <= k-1), B ~ Bin(n,
    1/2): the largest k reaching `confidence` gives the narrowest interval that does."""
    if not samples:
        raise ValueError("no samples")
    xs = sorted(samples)
    n = len(xs)
    best_k = None
    for k in range(1, n // 2 + 1):
        if 1 - 2 * _binomial_tail(n, k - 1) >= confidence:
            best_k = k
        else:
            break
    k = best_k or 1
    coverage = 1 - 2 * _binomial_tail(n, k - 1) if n > 1 else 0.0
    return Interval(median=statistics.median(xs), low=xs[k - 1], high=xs[n - k], coverage=coverage, n=n)


def paired_ratios(numerators: list[float], denominators: list[float]) -> list[float]:
    """Ratio of each pair of runs made in the same round (adjacent in time, so slow drifts of the machine cancel)."""
    if len(numerators) != len(denominators):
        raise ValueError("unpaired runs")
    return [a / b for a, b in zip(numerators, denominators, strict=True)]


def settled(interval: Interval | None, precision: float, confidence: float = CONFIDENCE) -> bool:
    """Whether an interval is as narrow as asked: half-width at most `precision`, at the confidence asked."""
    return interval is not None and interval.coverage >= confidence and interval.half_width <= precision
