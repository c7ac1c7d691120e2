"""Bad input to the controller's core: vectors, robot samples, actions, the in-a-row guard,
windowed counters, and checkpoints that must be refused with the old model kept."""

import base64
import json
import math
import pathlib
import zipfile

import numpy as np
import pytest
import torch

from learned_control.checkpoint import save_checkpoint
from learned_control.models.policies import MLPPolicy
from learned_control.runtime.controller import ModelSlot
from learned_control.runtime.diagnostics import OK, WARN, CounterCheck, ModelCheck, Status
from learned_control.runtime.inputs import InputGuard, check_sample, check_vector
from learned_control.specs import GoalSample, JointSample, PoseSample, SourceSpec
from learned_control.tasks import get_task

TASK = get_task("InvertedPendulum-v5")
BAD_VECTORS = [  # (values, kind) for a vector of size 4
    ([0.0, math.nan, 0.0, 0.0], "nonfinite"),
    ([0.0, 0.0, -math.inf, 0.0], "nonfinite"),
    ([1e300, 0.0, 0.0, 0.0], "overflow"),  # finite, but inf once cast to float32
    ([0.0, 0.0], "size"),
    ([], "size"),
    ([[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]], "size"),
]


@pytest.mark.parametrize("values, kind", BAD_VECTORS)
def test_check_vector_rejects_each_kind(values, kind):
    vector, got, reason = check_vector(values, 4, "observation")
    assert vector is None and got == kind and reason.startswith("observation")


def test_check_vector_accepts_float32_extremes_and_any_size_without_one():
    big = float(np.finfo(np.float32).max)
    vector, kind, reason = check_vector([big, -big, 0.0, 1e-300], 4, "observation")
    assert kind == reason == "" and vector.dtype == np.float64
    assert check_vector([1.0] * 7, None, "x")[1] == ""
    assert check_vector(["a", "b"], None, "x")[1] == "size"  # not numbers


JOINTS = SourceSpec("joint_states", "JointState", "/joint_states")
READ = (("slider", "position"), ("hinge", "position"), ("slider", "velocity"),
        ("hinge", "velocity"))


def _joints(position, velocity=(0.0, 0.0), effort=(), names=("slider", "hinge", "camera")):
    return JointSample(tuple(names), list(position), list(velocity), list(effort), 1.0)


@pytest.mark.parametrize("sample, kind", [
    (_joints([0.0, math.nan, 0.0], [0.0, 0.0, 0.0]), "nonfinite"),
    (_joints([0.0, 0.0, 0.0], [math.inf, 0.0, 0.0]), "nonfinite"),
    (_joints([1e300, 0.0, 0.0], [0.0, 0.0, 0.0]), "overflow"),
    (_joints([0.0, 0.0], [0.0, 0.0, 0.0]), "size"),  # 2 positions for 3 names
    (_joints([0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0]), "size"),
])
def test_check_sample_rejects_bad_joint_states(sample, kind):
    got, reason = check_sample(JOINTS, sample, READ)
    assert got == kind and reason.startswith("/joint_states")


def test_check_sample_ignores_what_the_spec_does_not_read():
    # a NaN on a joint (camera) or field (effort) the features do not read stops nothing;
    # an empty field is allowed (JointState may leave one out)
    sample = _joints([0.0, 0.1, math.nan], [0.0, 0.0, 0.0], [math.nan, math.nan, math.nan])
    assert check_sample(JOINTS, sample, READ) == ("", "")
    assert check_sample(JOINTS, _joints([0.0, 0.1, 0.0], []), READ) == ("", "")


POSE = SourceSpec("fingertip", "PoseStamped", "/fingertip/pose", frame="world")
GOAL = SourceSpec("target", "goal", "/goal", max_age=None, frame="world", value=(0.0, 0.0))


def _pose(position=(0.0, 0.0, 0.0), orientation=(0.0, 0.0, 0.0, 1.0), frame="world"):
    return PoseSample(position, orientation, None, None, frame, 1.0)


@pytest.mark.parametrize("src, sample, frame, kind", [
    (POSE, _pose(frame="map"), None, "frame"),
    (POSE, _pose(position=(math.nan, 0.0, 0.0)), None, "nonfinite"),
    (POSE, _pose(orientation=(0.0, 0.0, 1e300, 1.0)), None, "overflow"),
    (GOAL, GoalSample((0.1, 0.2), 1.0), "base_link", "frame"),
    (GOAL, GoalSample((0.1, math.inf), 1.0), "world", "nonfinite"),
    (GOAL, GoalSample((1e300, 0.2), 1.0), "world", "overflow"),
])
def test_check_sample_rejects_bad_poses_and_goals(src, sample, frame, kind):
    got, reason = check_sample(src, sample, frame=frame)
    assert got == kind and reason.startswith(src.topic)


def test_check_sample_accepts_good_poses_and_goals():
    assert check_sample(POSE, _pose()) == ("", "")
    assert check_sample(GOAL, GoalSample((0.1, 0.2), 1.0), frame="world") == ("", "")


def test_input_guard_counts_and_trips_only_in_a_row():
    guard = InputGuard(limit=3)
    assert not guard.reject("/observation", "nonfinite", "a")
    assert not guard.reject("action", "nonfinite", "b")
    guard.commanded()  # a command in between: the run starts again
    assert not guard.reject("/observation", "overflow", "c")
    assert not guard.reject("/observation", "size", "d")
    assert guard.reject("/joint_states", "frame", "e")
    assert (guard.rejected_inputs, guard.rejected_actions, guard.last_reason) == (4, 1, "e")
    values = guard.values()
    assert values["rejected_in_a_row"] == 3 and values["rejected//observation"] == 3
    assert (values["rejected_nonfinite"], values["rejected_overflow"], values["rejected_size"],
            values["rejected_frame"], values["rejected_error"]) == (2, 1, 1, 1, 0)
    assert not any(InputGuard(limit=0).reject("x", "size", "y") for _ in range(100))  # 0: never


def _policy(path, nan=False):
    torch.manual_seed(0)
    policy = MLPPolicy(TASK.obs_dim, TASK.act_dim, hid_size=8)
    if nan:
        with torch.no_grad():
            for p in policy.parameters():
                p.fill_(math.nan)
    return str(save_checkpoint(path, policy, TASK.name))


def test_checked_act_rejects_bad_actions_and_refused_observations(tmp_path):
    slot = ModelSlot(TASK)
    assert slot.swap(_policy(tmp_path / "good.pt")) == ""
    action, kind, _ = slot.checked_act(np.zeros(TASK.obs_dim))
    assert kind == "" and action.shape == (TASK.act_dim,)
    # the policy itself refuses what overflows float32 (its cast gives inf): counted, no crash
    action, kind, reason = slot.checked_act(np.array([1e300, 0.0, 0.0, 0.0]))
    assert action is None and kind == "error" and "NaN or inf" in reason
    assert slot.swap(_policy(tmp_path / "nan.pt", nan=True)) == ""
    action, kind, reason = slot.checked_act(np.zeros(TASK.obs_dim))
    assert action is None and kind == "nonfinite" and reason == "action with NaN or inf rejected"


def test_counter_check_warns_while_counts_rise_and_is_ok_after():
    now = [100.0]
    counts = {"rejected_inputs": 0}
    check = CounterCheck(lambda: counts, window_s=5.0, clock=lambda: now[0])
    assert check.run(Status()).level == OK
    counts["rejected_inputs"] = 4
    now[0] += 1.0
    status = check.run(Status())
    assert (status.level, status.message) == (WARN, "rejected_inputs: 4 in the last 5 s")
    for _ in range(4):  # no new rejections: still within 5 s of the rise
        now[0] += 1.0
        assert check.run(Status()).level == WARN
    now[0] += 1.0
    status = check.run(Status())
    assert status.level == OK and status.values["rejected_inputs"] == 4  # over: OK, still counted
    counts["rejected_inputs"] = 5
    now[0] += 1.0
    assert check.run(Status()).message == "rejected_inputs: 1 in the last 5 s"


def test_model_check_is_ok_again_after_a_successful_swap(tmp_path):
    slot = ModelSlot(TASK)
    good = _policy(tmp_path / "good.pt")
    slot.swap(good)
    slot.swap(str(tmp_path / "missing.pt"))
    status = ModelCheck(slot).run(Status())
    assert status.level == WARN and "still running MLPPolicy@good.pt" in status.message
    slot.swap(good)
    status = ModelCheck(slot).run(Status())
    assert status.level == OK and status.values["failed_swaps"] == 1


class _Trap:
    """Unpickling this runs ``touch(marker)``: the test for 'nothing executed'."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return pathlib.Path.touch, (pathlib.Path(self.marker),)


@pytest.fixture(scope="module")
def sb3_zip(tmp_path_factory):
    from stable_baselines3 import PPO

    path = tmp_path_factory.mktemp("sb3") / "ppo.zip"
    PPO("MlpPolicy", TASK.make_env(), n_steps=64, seed=0, device="cpu").save(path)
    return path


def _bad_files(tmp_path, good_pt, sb3_zip):
    """``{name: path}`` of checkpoints and SB3 zips that must be refused; unpickling any of the
    trap files would create ``tmp_path / 'executed'``."""
    marker = tmp_path / "executed"
    files = {"empty.pt": b"", "truncated.pt": pathlib.Path(good_pt).read_bytes()[:300],
             "empty.zip": b"", "truncated.zip": sb3_zip.read_bytes()[:500]}
    paths = {}
    for name, data in files.items():
        paths[name] = tmp_path / name
        paths[name].write_bytes(data)
    paths["foreign.pt"] = tmp_path / "foreign.pt"
    torch.save({"format": "learned_control", "trap": _Trap(marker)}, paths["foreign.pt"])
    # an SB3 zip whose weights and data entries are traps
    trap = tmp_path / "trap.pth"
    torch.save(_Trap(marker), trap)
    paths["foreign.zip"] = tmp_path / "foreign.zip"
    with zipfile.ZipFile(sb3_zip) as src, zipfile.ZipFile(paths["foreign.zip"], "w") as dst:
        for item in src.namelist():
            if item == "data":
                data = json.loads(src.read(item))
                data["lr_schedule"] = {":serialized:": base64.b64encode(
                    __import__("pickle").dumps(_Trap(marker))).decode()}
                dst.writestr(item, json.dumps(data))
            elif item.endswith(".pth"):
                dst.writestr(item, trap.read_bytes())
            else:
                dst.writestr(item, src.read(item))
    return paths, marker


def test_bad_checkpoints_and_zips_are_refused_in_one_line_nothing_run_old_kept(tmp_path,
                                                                               sb3_zip):
    good = _policy(tmp_path / "good.pt")
    paths, marker = _bad_files(tmp_path, good, sb3_zip)
    slot = ModelSlot(TASK)
    assert slot.swap(good) == ""
    obs = np.array([0.0, 0.05, 0.0, 0.0])
    before = slot.act(obs)
    for name, path in paths.items():
        error = slot.swap(str(path))
        assert error and "\n" not in error and name in error, (name, error)
    assert not marker.exists()  # no trap was unpickled
    assert (slot.identity, slot.failed_swaps, slot.swaps) == ("MLPPolicy@good.pt", len(paths), 1)
    np.testing.assert_array_equal(slot.act(obs), before)
    assert slot.swap(str(sb3_zip)) == "" and slot.identity == "SB3Actor@ppo.zip"

