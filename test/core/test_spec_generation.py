"""Specs generated from the MuJoCo model: floating bases, refusals and their hints, and which
tasks keep a packaged spec file (only where it differs from the generated one on purpose)."""

from __future__ import annotations

import json
import re
from importlib import resources

import pytest
import yaml

from learned_control.cli import main as cli_main
from learned_control.errors import SpecError
from learned_control.specs import (PACKAGED, default_specs, dump_specs, generate_specs, load_specs,
                                   specs_for, specs_from_dict)
from learned_control.tasks import get_task
from smoke_envs import assert_spec_reproduces_observation

ANT = {"include_cfrc_ext_in_observation": False, "reset_noise_scale": 0}
HUMANOID = {"include_cinert_in_observation": False, "include_cvel_in_observation": False,
            "include_cfrc_ext_in_observation": False, "reset_noise_scale": 0}


def test_packaged_spec_files_are_only_those_that_differ_from_the_generated_ones() -> None:
    files = {p.name.removesuffix(".yaml")
             for p in resources.files("learned_control.specs").iterdir()
             if p.name.endswith(".yaml")}
    assert files == set(PACKAGED)
    for task in files:
        text = resources.files("learned_control.specs").joinpath(f"{task}.yaml").read_text()
        packaged = specs_from_dict(yaml.safe_load(text))
        observation, command = generate_specs(get_task(task))
        assert default_specs(task) == packaged
        assert command == packaged.command  # the same robot, commanded the same way
        assert observation != packaged.observation  # else the file would be a copy: remove it
        assert_spec_reproduces_observation(packaged)


def test_hand_written_layouts_are_generated() -> None:
    """What the removed files said, now generated: clipped Hopper velocities, Reacher's target
    as a goal held by its joints, Pusher's fixed goal as a parameter and the arm tip's pose."""
    hopper = default_specs("Hopper-v5").observation
    assert hopper.features[5].expr == {"clip": {"joint": "rootx", "field": "velocity"},
                                       "low": -10.0, "high": 10.0}
    reacher = default_specs("Reacher-v5").observation
    target = reacher.source("target")
    assert (target.type, target.sim_joints, target.topic) == ("goal", ("target_x", "target_y"),
                                                              "/goal")
    assert reacher.features[-1].expr == {"sub": [
        {"body": "fingertip", "field": "position", "index": [0, 1]}, {"goal": "target"}]}
    pusher = default_specs("Pusher-v5").observation
    assert [s.name for s in pusher.sources] == ["joint_states", "tips_arm", "object", "goal"]
    assert pusher.source("goal").value == pytest.approx((0.45, -0.05, -0.323))


def test_floating_base_from_odometry_with_env_kwargs(tmp_path, capsys) -> None:
    specs = default_specs("Ant-v5", ANT)
    torso = specs.observation.source("torso")
    assert (torso.type, specs.observation.sim_kinematics) == ("Odometry", "current")
    assert specs.observation.features[1].expr == {"body": "torso", "field": "orientation",
                                                  "index": [3, 0, 1, 2]}  # qpos is w, x, y, z
    path = tmp_path / "ant.yaml"
    assert cli_main(["export-spec", "Ant-v5", "--env-kwargs", json.dumps(ANT),
                     "-o", str(path)]) == 0
    loaded = load_specs(path)
    assert loaded == specs and loaded.env_kwargs == ANT
    assert_spec_reproduces_observation(loaded)
    assert specs_for("Ant-v5", str(path), ANT) == specs
    with pytest.raises(SpecError, match="env_kwargs"):
        specs_for("Ant-v5", str(path), {})


def test_humanoid_with_the_suggested_kwargs_reads_efforts_from_joint_states() -> None:
    specs = default_specs("Humanoid-v5", HUMANOID)
    assert_spec_reproduces_observation(specs)
    efforts = [f for f in specs.observation.features if f.expr.get("field") == "effort"]
    assert len(efforts) == 17  # qfrc_actuator of the 17 actuated joints


def test_refusals_name_the_quantities_and_the_kwargs_that_remove_them(capsys) -> None:
    with pytest.raises(SpecError) as err:
        default_specs("Humanoid-v5")
    message = str(err.value)
    assert "\n" not in message and "45-174 (body inertias, cinert)" in message
    hint = json.loads(re.search(r"--env-kwargs '(.*?)'", message).group(1))
    assert hint == HUMANOID  # following it gives a spec (test above)
    with pytest.raises(SpecError, match=r"1-4 \(right after reset: a non-unit quaternion"):
        default_specs("Ant-v5", {"include_cfrc_ext_in_observation": False})
    assert cli_main(["export-spec", "Ant-v5"]) == 2
    assert "27-104 (contact forces, cfrc_ext)" in capsys.readouterr().err


def test_export_round_trips_the_env_kwargs_in_yaml() -> None:
    text = dump_specs(default_specs("Ant-v5", ANT))
    assert yaml.safe_load(text)["env_kwargs"] == ANT
    assert "env_kwargs" not in yaml.safe_load(dump_specs(default_specs("Hopper-v5")))
