"""Minari datasets in and out: ids to episodes and flat transitions, rollouts to new datasets.

Reading works on local datasets (under ``$MINARI_DATASETS_PATH``, default
``~/.minari/datasets``) and, with ``download=True``, on the Minari server's. Writing uses
``minari.create_dataset_from_buffers`` (no jax needed).
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
from tqdm.auto import tqdm

from ..actors import Actor
from ..errors import DatasetError
from ..tasks import Task, flatten_dict_obs
from .episodes import Episode, Transitions

__all__ = [
    "load_episodes",
    "load_transitions",
    "save_episodes",
    "rollout_episodes",
    "check_new_dataset_id",
    "PublicDataset",
    "PUBLIC_DATASETS",
    "check_stand_in",
]


@dataclass(frozen=True)
class PublicDataset:
    """What the public description of a dataset on the Minari server says, so that a dataset
    made locally under its id matches it (env spec, spaces, episode length, metadata fields).

    Attributes:
        dataset_id: its id, e.g. ``mujoco/pusher/expert-v0``.
        env_id: the Gymnasium env it was recorded in.
        max_episode_steps: the env spec's episode length.
        total_episodes: episodes of the public copy (``total_steps`` in all).
        total_steps: steps of the public copy.
        algorithm_name: what produced its actions, in Minari's ``library/ALGO`` form.
        author: its author.
        code_permalink: the code that made it.
    """

    dataset_id: str
    env_id: str
    max_episode_steps: int
    total_episodes: int
    total_steps: int
    algorithm_name: str
    author: str
    code_permalink: str

    def describe(self) -> str:
        """One sentence on the public copy, for a local stand-in's description."""
        return (
            f"The public {self.dataset_id} holds {self.total_episodes} episodes "
            f"({self.total_steps} steps) of {self.algorithm_name} on {self.env_id} by "
            f"{self.author} ({self.code_permalink})."
        )


PUBLIC_DATASETS: dict[str, PublicDataset] = {
    d.dataset_id: d
    for d in (
        PublicDataset(
            "mujoco/pusher/expert-v0",
            "Pusher-v5",
            100,
            5000,
            500_000,
            "SB3/SAC",
            "Kallinteris Andreas",
            "https://github.com/Farama-Foundation/minari-dataset-generation-scripts",
        ),
    )
}
"""Public Minari datasets that ``learned-control collect`` can make a local stand-in for."""


def check_stand_in(dataset_id: str, env: gym.Env) -> PublicDataset | None:
    """The public description of ``dataset_id`` (``None`` for an id not in
    :data:`PUBLIC_DATASETS`), after checking that ``env`` records what it holds.

    Raises:
        DatasetError: ``env`` differs from the public dataset's env id, episode length or
            keyword arguments (both sides named).
    """
    public = PUBLIC_DATASETS.get(dataset_id)
    if public is None:
        return None
    spec = env.spec
    got = (spec.id, spec.max_episode_steps, dict(spec.kwargs)) if spec else (str(env), None, {})
    if got != (public.env_id, public.max_episode_steps, {}):
        raise DatasetError(
            f"{dataset_id!r} is recorded in {public.env_id} with max_episode_steps="
            f"{public.max_episode_steps} and no env kwargs; this env is {got[0]} with "
            f"max_episode_steps={got[1]} and kwargs {got[2]} (use --task {public.env_id} "
            f"without --env-kwargs, or another dataset id)"
        )
    return public


def _open(dataset_id: str, download: bool):
    import minari

    try:
        return minari.load_dataset(dataset_id, download=download)
    except FileNotFoundError as err:
        raise DatasetError(
            f"no local Minari dataset {dataset_id!r} (looked in {_datasets_root()}); list the "
            f"local ones with `minari list local` (or minari.list_local_datasets()), or pass "
            f"download=True (--download) to fetch it from the Minari server"
        ) from err
    except Exception as err:  # minari raises ValueError/KeyError/OSError for bad ids and files
        raise DatasetError(f"cannot open Minari dataset {dataset_id!r}: {err}") from err


def _datasets_root() -> str:
    from minari.storage import get_dataset_path

    return str(get_dataset_path())


def _flat(obs: Any, task: Task | None, dataset_id: str) -> np.ndarray:
    """``(T+1, obs_dim)`` from a Box observation array or a dict one, flattened by
    :func:`~learned_control.tasks.flatten_dict_obs` in the task's ``dict_obs_keys`` order (the
    order of the task's env wrapper)."""
    if isinstance(obs, dict):
        if task is None or task.dict_obs_keys is None:
            raise DatasetError(
                f"{dataset_id!r} has dict observations {sorted(obs)}; give the task "
                f"whose dict_obs_keys say how to flatten them"
            )
        missing = [k for k in task.dict_obs_keys if k not in obs]
        if missing:
            raise DatasetError(
                f"{dataset_id!r} observations lack the keys {missing} that task "
                f"{task.name} flattens"
            )
        return flatten_dict_obs(obs, task.dict_obs_keys, batch_dims=1).astype(np.float64)
    obs = np.asarray(obs, dtype=np.float64)
    return obs.reshape(len(obs), -1)


def load_episodes(
    dataset_id: str,
    task: Task | None = None,
    download: bool = False,
) -> tuple[list[Episode], gym.Env]:
    """Episodes of a Minari dataset and the env it was recorded in.

    Args:
        dataset_id: e.g. ``"mujoco/pusher/expert-v0"``, or one made by ``learned-control collect``.
        task: when given, the observation and action sizes are checked against it and dict
            observations are flattened in its ``dict_obs_keys`` order; the returned env is then
            ``task.make_env()`` (flat observations) instead of the recovered one.
        download: fetch the dataset from the Minari server when it is not local.

    Returns:
        ``(episodes, env)``; each episode holds ``(T+1, obs_dim)`` observations.

    Raises:
        DatasetError: unknown id (the message says how to list local ones), an empty dataset,
            or sizes that do not fit ``task`` (both shapes named).
    """
    dataset = _open(dataset_id, download)
    episodes = [
        Episode(
            _flat(ep.observations, task, dataset_id),
            np.asarray(ep.actions, np.float64).reshape(len(ep.actions), -1),
            ep.rewards,
            ep.terminations,
            ep.truncations,
        )
        for ep in dataset.iterate_episodes()
    ]
    if not episodes:
        raise DatasetError(f"Minari dataset {dataset_id!r} holds no episodes")
    if task is not None:
        Transitions.from_episodes(episodes[:1]).check_fits(
            task.obs_dim, task.act_dim, f"Minari dataset {dataset_id!r}"
        )
        return episodes, task.make_env()
    return episodes, dataset.recover_environment()


def load_transitions(
    dataset_id: str, task: Task | None = None, download: bool = False
) -> tuple[Transitions, gym.Env]:
    """Flat ``(N, obs_dim)`` observations, ``(N, act_dim)`` actions... and the env.

    Same arguments and errors as :func:`load_episodes`.
    """
    episodes, env = load_episodes(dataset_id, task, download)
    return Transitions.from_episodes(episodes), env


def rollout_episodes(
    actor: Actor, env: gym.Env, episodes: int, seed: int = 0, progress: bool = True
) -> list[Episode]:
    """Run ``actor`` for ``episodes`` episodes with reset seeds ``seed, seed+1, ...``.

    Returns:
        The episodes, each with its final observation (``T+1`` observations) and reset seed.
    """
    out = []
    bar = tqdm(range(episodes), desc="collect", unit="episode", disable=not progress)
    for i in bar:
        if hasattr(actor, "reset"):
            actor.reset()
        obs, _ = env.reset(seed=seed + i)
        observations, actions, rewards, terms, truncs = [obs], [], [], [], []
        done = False
        while not done:
            action = np.asarray(actor.act(obs), dtype=np.float64)
            obs, reward, terminated, truncated, _ = env.step(action)
            observations.append(obs)
            actions.append(action)
            rewards.append(reward)
            terms.append(terminated)
            truncs.append(truncated)
            done = terminated or truncated
        out.append(
            Episode(
                np.stack(observations),
                np.stack(actions),
                np.asarray(rewards, dtype=np.float64),
                np.asarray(terms, dtype=bool),
                np.asarray(truncs, dtype=bool),
                seed=seed + i,
            )
        )
        bar.set_postfix(ret=f"{out[-1].episode_return:.4g}")
    return out


def check_new_dataset_id(dataset_id: str) -> None:
    """Raise :class:`DatasetError` unless ``dataset_id`` is well formed and not taken locally."""
    import minari
    from minari.dataset.minari_dataset import parse_dataset_id

    try:
        parse_dataset_id(dataset_id)
    except (ValueError, TypeError) as err:  # TypeError: no version
        raise DatasetError(
            f"dataset id {dataset_id!r} is malformed; expected "
            f"'[namespace/]name-v<version>', e.g. "
            f"'learned_control/pendulum-expert-v0'"
        ) from err
    if dataset_id in minari.list_local_datasets():
        raise DatasetError(
            f"Minari dataset {dataset_id!r} already exists in {_datasets_root()}; "
            f"pick a new id or delete it (`minari delete {dataset_id}`)"
        )


def _requirements() -> list[str]:
    """Minari's ``requirements`` metadata of a recorded dataset: the installed mujoco and
    gymnasium versions as lower bounds (``recover_environment`` warns below them)."""
    found = []
    for name in ("mujoco", "gymnasium"):
        try:
            found.append(f"{name}>={importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            continue
    return found


def save_episodes(
    dataset_id: str,
    episodes: Sequence[Episode],
    env: gym.Env,
    algorithm_name: str = "learned_control",
    author: str = "learned_control",
    description: str = "Rollouts recorded by learned_control.",
    extra_metadata: dict[str, Any] | None = None,
) -> str:
    """Write ``episodes`` as a new local Minari dataset; returns its id.

    Args:
        dataset_id: ``[namespace/]name-v<N>``; must not exist yet.
        episodes: episodes whose sizes fit ``env``'s spaces.
        env: the env they were recorded in (its spec is stored so that
            ``recover_environment`` works).
        algorithm_name: what produced the actions (stored in the metadata).
        author: stored in the metadata.
        description: free text stored in the metadata.
        extra_metadata: further JSON-able metadata entries (read back with
            ``minari.load_dataset(id).storage.metadata``).

    Raises:
        DatasetError: a malformed or existing id, no episodes, or episode sizes that do not
            fit the env (both shapes named). Nothing is written then.
    """
    import minari
    from minari.data_collector import EpisodeBuffer

    check_new_dataset_id(dataset_id)
    if not episodes:
        raise DatasetError(f"no episodes to write to {dataset_id!r}")
    obs_shape, act_shape = env.observation_space.shape, env.action_space.shape
    for i, ep in enumerate(episodes):
        if ep.observations.shape[1:] != obs_shape or ep.actions.shape[1:] != act_shape:
            name = env.spec.id if env.spec else env
            raise DatasetError(
                f"episode {i} has observations {ep.observations.shape[1:]} and "
                f"actions {ep.actions.shape[1:]}; env {name} takes {obs_shape} "
                f"and {act_shape}"
            )
    obs_dtype, act_dtype = env.observation_space.dtype, env.action_space.dtype
    buffers = [
        EpisodeBuffer(
            id=i,
            seed=ep.seed,
            observations=ep.observations.astype(obs_dtype),
            actions=ep.actions.astype(act_dtype),
            rewards=list(ep.rewards),
            terminations=list(ep.terminations),
            truncations=list(ep.truncations),
        )
        for i, ep in enumerate(episodes)
    ]
    try:
        minari.create_dataset_from_buffers(
            dataset_id,
            buffers,
            env=env,
            eval_env=env,
            algorithm_name=algorithm_name,
            author=author,
            author_email="n/a",
            code_permalink="https://github.com/learned-control/learned_control",
            description=description,
            requirements=_requirements(),
        )
        if extra_metadata:
            minari.load_dataset(dataset_id).storage.update_metadata(dict(extra_metadata))
    except Exception as err:  # minari raises ValueError/AssertionError on bad buffers
        if dataset_id in minari.list_local_datasets():
            minari.delete_dataset(dataset_id)  # leave no half-written dataset behind
        raise DatasetError(f"minari could not write {dataset_id!r}: {err}") from err
    return dataset_id
