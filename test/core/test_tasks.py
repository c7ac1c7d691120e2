"""Tasks for any Gymnasium id: derived from the env, module:EnvId, entry points, one order of
dict observations everywhere, and checkpoints carrying the task's env kwargs and layout."""

import textwrap

import gymnasium as gym
import numpy as np
import pytest
import torch

from learned_control import tasks as tasks_module
from learned_control.actors import load_actor
from learned_control.checkpoint import load_checkpoint, save_checkpoint
from learned_control.data.minari_io import load_episodes
from learned_control.errors import CheckpointError, ConfigError
from learned_control.tasks import TASKS, Task, flatten_dict_obs, get_task
from learned_control.training.bc import mlp_policy_for


@pytest.mark.parametrize("env_id", ["InvertedDoublePendulum-v5", "Swimmer-v5", "Humanoid-v5"])
def test_a_task_is_derived_from_any_gymnasium_id(env_id):
    assert env_id not in TASKS
    task = get_task(env_id)
    env = gym.make(env_id)
    assert (task.name, task.env_id, task.env_kwargs) == (env_id, env_id, {})
    assert (task.obs_dim,) == env.observation_space.shape
    assert (task.act_dim,) == env.action_space.shape
    np.testing.assert_array_equal(task.action_low, env.action_space.low)
    np.testing.assert_array_equal(task.action_high, env.action_space.high)
    assert task.dt == env.unwrapped.dt
    assert task.max_episode_steps == env.spec.max_episode_steps
    assert len(task.labels) == task.obs_dim and not task.has_success and task.goal_dim == 0
    assert task.make_env().observation_space.shape == (task.obs_dim,)
    assert get_task(env_id) is task  # cached per (id, env kwargs)


def test_joint_labels_only_where_the_observation_is_qpos_then_qvel():
    swimmer = get_task("Swimmer-v5")  # qpos without the two slider positions, then qvel
    assert swimmer.labels == (
        "free_body_rot_pos", "motor1_rot_pos", "motor2_rot_pos",
        "slider1_vel", "slider2_vel", "free_body_rot_vel", "motor1_rot_vel", "motor2_rot_vel",
    )
    # InvertedDoublePendulum observes sin/cos of its hinges: no joint labels are guessed
    assert get_task("InvertedDoublePendulum-v5").labels == tuple(f"obs_{i}" for i in range(9))
    humanoid = get_task("Humanoid-v5")  # 22 qpos + 23 qvel, then the body terms
    assert humanoid.labels[:6] == ("root_z", "root_qw", "root_qx", "root_qy", "root_qz",
                                   "abdomen_z_pos")
    assert humanoid.labels[22:25] == ("root_vx", "root_vy", "root_vz")
    assert humanoid.labels[45:] == tuple(f"obs_{i}" for i in range(45, 348))
    swimmer_xy = get_task("Swimmer-v5", {"exclude_current_positions_from_observation": False})
    assert swimmer_xy.obs_dim == 10 and swimmer_xy.labels[:2] == ("slider1_pos", "slider2_pos")
    assert swimmer_xy is not swimmer and swimmer_xy.env_kwargs_json


def test_registered_tasks_keep_their_labels_and_defaults_env_kwargs_change_sizes():
    hopper = get_task("Hopper-v5")
    assert hopper is TASKS["Hopper-v5"] and hopper.labels[0] == "rootz_pos"
    noisier = get_task("Hopper-v5", '{"reset_noise_scale": 0.01}')
    assert noisier is not hopper and noisier.env_kwargs == {"reset_noise_scale": 0.01}
    assert noisier.labels == hopper.labels and noisier.expert_steps == hopper.expert_steps
    with_x = get_task("Hopper-v5", {"exclude_current_positions_from_observation": False})
    assert with_x.name == "Hopper-v5" and with_x.obs_dim == 12
    assert with_x.labels[0] == "rootx_pos"  # from the MuJoCo joints, the size changed
    with_x.make_env()  # the registry check of the sizes passes


def test_goal_conditioned_dict_envs_from_gymnasium_robotics():
    push = get_task("FetchPush-v4")  # registered on demand
    assert push.dict_obs_keys == ("achieved_goal", "desired_goal", "observation")
    assert push.obs_dim == 3 + 3 + 25 and push.has_success and push.goal_dim == 3
    assert push.labels[3:6] == ("desired_goal_0", "desired_goal_1", "desired_goal_2")


def test_unknown_ids_and_bad_env_kwargs_are_one_line_config_errors():
    with pytest.raises(ConfigError, match="unknown task 'Swimer-v5'.*close ids: Swimmer-v5") as err:
        get_task("Swimer-v5")
    assert "\n" not in str(err.value)
    with pytest.raises(ConfigError, match="refuses env_kwargs"):
        get_task("Swimmer-v5", {"no_such_argument": 1})
    with pytest.raises(ConfigError, match="not JSON"):
        get_task("Swimmer-v5", "{reset_noise_scale: 1}")
    with pytest.raises(ConfigError, match="action space is Discrete"):
        get_task("CartPole-v1")


TINY_ENV = '''
import gymnasium as gym
import numpy as np


class TinyPoint(gym.Env):
    """A point on a line: observation (x, v, target), action a force in [-2, 2]."""

    dt = 0.1

    def __init__(self, target=1.0):
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (3,), np.float64)
        self.action_space = gym.spaces.Box(-2.0, 2.0, (1,), np.float32)
        self.target = target

    def _obs(self):
        return np.array([self.x, self.v, self.target])

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        self.x, self.v = self.np_random.uniform(-1, 1), 0.0
        return self._obs(), {}

    def step(self, action):
        self.v += float(action[0]) * self.dt
        self.x += self.v * self.dt
        success = abs(self.x - self.target) < 0.1
        return self._obs(), -abs(self.x - self.target), False, False, {"is_success": success}


gym.register("TinyPoint-v0", entry_point=TinyPoint, max_episode_steps=20)
'''


def test_module_colon_env_id_imports_the_users_package(tmp_path, monkeypatch):
    (tmp_path / "lc_tiny_envs.py").write_text(TINY_ENV)
    monkeypatch.syspath_prepend(str(tmp_path))
    task = get_task("lc_tiny_envs:TinyPoint-v0", '{"target": 0.5}')
    assert (task.name, task.env_id, task.obs_dim, task.act_dim) == (
        "lc_tiny_envs:TinyPoint-v0", "lc_tiny_envs:TinyPoint-v0", 3, 1)
    assert task.env_kwargs == {"target": 0.5} and task.has_success and task.dt == 0.1
    assert task.labels == ("obs_0", "obs_1", "obs_2") and task.max_episode_steps == 20
    np.testing.assert_array_equal(task.action_high, [2.0])
    obs, _ = task.make_env().reset(seed=0)
    assert obs[2] == 0.5


def test_one_dict_observation_order_env_equals_dataset_and_manual_concatenation(tmp_path):
    """Keys not in alphabetical order: the env wrapper, the dataset loader and a manual
    concatenation in ``dict_obs_keys`` order agree, step for step."""
    import gymnasium_robotics
    import minari
    from minari.data_collector import EpisodeBuffer

    gym.register_envs(gymnasium_robotics)

    keys = ("observation", "desired_goal")
    task = Task("FetchReachObservationFirst", "FetchReach-v4", 13, 4, dict_obs_keys=keys,
                has_success=True, goal_dim=3)
    actions = np.random.default_rng(0).uniform(-1, 1, size=(50, 4)).astype(np.float32)
    raw = gym.make("FetchReach-v4")  # dict observations, as datasets of it hold them
    steps = [raw.reset(seed=3)[0]]
    rewards, terms, truncs = [], [], []
    for action in actions:
        obs, reward, terminated, truncated, _ = raw.step(action)
        steps.append(obs)
        rewards.append(reward), terms.append(terminated), truncs.append(truncated)
    assert truncs[-1] and not any(truncs[:-1])  # one whole 50-step episode
    buffer = EpisodeBuffer(
        id=0, seed=3, observations={k: np.stack([o[k] for o in steps]) for k in steps[0]},
        actions=actions, rewards=rewards, terminations=terms, truncations=truncs)
    minari.create_dataset_from_buffers("test/fetch-dict-v0", [buffer], env=raw, eval_env=raw,
                                       algorithm_name="random", author="test", author_email="n/a",
                                       code_permalink="n/a", description="dict observations")
    manual = np.stack([np.concatenate([o["observation"], o["desired_goal"]]) for o in steps])
    rows = load_episodes("test/fetch-dict-v0", task)[0][0].observations

    env = task.make_env()
    flat = np.stack([env.reset(seed=3)[0]] + [env.step(a)[0] for a in actions])
    np.testing.assert_allclose(rows, manual, rtol=1e-12)
    np.testing.assert_allclose(flat, rows, rtol=1e-12)
    np.testing.assert_array_equal(rows[:, -3:], np.stack([o["desired_goal"] for o in steps]))


def test_flatten_dict_obs_one_step_and_sequences():
    obs = {"b": np.arange(2.0), "a": np.array([[5.0, 6.0]])}
    np.testing.assert_array_equal(flatten_dict_obs(obs, ("b", "a")), [0, 1, 5, 6])
    seq = {"b": np.zeros((4, 2)), "a": np.ones((4, 1, 2))}
    assert flatten_dict_obs(seq, ("b", "a"), batch_dims=1).shape == (4, 4)


PLUGIN = '''
from learned_control.tasks import Task


def tasks():
    return [Task("PluginPendulum-v0", "InvertedPendulum-v5", 4, 1,
                 obs_labels=("x", "theta", "x_dot", "theta_dot"), expert_algo="ppo")]


def broken():
    raise RuntimeError("this plugin is broken")
'''


def _install_plugin(tmp_path, monkeypatch, entry_points: str) -> None:
    """A distribution in ``tmp_path`` (on sys.path) exposing ``entry_points`` in the group."""
    (tmp_path / "lc_plugin_tasks.py").write_text(PLUGIN)
    dist = tmp_path / "lc_plugin_tasks-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: lc-plugin-tasks\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(
        f"[learned_control.tasks]\n{textwrap.dedent(entry_points)}")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(tasks_module, "TASKS", dict(tasks_module.TASKS))
    monkeypatch.setattr(tasks_module, "_LOADED_ENTRY_POINTS", set())
    monkeypatch.setattr(tasks_module, "_ENTRY_POINT_ERRORS", [])


def test_entry_point_tasks_resolve_lazily_also_from_a_checkpoint(tmp_path, monkeypatch):
    _install_plugin(tmp_path, monkeypatch, """\
        pendulum = lc_plugin_tasks:tasks
        broken = lc_plugin_tasks:broken
        """)
    assert "PluginPendulum-v0" not in tasks_module.TASKS
    with pytest.warns(UserWarning, match="broken.*this plugin is broken"):
        task = get_task("PluginPendulum-v0")
    assert task.labels == ("x", "theta", "x_dot", "theta_dot") and task.expert_algo == "ppo"
    path = save_checkpoint(tmp_path / "policy.pt", mlp_policy_for(task), task)

    # a new process: nothing registered yet, the checkpoint alone names the task
    monkeypatch.setattr(tasks_module, "TASKS", dict(TASKS))
    monkeypatch.setattr(tasks_module, "_LOADED_ENTRY_POINTS", set())
    with pytest.warns(UserWarning):
        assert load_checkpoint(path).resolve_task().labels == task.labels
    load_actor(path, get_task("PluginPendulum-v0"))


def test_checkpoints_carry_env_id_kwargs_and_layout_and_refuse_another_layout(tmp_path):
    task = get_task("Swimmer-v5", {"reset_noise_scale": 0.2})
    path = save_checkpoint(tmp_path / "policy.pt", mlp_policy_for(task), task, {"epochs": 1})
    ckpt = load_checkpoint(path)
    assert ckpt.task == "Swimmer-v5" and ckpt.task_layout == {
        "env_id": "Swimmer-v5",
        "env_kwargs": {"reset_noise_scale": 0.2},
        "obs_labels": list(task.labels),
        "dict_obs_keys": None,
    }
    assert ckpt.resolve_task() is task
    load_actor(path, get_task("Swimmer-v5"))  # other env kwargs, same layout: accepted

    relabelled = Task("Swimmer-v5", "Swimmer-v5", 8, 2, obs_labels=tuple("abcdefgh"))
    with pytest.raises(CheckpointError, match="labels differ .* element 0 .*'free_body_rot_pos'"):
        load_actor(path, relabelled)

    fetch = get_task("FetchReach-v4")
    fetch_path = save_checkpoint(tmp_path / "fetch.pt", mlp_policy_for(fetch), fetch)
    swapped = Task("FetchReach-v4", "FetchReach-v4", 13, 4, dict_obs_keys=("observation",
                   "desired_goal"), obs_labels=fetch.labels)
    with pytest.raises(CheckpointError, match="dict observation keys differ"):
        load_actor(fetch_path, swapped)


def test_checkpoints_without_a_layout_still_load(tmp_path):
    task = get_task("InvertedPendulum-v5")
    path = save_checkpoint(tmp_path / "named.pt", mlp_policy_for(task), task.name)
    assert load_checkpoint(path).task_layout is None
    raw = torch.load(path, weights_only=True)
    del raw["task_layout"]  # as files written before the layout was recorded
    torch.save(raw, tmp_path / "old.pt")
    old = load_checkpoint(tmp_path / "old.pt")
    assert old.task_layout is None and old.resolve_task() is task
    load_actor(tmp_path / "old.pt", Task("InvertedPendulum-v5", "InvertedPendulum-v5", 4, 1))
