"""Diagnostic tasks run without a node: levels, messages and values from their thresholds."""

import math

from learned_control.checkpoint import save_checkpoint
from learned_control.models.policies import MLPPolicy
from learned_control.runtime.controller import ModelSlot
from learned_control.runtime.diagnostics import (ERROR, OK, WARN, CounterCheck, LatencyCheck,
                                                 ModelCheck, RateCheck, Status, plain_text)
from learned_control.runtime.stats import LatencyStats
from learned_control.tasks import get_task


def _stats(latency: float, period: float, n: int = 50, deadline: float | None = None):
    stats = LatencyStats(deadline=deadline)
    for i in range(n):
        stats.add(latency, now=i * period)
    return stats


def test_rate_check_warns_below_the_fraction_and_reports_only_without_target():
    slow = _stats(0.001, period=0.05)  # 20 Hz
    status = RateCheck(slow, target_hz=50.0).run(Status())
    assert status.level == WARN and "below 90% of 50.0 Hz" in status.message
    assert math.isclose(status.values["rate_hz"], 20.0)
    assert RateCheck(_stats(0.001, 0.021), target_hz=50.0).run(Status()).level == OK
    assert RateCheck(slow, target_hz=0.0).run(Status()).level == OK  # lockstep: report only


def test_latency_check_levels_and_new_deadline_misses_only():
    assert LatencyCheck(_stats(0.001, 0.02), 5.0, 20.0).run(Status()).level == OK
    assert LatencyCheck(_stats(0.010, 0.02), 5.0, 20.0).run(Status()).level == WARN
    status = LatencyCheck(_stats(0.030, 0.02), 5.0, 20.0).run(Status())
    assert status.level == ERROR and "p99 30.00 ms > 20.0 ms" in status.message
    missing = _stats(0.001, 0.02, deadline=0.0005)
    check = LatencyCheck(missing, 5.0, 20.0)
    first = check.run(Status())
    assert first.level == WARN and "50 deadline misses" in first.message
    assert first.values["deadline_misses"] == 50
    assert check.run(Status()).level == OK  # no new misses since the last run


def test_model_check_and_counter_check(tmp_path):
    task = get_task("InvertedPendulum-v5")
    slot = ModelSlot(task)
    assert ModelCheck(slot).run(Status()).level == ERROR
    slot.swap(str(save_checkpoint(tmp_path / "a.pt", MLPPolicy(task.obs_dim, task.act_dim),
                                  task.name)))
    assert ModelCheck(slot).run(Status()).level == OK
    slot.swap(str(tmp_path / "missing.pt"))
    status = ModelCheck(slot).run(Status())
    assert status.level == WARN and status.values["model"] == "MLPPolicy@a.pt"
    assert status.values["failed_swaps"] == 1 and "missing.pt" in status.values["last_error"]

    counts = {"stale_skips": 0}
    check = CounterCheck(lambda: counts)
    assert check.run(Status()).level == OK
    counts["stale_skips"] = 3
    assert check.run(Status()).message == "stale_skips: 3 in the last 5 s"


def test_status_keeps_the_worst_level_and_joins_its_messages():
    status = Status(message="commanding")
    status.summary(WARN, "a")
    status.summary(OK, "fine")
    status.summary(WARN, "b")
    assert (status.level, status.message) == (WARN, "a; b")
    status.summary(ERROR, "c")
    assert (status.level, status.message) == (ERROR, "c")


def test_plain_text_formats_floats_and_drops_terminal_escapes():
    assert plain_text(0.12345) == "0.123"
    assert plain_text(float("nan")) == "nan" and plain_text(7) == "7" and plain_text(True) == "True"
    assert plain_text("\x1b[31mfailed:\x1b[0m no file\x1b[2K") == "failed: no file"


def test_status_update_keeps_a_key_in_its_place():
    status = Status()
    status.update({"a": 1, "b": 2})
    CounterCheck(lambda: {"a": 3}).run(status)
    assert list(status.values.items()) == [("a", 3), ("b", 2)] and status.level == WARN


def test_a_restarted_window_rates_the_new_run_only_and_keeps_the_totals():
    stats = _stats(0.001, period=0.02)  # 50 Hz for 1 s, then 10 s inactive
    stats.restart()
    for i in range(10):
        stats.add(0.001, now=11.0 + i * 0.02)
    assert math.isclose(stats.rate_hz(), 50.0)  # not (60 - 1) / 11.2 s
    assert stats.count == 60
