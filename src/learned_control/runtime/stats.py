"""Windowed latency and rate statistics for diagnostics."""

from __future__ import annotations

from collections import deque

import numpy as np

__all__ = ["LatencyStats"]


class LatencyStats:
    """Latencies (seconds) and event times over a sliding window, plus deadline-miss counts.

    Args:
        window: how many recent samples the percentiles and rate use.
        deadline: a latency above this (seconds) counts as a deadline miss; ``None``: never.
    """

    def __init__(self, window: int = 500, deadline: float | None = None) -> None:
        self.latencies: deque[float] = deque(maxlen=window)
        self.times: deque[float] = deque(maxlen=window)
        self.deadline = deadline
        self.count = 0
        self.deadline_misses = 0

    def add(self, latency: float, now: float) -> None:
        """Record one event at time ``now`` (seconds) that took ``latency`` seconds."""
        self.latencies.append(latency)
        self.times.append(now)
        self.count += 1
        if self.deadline is not None and latency > self.deadline:
            self.deadline_misses += 1

    def restart(self) -> None:
        """Start a new window (a new run: the rate and percentiles leave out the gap before it);
        the totals stay."""
        self.latencies.clear()
        self.times.clear()

    def percentile_ms(self, q: float) -> float:
        """The ``q``-th percentile latency in milliseconds (NaN before any event)."""
        return float(np.percentile(self.latencies, q) * 1e3) if self.latencies else float("nan")

    def rate_hz(self) -> float:
        """Events per second over the window (NaN with fewer than two events)."""
        if len(self.times) < 2 or self.times[-1] <= self.times[0]:
            return float("nan")
        return (len(self.times) - 1) / (self.times[-1] - self.times[0])

    def as_dict(self) -> dict[str, float | int]:
        return {
            "count": self.count,
            "rate_hz": self.rate_hz(),
            "p50_ms": self.percentile_ms(50),
            "p99_ms": self.percentile_ms(99),
            "deadline_misses": self.deadline_misses,
        }
