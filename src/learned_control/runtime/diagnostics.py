"""Diagnostic tasks in diagnostic_updater's shape: thresholds in the constructor, ``run(status)``.

ROS-free: every node fills one :class:`Status` per status name (its checks' ``run`` and its own
``summary``/``add`` calls) and converts it to a ``diagnostic_msgs/DiagnosticStatus`` in one place,
``node_utils.publish_diagnostics`` (levels are the same bytes: 0 OK, 1 WARN, 2 ERROR; the message
and values as :func:`plain_text`).
"""

from __future__ import annotations

import math
import re
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .controller import ModelSlot
from .stats import LatencyStats

__all__ = [
    "OK",
    "WARN",
    "ERROR",
    "Status",
    "RateCheck",
    "LatencyCheck",
    "ModelCheck",
    "CounterCheck",
    "plain_text",
]

OK, WARN, ERROR = 0, 1, 2

_ESCAPE = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|[@-Z\\-_])")
"""A terminal escape sequence (ANSI colours, cursor moves)."""

_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
"""Line breaks, tabs and other control characters."""


def plain_text(value: Any) -> str:
    """``value`` as diagnostics text: a finite float with 3 decimals, anything else ``str()``;
    terminal escape sequences (colours in an exception's text) removed, line breaks and other
    control characters each run replaced by one space (one line)."""
    text = f"{value:.3f}" if isinstance(value, float) and math.isfinite(value) else str(value)
    return _CONTROL.sub(" ", _ESCAPE.sub("", text)).strip()


@dataclass
class Status:
    """A diagnostic status being filled: the worst level wins, its messages are joined."""

    level: int = OK
    message: str = ""
    values: dict[str, Any] = field(default_factory=dict)

    def summary(self, level: int, message: str) -> None:
        """Raise the level to ``level`` (never lower it) and record ``message`` at that level."""
        if level > self.level:
            self.level, self.message = level, message
        elif level == self.level and level > OK:
            self.message = f"{self.message}; {message}" if self.message else message

    def add(self, key: str, value: Any) -> None:
        self.values[key] = value

    def update(self, values: dict[str, Any]) -> None:
        """Add every ``key: value`` of ``values`` (a key already there keeps its place)."""
        self.values.update(values)


class RateCheck:
    """Achieved rate against a target: WARN below ``min_fraction`` of it.

    Args:
        stats: the event statistics whose rate is checked.
        target_hz: expected rate in Hz; 0 or less: report only (lockstep runs as fast as it can).
        min_fraction: the fraction of ``target_hz`` below which the rate is too low.
    """

    def __init__(self, stats: LatencyStats, target_hz: float, min_fraction: float = 0.9) -> None:
        self.stats, self.target_hz, self.min_fraction = stats, target_hz, min_fraction

    def run(self, status: Status) -> Status:
        rate = self.stats.rate_hz()
        status.add("rate_hz", rate)
        if self.target_hz > 0 and math.isfinite(rate) and rate < self.min_fraction * self.target_hz:
            status.summary(
                WARN, f"rate {rate:.1f} Hz below {self.min_fraction:.0%} of {self.target_hz:.1f} Hz"
            )
        return status


class LatencyCheck:
    """Latency p50/p99 (ms) and deadline misses: WARN above ``warn_p99_ms`` or on new misses,
    ERROR above ``error_p99_ms``."""

    def __init__(self, stats: LatencyStats, warn_p99_ms: float, error_p99_ms: float) -> None:
        self.stats, self.warn_p99_ms, self.error_p99_ms = stats, warn_p99_ms, error_p99_ms
        self._misses_seen = 0

    def run(self, status: Status) -> Status:
        p99 = self.stats.percentile_ms(99)
        for key in ("count", "p50_ms", "p99_ms", "deadline_misses"):
            status.add(key, self.stats.as_dict()[key])
        if p99 > self.error_p99_ms:
            status.summary(ERROR, f"latency p99 {p99:.2f} ms > {self.error_p99_ms} ms")
        elif p99 > self.warn_p99_ms:
            status.summary(WARN, f"latency p99 {p99:.2f} ms > {self.warn_p99_ms} ms")
        if self.stats.deadline_misses > self._misses_seen:
            status.summary(
                WARN, f"{self.stats.deadline_misses - self._misses_seen} deadline misses"
            )
        self._misses_seen = self.stats.deadline_misses
        return status


class ModelCheck:
    """The running model's identity and swaps: ERROR with no model, WARN while the last swap
    asked for was refused (until one succeeds)."""

    def __init__(self, slot: ModelSlot) -> None:
        self.slot = slot

    def run(self, status: Status) -> Status:
        slot = self.slot
        for key, value in (
            ("model", slot.identity),
            ("swaps", slot.swaps),
            ("failed_swaps", slot.failed_swaps),
            ("last_error", slot.last_error),
        ):
            status.add(key, value)
        if slot.actor is None:
            status.summary(ERROR, "no model loaded")
        elif slot.last_swap_failed:
            status.summary(WARN, f"last swap refused, still running {slot.identity}")
        return status


class CounterCheck:
    """Event counters (rejected inputs, stale skips, timeouts): WARN while any rose within the
    last ``window_s`` seconds, naming how many, so the level says what goes wrong now and is OK
    again once it stopped.

    Args:
        counters: a callable returning ``{name: count}`` (counts only grow), read at every run.
        window_s: seconds a rise keeps the status at WARN.
        clock: the time in seconds (``time.monotonic``; a test passes its own).
    """

    def __init__(
        self,
        counters: Callable[[], dict[str, int]],
        window_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.counters, self.window_s, self.clock = counters, window_s, clock
        self._history: deque[tuple[float, dict[str, int]]] = deque([(clock(), {})])

    def run(self, status: Status) -> Status:
        now, counts = self.clock(), dict(self.counters())
        self._history.append((now, counts))
        while len(self._history) > 1 and self._history[1][0] <= now - self.window_s:
            self._history.popleft()  # the first entry is the newest one a window old
        before = self._history[0][1]
        for key, count in counts.items():
            status.add(key, count)
            rise = count - before.get(key, 0)
            if rise > 0:
                status.summary(WARN, f"{key}: {rise} in the last {self.window_s:g} s")
        return status
