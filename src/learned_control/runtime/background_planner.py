"""Planning in a thread of its own, so that a realtime control tick never waits for a plan.

The controller hands each new observation to :meth:`BackgroundPlanner.submit`; a worker thread
plans from the newest one (an observation not yet taken is replaced by a newer one) and calls
``on_plan`` when a plan lands. Each tick, and each landing, asks
:meth:`BackgroundPlanner.action` for the current plan's action at that moment: a plan made from
an observation taken at ``t_obs`` gives its step ``floor((now - t_obs) / period)``, so a plan that
took three periods still commands its fourth step on time, and one that took less than a period
commands as soon as it lands. A step is handed out once (a tick right after a landing has nothing
new to send). While plans take less than a period (median) each observation's plan sends its
step when it lands, and a tick sends only once observations stopped coming (none for
``STALL_PERIODS`` periods and no plan in progress: it goes on along the plan), so a robot gets one
command per observation, from the newest. A plan older than ``max_age``, or one whose horizon has
run out, gives no action.

Timing uses ``time.monotonic()`` seconds throughout.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..errors import LearnedControlError
from .stats import LatencyStats

__all__ = ["BackgroundPlanner", "Plan"]

STALL_PERIODS = 1.5
"""With plans shorter than a period, ticks send only after this many periods without an
observation (one period plus jitter: the observation of this period is not late yet)."""

PlanFn = Callable[[np.ndarray, int], np.ndarray]
"""``(observation (obs_dim,), shift)`` -> action sequence ``(horizon, act_dim)``; ``shift``: the
control periods since the previous plan's observation (its warm start is shifted by that many
steps)."""


@dataclass(frozen=True)
class Plan:
    """An action sequence and when its observation was taken.

    Attributes:
        actions: ``(horizon, act_dim)``, one action per control period from ``observed_at``.
        observed_at: when the observation it starts from was taken (s, monotonic).
        serial: plans made so far, this one included.
    """

    actions: np.ndarray
    observed_at: float
    serial: int


class BackgroundPlanner:
    """Plans with ``plan_fn`` in a worker thread; ticks read the current plan without waiting.

    Args:
        plan_fn: see :data:`PlanFn`; whatever it raises (``ValueError`` or one of ours for an
            observation it refuses) is reported by the next :meth:`action`, and the worker goes
            on with the next observation.
        period: the control period (s).
        max_age: a plan from an observation older than this (s) gives no action.
        on_plan: called (in the worker thread) after each plan lands; ``None``: nothing.
        name: the worker thread's name.
    """

    def __init__(
        self,
        plan_fn: PlanFn,
        period: float,
        max_age: float,
        on_plan: Callable[[], None] | None = None,
        name: str = "planner",
    ):
        self.plan_fn, self.period, self.max_age, self.on_plan = plan_fn, period, max_age, on_plan
        self.plan_stats = LatencyStats(deadline=period)
        self.plan: Plan | None = None
        self.error = ""
        self._pending: tuple[np.ndarray, float] | None = None
        self._epoch = 0  # bumped by clear(): a plan begun before it is dropped
        self._last_observed: float | None = None  # the previous plan's observation time
        self._first_submitted: float | None = None  # the first observation since clear()
        self._given: tuple[int, int] | None = None  # (plan serial, step) handed out last
        self._busy = False  # planning from an observation newer than the plan's
        self._last_submitted = -math.inf  # when the newest observation was taken (s)
        self._running = True
        self._wake = threading.Condition()
        self._thread = threading.Thread(target=self._work, name=name, daemon=True)
        self._thread.start()

    def submit(self, obs: np.ndarray, observed_at: float) -> None:
        """Plan from ``obs`` (taken at ``observed_at``) next, replacing one not yet taken."""
        with self._wake:
            self._pending = (obs, observed_at)
            if self._first_submitted is None:
                self._first_submitted = observed_at
            self._last_submitted = observed_at
            self._wake.notify()

    def action(self, now: float, tick: bool = True) -> tuple[np.ndarray | None, str, str]:
        """The current plan's action for ``now``: ``(action (act_dim,), "", "")``, or
        ``(None, kind, reason)`` with kind ``given`` (this step of this plan was handed out
        already, or, for a ``tick`` while plans take less than a period, observations still come
        and each one's plan sends its step when it lands), ``error`` (the last plan failed),
        ``planning`` (no observation yet, or the first plan since :meth:`clear` in progress for
        at most ``max_age``), ``stale_plan`` (none within ``max_age`` of the first observation,
        older than ``max_age``, or past its horizon). ``tick``: ``False`` when asked at a
        landing."""
        plan, error, first = self.plan, self.error, self._first_submitted
        if error:
            return None, "error", error
        if plan is None:
            if first is None or now - first <= self.max_age:
                return None, "planning", "the first plan is in progress"
            return None, "stale_plan", f"no plan within {self.max_age} s"
        age = now - plan.observed_at
        step = max(0, int(age / self.period + 1e-6))  # a tick on a period boundary takes it
        if age > self.max_age or step >= len(plan.actions):
            return None, "stale_plan", f"the plan is {age:.3f} s old (step {step})"
        if self._given == (plan.serial, step):
            return None, "given", f"step {step} of plan {plan.serial} went out already"
        if tick and self.plan_stats.percentile_ms(50) < 1000 * self.period:
            coming = first is not None and now - self._last_submitted < STALL_PERIODS * self.period
            if self._busy or coming:
                return None, "given", "observations come: each plan sends its step as it lands"
        self._given = (plan.serial, step)
        return plan.actions[step], "", ""

    def plan_age(self, now: float) -> float:
        """Seconds since the current plan's observation (NaN without a plan)."""
        plan = self.plan
        return float("nan") if plan is None else now - plan.observed_at

    def clear(self) -> None:
        """Episode start: drop the plan, the pending observation and a plan in progress."""
        with self._wake:
            self._epoch += 1
            self.plan, self.error, self._pending = None, "", None
            self._last_observed = self._first_submitted = None

    def close(self, timeout: float = 5.0) -> None:
        """Stop the worker (it finishes the plan in progress first)."""
        with self._wake:
            self._running = False
            self._wake.notify()
        self._thread.join(timeout)

    def _work(self) -> None:
        while True:
            with self._wake:
                while self._running and self._pending is None:
                    self._wake.wait()
                if not self._running:
                    return
                assert self._pending is not None
                (obs, observed_at), self._pending = self._pending, None
                epoch, last, self._busy = self._epoch, self._last_observed, True
            shift = 1 if last is None else max(1, round((observed_at - last) / self.period))
            start = time.monotonic()
            try:
                actions, error = self.plan_fn(obs, shift), ""
            except (LearnedControlError, ValueError) as err:
                actions, error = None, f"the planner refused the observation: {err}"
            except Exception as err:  # the worker outlives any failure, reported as an error
                actions, error = None, f"the planner failed: {type(err).__name__}: {err}"
            took = time.monotonic() - start
            with self._wake:
                self._busy = False
                if epoch != self._epoch:  # cleared meanwhile: an old episode's plan
                    continue
                self.plan_stats.add(took, time.monotonic())
                self.error, self._last_observed = error, observed_at
                if actions is not None:
                    self.plan = Plan(np.asarray(actions), observed_at, self.plan_stats.count)
            if self.on_plan is not None:
                self.on_plan()
