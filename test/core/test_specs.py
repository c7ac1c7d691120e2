"""Specs: the observation assembled from driver-shaped samples equals the env observation."""

from __future__ import annotations

import dataclasses
import random
import re

import numpy as np
import pytest
import yaml

from learned_control.cli import main as cli_main
from learned_control.errors import SpecError
from learned_control.specs import (
    CommandShaper, CommandSpec, GoalSample, JointSample, ObservationAssembler, PoseSample,
    default_specs, driver_samples, dump_specs, load_specs, specs_from_dict)
from learned_control.tasks import get_task
from smoke_envs import assert_spec_reproduces_observation

TASKS = ["InvertedPendulum-v5", "Reacher-v5", "Pusher-v5", "HalfCheetah-v5", "Hopper-v5",
         "Walker2d-v5"]


@pytest.mark.parametrize("task", TASKS)
def test_assembled_observation_equals_env_observation(task: str) -> None:
    specs = default_specs(task)
    assert_spec_reproduces_observation(specs, steps=300, seed=3)
    assert specs.observation.dim == get_task(task).obs_dim


def test_hopper_velocity_clip_is_active() -> None:
    """The ±10 clip matters: a velocity of 25 rad/s reads as 10."""
    asm = ObservationAssembler(default_specs("Hopper-v5").observation)
    names = ("rootx", "rootz", "rooty", "thigh_joint", "leg_joint", "foot_joint")
    asm.update("joint_states", JointSample(names, [0.0, 1.25, 0, 0, 0, 0],
                                           [25.0, -30.0, 1, 2, 3, 4], [0.0] * 6, 1.0))
    obs = asm.assemble(1.0).observation
    np.testing.assert_array_equal(obs[5:], [10.0, -10.0, 1, 2, 3, 4])


def _shuffled_joint_sample(task: str) -> JointSample:
    """The task's joints shuffled, plus two extra joints; position = spec index + 0.5."""
    names = list(default_specs(task).observation.joints)
    values = {n: i + 0.5 for i, n in enumerate(names)}
    names += ["gripper_finger", "camera_pan"]
    random.Random(1).shuffle(names)
    pos = [values.get(n, 99.0) for n in names]
    return JointSample(tuple(names), pos, [2 * p for p in pos], [0.0] * len(names), 0.0)


def test_shuffled_and_extra_joint_names_give_the_same_observation() -> None:
    task = "InvertedPendulum-v5"
    ordered = ObservationAssembler(default_specs(task).observation)
    ordered.update("joint_states", JointSample(("slider", "hinge"), [0.5, 1.5], [1.0, 3.0],
                                               [0, 0], 0.0))
    shuffled = ObservationAssembler(default_specs(task).observation)
    sample = _shuffled_joint_sample(task)
    assert sample.names[:2] != ("slider", "hinge") and len(sample.names) == 4
    shuffled.update("joint_states", sample)
    np.testing.assert_array_equal(shuffled.assemble(0.0).observation, [0.5, 1.5, 1.0, 3.0])
    np.testing.assert_array_equal(ordered.assemble(0.0).observation, [0.5, 1.5, 1.0, 3.0])


def test_missing_joint_or_topic_fails_at_check_naming_it() -> None:
    asm = ObservationAssembler(default_specs("Reacher-v5").observation)
    asm.check(["joint0", "joint1", "wrist"], ["/joint_states", "/fingertip/pose"])  # goal by param
    with pytest.raises(SpecError, match="joint1"):
        asm.check(["joint0", "wrist"], ["/joint_states", "/fingertip/pose"])
    with pytest.raises(SpecError, match="/fingertip/pose"):
        asm.check(["joint0", "joint1"], ["/joint_states"])


def test_stale_source_is_reported_and_fresh_data_resumes() -> None:
    asm = ObservationAssembler(default_specs("Reacher-v5").observation)
    assert asm.assemble(0.0).stale == ("joint_states", "fingertip")  # nothing received yet
    js = JointSample(("joint1", "joint0"), [0.2, 0.1], [0.0, 0.0], [0.0, 0.0], 1.0)
    pose = PoseSample([0.3, 0.4, 0.01], [0, 0, 0, 1], None, None, "world", 1.0)
    asm.update("joint_states", js)
    assert not asm.update("fingertip", dataclasses.replace(pose, frame="camera_link"))
    assert asm.assemble(1.05).stale == ("fingertip",)  # a pose in a foreign frame is dropped
    assert asm.update("fingertip", pose)
    assert asm.assemble(1.05).stale == ()
    asm.update("joint_states", dataclasses.replace(js, stamp=1.2))
    late = asm.assemble(1.25)  # fingertip is 0.25 s old, max_age 0.1 s
    assert late.observation is None and late.stale == ("fingertip",)
    asm.update("fingertip", dataclasses.replace(pose, stamp=1.24))
    asm.update("target", GoalSample([0.1, -0.2], 1.24))  # goal by topic overrides the parameter
    back = asm.assemble(1.25)
    assert back.stale == ()
    np.testing.assert_allclose(back.observation[4:6], [0.1, -0.2])
    np.testing.assert_allclose(back.observation[8:10], [0.2, 0.6])
    # a partial JointState (another driver's joints, no velocities) refreshes only what it has
    asm.update("joint_states", JointSample(("joint0", "gripper"), [0.7, 0.0], [], [], 1.3))
    assert asm.assemble(1.31).stale == ("joint_states",)  # velocities and joint1 from t=1.2
    asm.update("joint_states", JointSample(("joint0",), [0.7], [0.0], [], 1.3))
    assert asm.assemble(1.31).stale == ("joint_states",)  # joint1 still from t=1.2
    asm.update("joint_states", JointSample(("joint1",), [0.2], [0.5], [], 1.3))
    merged = asm.assemble(1.31)
    assert merged.stale == ()
    np.testing.assert_allclose(merged.observation[[0, 1, 6, 7]],
                               [np.cos(0.7), np.cos(0.2), 0.0, 0.5])


def test_yaml_export_load_round_trip(tmp_path, capsys) -> None:
    for task in TASKS:
        path = tmp_path / f"{task}.yaml"
        assert cli_main(["export-spec", task]) == 0
        path.write_text(capsys.readouterr().out)
        assert load_specs(path) == default_specs(task)


def test_bad_spec_files_raise_spec_error_naming_the_entry(tmp_path) -> None:
    good = yaml.safe_load(dump_specs(default_specs("Hopper-v5")))
    cases = {
        "features[3]": lambda d: d["observation"]["features"][3].update(extra=1),
        "'knee'": lambda d: d["observation"]["features"][2]["expr"].update(field="knee"),
        "unknown option(s) ['feild']": lambda d: d["observation"]["features"][6]["expr"]["clip"]
        .update(feild="velocity"),
        "high": lambda d: d["command"].update(high=[1.0]),
        "give 10 values, task Hopper-v5 expects 11": lambda d: d["observation"]["features"].pop(),
        "max_age": lambda d: d["observation"]["sources"][0].update(max_age=-1),
    }
    for needle, mutate in cases.items():
        bad = yaml.safe_load(yaml.safe_dump(good))
        mutate(bad)
        path = tmp_path / "bad.yaml"
        path.write_text(yaml.safe_dump(bad))
        with pytest.raises(SpecError, match=re.escape(needle)) as err:
            load_specs(path)
        assert str(path) in str(err.value)
    with pytest.raises(SpecError, match="not expressible.*contact"):
        default_specs("Ant-v5")
    assert cli_main(["export-spec", "Ant-v5"]) == 2
    with pytest.raises(SpecError, match="task, observation and command"):
        specs_from_dict([1, 2])


def test_command_shaping_reorders_clips_counts_and_rate_limits() -> None:
    spec = CommandSpec(topic="/arm_controller/joint_trajectory", type="JointTrajectory",
                       joints=("b", "c", "a"), action_joints=("a", "b", "c"),
                       low=(-1.0, -2.0, -3.0), high=(1.0, 2.0, 3.0), max_delta=(0.5, 0.5, 10.0),
                       period=0.04, interface="position")
    shaper = CommandShaper(spec)
    first = shaper.shape(np.array([5.0, 0.3, -1.5]))  # a=5 over 3, b, c inside
    assert first.joint_names == ("b", "c", "a")
    np.testing.assert_array_equal(first.values, [0.3, -1.5, 3.0])
    np.testing.assert_array_equal(shaper.clip_counts, [0, 0, 1])
    assert (first.type, first.interface) == ("JointTrajectory", "position")
    assert first.time_from_start == 0.04
    # b: 1.7 -> 1 (clip) -> 0.8 (rate); c: -2.5 -> -2 (clip, within rate); a: -5 -> -3 (clip)
    second = shaper.shape(np.array([-5.0, 1.7, -2.5]))
    np.testing.assert_array_equal(second.values, [0.8, -2.0, -3.0])
    np.testing.assert_array_equal(shaper.clip_counts, [1, 1, 2])
    shaper.reset()
    np.testing.assert_array_equal(shaper.shape(np.array([0.0, 1.0, 2.0])).values, [1.0, 2.0, 0.0])
    with pytest.raises(SpecError, match="shape"):
        shaper.shape(np.zeros(2))
    with pytest.raises(SpecError, match="same joints"):
        dataclasses.replace(spec, action_joints=("a", "b", "d"))


def test_default_command_spec_matches_the_env_actuators() -> None:
    for task in TASKS:
        env = get_task(task).make_env()
        cmd = default_specs(task).command
        np.testing.assert_array_equal(cmd.low, env.action_space.low)
        np.testing.assert_array_equal(cmd.high, env.action_space.high)
        assert cmd.period == pytest.approx(env.unwrapped.dt)
        assert len(cmd.joints) == get_task(task).act_dim


def test_driver_samples_report_actuator_efforts_and_odometry_twist() -> None:
    env = get_task("HalfCheetah-v5").make_env()
    env.reset(seed=0)
    env.step(np.full(6, 0.5))
    model, data = env.unwrapped.model, env.unwrapped.data
    samples = driver_samples(default_specs("HalfCheetah-v5").observation, model, data, 7.0)
    joints = samples["joint_states"]
    gear = model.actuator_gear[:, 0]
    np.testing.assert_allclose(joints.effort, 0.5 * gear, rtol=1e-12)  # torque = gear * ctrl
    torso = samples["torso"]
    assert torso.stamp == joints.stamp == 7.0 and torso.frame == "world"
    # body-frame twist (REP-105): rotating it back gives the world velocity of the root joints
    pitch = data.qpos[2]
    c, s = np.cos(pitch), np.sin(pitch)
    vx_body, _, vz_body = torso.linear_velocity
    np.testing.assert_allclose([c * vx_body + s * vz_body, -s * vx_body + c * vz_body],
                               data.qvel[:2], atol=1e-9)


def test_angle_from_quaternion_is_unwrapped_across_pi() -> None:
    """A flipping HalfCheetah: the pitch keeps counting past ±pi like MuJoCo's hinge angle."""
    asm = ObservationAssembler(default_specs("HalfCheetah-v5").observation)
    names = ("bthigh", "bshin", "bfoot", "fthigh", "fshin", "ffoot")
    # steps under pi per tick, as unwrapping assumes
    for k, pitch in enumerate([0.5, 2.9, 3.3, 6.0, 7.0, 4.5, 1.5, -1.0, -4.0]):
        q = [0.0, np.sin(pitch / 2), 0.0, np.cos(pitch / 2)]  # x, y, z, w
        asm.update("torso", PoseSample([0.0, 0.0, 0.7], q, [0.0] * 3, [0.0] * 3, "world", k))
        asm.update("joint_states", JointSample(names, [0.0] * 6, [0.0] * 6, [0.0] * 6, k))
        assert asm.assemble(k).observation[1] == pytest.approx(pitch, abs=1e-12)
    asm.reset()  # a new episode starts from the principal value
    asm.update("torso", PoseSample([0.0, 0.0, 0.7], [0.0, 0.0, 0.0, 1.0], [0.0] * 3, [0.0] * 3,
                                   "world", 9.0))
    asm.update("joint_states", JointSample(names, [0.0] * 6, [0.0] * 6, [0.0] * 6, 9.0))
    assert asm.assemble(9.0).observation[1] == 0.0
