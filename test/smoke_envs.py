"""The env ids of the smoke matrix: every Gymnasium MuJoCo v5 env, the gymnasium-robotics
PointMaze/AntMaze UMaze and Fetch envs, and the check that a spec reproduces an env observation."""

import mujoco
import numpy as np

from learned_control.specs import ObservationAssembler, driver_samples
from learned_control.tasks import get_task

MUJOCO_V5 = ["Ant-v5", "HalfCheetah-v5", "Hopper-v5", "Humanoid-v5", "HumanoidStandup-v5",
             "InvertedDoublePendulum-v5", "InvertedPendulum-v5", "Pusher-v5", "Reacher-v5",
             "Swimmer-v5", "Walker2d-v5"]
ROBOTICS = ["PointMaze_UMaze-v3", "AntMaze_UMaze-v5", "FetchReach-v4", "FetchPush-v4",
            "FetchSlide-v4", "FetchPickAndPlace-v4"]
ENVS = MUJOCO_V5 + ROBOTICS


def assert_spec_reproduces_observation(specs, steps: int = 100, seed: int = 5) -> None:
    """The assembler fed with the driver samples equals the env observation at every step."""
    env = get_task(specs.task, specs.env_kwargs).make_env()
    model, data = env.unwrapped.model, env.unwrapped.data
    scratch, asm = mujoco.MjData(model), ObservationAssembler(specs.observation)
    env.action_space.seed(seed)
    obs, _ = env.reset(seed=seed)
    for k in range(steps):
        for name, sample in driver_samples(specs.observation, model, data, k * 0.01,
                                           scratch).items():
            asm.update(name, sample)
        out = asm.assemble(k * 0.01)
        assert out.stale == ()
        np.testing.assert_allclose(out.observation, obs, rtol=0, atol=1e-9, err_msg=f"step {k}")
        obs, _, term, trunc, _ = env.step(env.action_space.sample())
        if term or trunc:
            obs, _ = env.reset()
            asm.reset()
