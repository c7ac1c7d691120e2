"""The fixed-goal FetchReach world-model recipe end to end, with aggregation rounds.

Stages, each writing into one run directory:

1. ``expert/``: SB3 PPO on the real fixed-goal FetchReach (or, ``random_goals``, the standard
   50-step random-goal episode with the same shaped reward), SB3's ``EvalCallback`` keeping
   ``best_model.zip`` and ``eval_reward.png``.
2. Collection: the best expert (stochastic actions) in the real env -> Minari dataset.
3. ``round0/``: the dynamics model (:meth:`WorldModelConfig.dynamics_model`) fit on it
   (episode-shuffled, train/validation split, ``curves.png``).
4. PPO trained inside :class:`~learned_control.envs.model_env.ModelVecEnv` on that model, starting
   from the expert's nets (``ppo_from_expert``); its episodes are those of the real training
   env (ended on success, or 50 steps scored at the last one).
5. Real-env evaluations, 100 episodes each by default: the fixed goal with
   stochastic PPO actions, and the env's random goals with the deterministic exported policy.
6. ``round<k>/``, k = 1..rounds: the learner's real rollouts (stochastic) are added (a Minari
   dataset per round), the model is refit from scratch on all data, PPO is trained in the new
   model (from the expert's nets each round, or continued: ``ppo_from_expert``), evaluations
   again. ``rounds.json`` / ``rounds.txt`` / ``rounds.png`` by round.
7. ``policy.pt``: the final PPO actor as our MLPPolicy checkpoint for task ``FetchReach-v4``
   (same 13-d layout), loadable by ``learned-control evaluate`` and the controller node.

Every real env is wrapped in :class:`StepCounter`; ``real_steps`` holds the counted steps per
stage, not the budgets.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from tqdm import tqdm

from ..actors import load_sb3_expert
from ..checkpoint import save_checkpoint
from ..data.episodes import Episode, Transitions
from ..data.minari_io import check_new_dataset_id, save_episodes
from ..envs.fetch_reach import FIXED_GOAL_ENV_ID
from ..envs.model_env import ModelVecEnv, ensemble_predict, rollout_steps
from ..errors import ConfigError
from ..evaluation import EvalResult, evaluate
from ..models.dynamics import EnsembleDynamics
from ..models.policies import MLPPolicy
from ..tasks import get_task
from .dynamics import DynamicsTrainConfig, train_dynamics_run

__all__ = [
    "EVAL_SEED_OFFSET",
    "EXPERT_EVAL_SEED_OFFSET",
    "ROUND_SEED_OFFSET",
    "SMALL_MLP_WORLD_MODEL",
    "WorldModelConfig",
    "WorldModelResult",
    "StepCounter",
    "run_world_model",
    "sb3_actor_to_policy",
]

EVAL_SEED_OFFSET = 1_000_000
"""Evaluation reset seeds start at ``seed + EVAL_SEED_OFFSET``: no goal of the data is evaluated."""
ROUND_SEED_OFFSET = 100_000
"""Round ``k``'s learner rollouts use reset seeds from ``seed + k * ROUND_SEED_OFFSET``."""
EXPERT_EVAL_SEED_OFFSET = 2_000_000
"""The expert's ``EvalCallback`` episodes reset from ``seed + EXPERT_EVAL_SEED_OFFSET`` on."""
POLICY_TASK = "FetchReach-v4"
"""Task name stored in the exported checkpoint: the random-goal FetchReach, same 13-d layout."""


SMALL_MLP_WORLD_MODEL = dict(
    members=1, hidden_sizes=(32, 64), activation="relu", lr=1e-4, epochs=50, patience=0
)
"""The small 32-64 MLP world model as :class:`WorldModelConfig` fields: one MLP
``17 -> 32 -> 64 -> 13`` (ReLU), Adam lr 1e-4, MSE, 50 epochs; the baseline of our ensemble."""


@dataclass
class WorldModelConfig:
    """Budgets and settings; the defaults are the fixed-goal recipe's budgets.

    Attributes:
        expert_steps: real env steps of PPO expert training; a multiple of
            ``n_steps * n_envs``.
        collect_steps: real env steps of expert data collection.
        aggregation_steps: real env steps of learner rollouts added per aggregation round.
        rounds: aggregation rounds after the first model (0: none).
        model_ppo_steps: PPO steps inside the learned model per round (no real env steps).
        n_steps: PPO rollout length per env, expert and model PPO.
        n_envs: parallel real envs of the expert.
        model_envs: parallel model envs of PPO inside the model.
        hidden: width of the one tanh hidden layer of the policy and value nets.
        batch_size: PPO minibatch.
        eval_every: real env steps between the expert's ``EvalCallback`` evaluations.
        eval_callback_episodes: episodes per callback evaluation (stochastic actions; SB3's
            default 5), on reset seeds from ``seed + EXPERT_EVAL_SEED_OFFSET``.
        eval_episodes: episodes of each real-env evaluation of a round.
        members, hid_size, num_layers: dynamics ensemble size and MLP shape.
        hidden_sizes: the dynamics MLP's hidden widths in order, instead of ``hid_size x
            num_layers`` (the small MLP world model: ``(32, 64)``, see
            :data:`SMALL_MLP_WORLD_MODEL`).
        activation, probabilistic: the dynamics MLP's activation; Gaussian NLL instead of MSE.
        epochs, lr, model_batch_size, val_fraction, patience: dynamics training
            (``val_fraction`` 0.2: an 80/20 split). One member trains on all the
            training data; several train each on its own bootstrap resample.
        ppo_from_expert: every round trains a new PPO in that round's model, starting from the
            expert's policy and value nets (a fresh optimizer). ``False``: one PPO from
            scratch, continued across rounds. Same real env steps either way (results: README,
            World models).
        random_goals: train on the standard random-goal FetchReach instead of the fixed goal:
            the env's goals, 50-step episodes whose success is that of the last step (so the
            policy must stay at the goal), the same shaped reward. Expert, its callback,
            collection, aggregation and the model env all run that episode.
        dataset_prefix: Minari ids are ``<prefix>-collect-v0`` and ``<prefix>-round<k>-v0``.
        seed: seeds PPO, the model fits, rollouts (reset seeds) and evaluations.
        device: torch device of PPO and the model.
    """

    expert_steps: int = 40_960
    collect_steps: int = 50_000
    aggregation_steps: int = 10_000
    rounds: int = 2
    model_ppo_steps: int = 204_800
    n_steps: int = 512
    n_envs: int = 4
    model_envs: int = 16
    hidden: int = 128
    batch_size: int = 64
    eval_every: int = 1024
    eval_callback_episodes: int = 5
    eval_episodes: int = 100
    members: int = 5
    hid_size: int = 200
    num_layers: int = 3
    hidden_sizes: tuple[int, ...] | None = None
    activation: str = "silu"
    probabilistic: bool = False
    epochs: int = 50
    lr: float = 1e-3
    model_batch_size: int = 256
    val_fraction: float = 0.2
    patience: int = 10
    ppo_from_expert: bool = True
    random_goals: bool = False
    dataset_prefix: str = "learned_control/world-model"
    seed: int = 0
    device: str = "cpu"

    def __post_init__(self) -> None:
        for name in (
            "expert_steps",
            "collect_steps",
            "model_ppo_steps",
            "n_steps",
            "n_envs",
            "model_envs",
            "hidden",
            "batch_size",
            "eval_every",
            "eval_callback_episodes",
            "eval_episodes",
            "members",
            "hid_size",
            "num_layers",
            "epochs",
        ):
            if getattr(self, name) < 1:
                raise ConfigError(f"WorldModelConfig.{name}={getattr(self, name)}; expected >= 1")
        if self.rounds < 0 or (self.rounds > 0 and self.aggregation_steps < 1):
            raise ConfigError(
                f"WorldModelConfig rounds={self.rounds} (>= 0), aggregation_steps="
                f"{self.aggregation_steps} (>= 1 when rounds > 0)"
            )
        rollout = self.n_steps * self.n_envs
        if self.expert_steps % rollout:
            raise ConfigError(
                f"WorldModelConfig.expert_steps={self.expert_steps} is not a multiple "
                f"of n_steps * n_envs = {rollout}; PPO would overrun the budget"
            )
        if self.hidden_sizes is not None:
            self.hidden_sizes = tuple(self.hidden_sizes)
        with torch.device("meta"):  # checks the dynamics options; no memory, no random draws
            self.dynamics_model()
        check_new_dataset_id(f"{self.dataset_prefix}-collect-v0")  # well-formed, not taken

    def dynamics_model(self) -> EnsembleDynamics:
        """A new (untrained) dynamics model for the 13-d observations and 4-d actions."""
        return EnsembleDynamics(
            13,
            4,
            self.members,
            self.hid_size,
            self.num_layers,
            self.activation,
            self.probabilistic,
            hidden_sizes=self.hidden_sizes,
        )


@dataclass
class WorldModelResult:
    """What :func:`run_world_model` produced.

    Attributes:
        checkpoint: the exported policy checkpoint.
        expert: the expert's two evaluation summaries (keys as in ``rounds``) and its
            ``real_steps`` (training + callback evaluations).
        rounds: one dict per round (0 = first model): ``transitions``, ``val_one_step_mse``,
            ``fixed_stochastic`` / ``random_deterministic`` evaluation summaries, ``real_steps``
            (training steps so far).
        real_steps: counted real env steps per stage: ``expert`` (training), ``expert_eval``
            (callback evaluations), ``collection``, ``aggregation`` (list, one per round),
            ``evaluation`` (the reported evaluations; not training data).
        datasets: Minari ids written.
    """

    checkpoint: Path
    expert: dict
    rounds: list[dict] = field(default_factory=list)
    real_steps: dict[str, Any] = field(default_factory=dict)
    datasets: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {**asdict(self), "checkpoint": str(self.checkpoint)}


class StepCounter(gym.Wrapper):
    """Counts ``step`` calls of the wrapped env in ``steps``."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.steps = 0

    def step(self, action: Any) -> tuple:
        self.steps += 1
        return self.env.step(action)


class _StochasticPPO:
    """An SB3 model's sampled actions as an :class:`~learned_control.evaluation.Actor`."""

    def __init__(self, model: Any) -> None:
        self.model = model

    def act(self, obs: np.ndarray) -> np.ndarray:
        return self.model.predict(np.asarray(obs, np.float32), deterministic=False)[0]


def _ppo(env: Any, config: WorldModelConfig) -> Any:
    from stable_baselines3 import PPO

    return PPO(
        "MlpPolicy",
        env,
        n_steps=config.n_steps,
        batch_size=config.batch_size,
        seed=config.seed,
        device=config.device,
        verbose=0,
        policy_kwargs=dict(
            net_arch=dict(pi=[config.hidden], vf=[config.hidden]), activation_fn=torch.nn.Tanh
        ),
    )


def sb3_actor_to_policy(model: Any) -> MLPPolicy:
    """Our :class:`MLPPolicy` with the deterministic actor of an SB3 PPO ``MlpPolicy``.

    The PPO policy must have one tanh hidden layer for the actor (``net_arch=dict(pi=[h], ...)``,
    ``activation_fn=nn.Tanh``), as :func:`run_world_model` trains it; normalizers are identity,
    actions are clipped to the action space as SB3's ``predict(deterministic=True)`` does.

    Raises:
        ConfigError: if the actor is not one tanh layer followed by the action net.
    """
    sb3 = model.policy
    layers = list(sb3.mlp_extractor.policy_net)
    if (
        len(layers) != 2
        or not isinstance(layers[0], torch.nn.Linear)
        or not isinstance(layers[1], torch.nn.Tanh)
    ):
        raise ConfigError(f"PPO actor {layers!r}: expected [Linear, Tanh] (net_arch pi=[h], tanh)")
    space = model.action_space
    policy = MLPPolicy(
        layers[0].in_features,
        space.shape[0],
        hid_size=layers[0].out_features,
        num_layers=1,
        activation="tanh",
        action_low=space.low.tolist(),
        action_high=space.high.tolist(),
    )
    ours = policy.net.linear_layers()
    with torch.no_grad():
        for dst, src in zip(ours, (layers[0], sb3.action_net), strict=True):
            dst.weight.copy_(src.weight)
            dst.bias.copy_(src.bias)
    return policy


def _plot(path: Path, x: Any, series: dict[str, Any], xlabel: str, ylabel: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for label, y in series.items():
        ax.plot(x, y, marker="o", label=label)
    ax.set(xlabel=xlabel, ylabel=ylabel)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _training_env(config: WorldModelConfig) -> gym.Env:
    """A real env the expert and the data come from: the fixed-goal FetchReach task, or (config
    ``random_goals``) the standard random-goal episode with the same shaped reward."""
    if config.random_goals:
        return gym.make(FIXED_GOAL_ENV_ID, goal=None, terminate_on_success=False)
    return gym.make(FIXED_GOAL_ENV_ID)


def _train_expert(
    config: WorldModelConfig, out: Path, progress: bool
) -> tuple[Any, dict[str, int]]:
    """PPO on the real env with ``EvalCallback``; returns (best model, counted steps)."""
    from stable_baselines3.common.callbacks import EvalCallback
    from stable_baselines3.common.monitor import Monitor
    from stable_baselines3.common.vec_env import DummyVecEnv

    counters = [StepCounter(_training_env(config)) for _ in range(config.n_envs)]
    eval_counter = StepCounter(_training_env(config))
    venv = DummyVecEnv([partial(Monitor, c) for c in counters])
    eval_venv = DummyVecEnv([lambda: Monitor(eval_counter)])
    eval_venv.seed(config.seed + EXPERT_EVAL_SEED_OFFSET)  # same goals, same best model
    callback = EvalCallback(
        eval_venv,
        n_eval_episodes=config.eval_callback_episodes,
        eval_freq=max(config.eval_every // config.n_envs, 1),
        best_model_save_path=str(out),
        log_path=str(out),
        deterministic=False,
        verbose=0,
    )
    model = _ppo(venv, config)
    model.learn(config.expert_steps, callback=callback, progress_bar=progress)
    if not (out / "best_model.zip").is_file():  # no evaluation ran (budget < eval_every)
        model.save(out / "best_model.zip")
    if callback.evaluations_timesteps:
        _plot(
            out / "eval_reward.png",
            callback.evaluations_timesteps,
            {"mean eval reward": np.mean(callback.evaluations_results, axis=1)},
            "real env steps",
            "episode reward (stochastic)",
        )
    best = load_sb3_expert(
        out / "best_model.zip", get_task(POLICY_TASK), "ppo", config.device
    ).model
    return best, {"expert": sum(c.steps for c in counters), "expert_eval": eval_counter.steps}


def _collect(
    model: Any, env: gym.Env, steps: int, seed: int, dataset_id: str, progress: bool
) -> list[Episode]:
    """``steps`` real steps of ``model``'s sampled actions in ``env``, as Minari ``dataset_id``."""
    assert env.spec is not None  # a gym.make env
    episodes = rollout_steps(env, _StochasticPPO(model).act, steps, seed, progress)
    save_episodes(
        dataset_id,
        episodes,
        env,
        algorithm_name="ppo (stochastic)",
        description=f"{steps} real steps of PPO on {env.spec.id} {env.spec.kwargs}, reset "
        f"seeds from {seed}",
    )
    env.close()
    return episodes


def _evaluate(model: Any, config: WorldModelConfig) -> tuple[dict[str, EvalResult], int]:
    """Both real-env evaluations of a PPO model (fixed goal with sampled actions, random goals
    with the deterministic policy); returns (results, counted real steps)."""
    fixed, random_goal = (
        StepCounter(gym.make(FIXED_GOAL_ENV_ID)),
        StepCounter(get_task(POLICY_TASK).make_env()),
    )
    model.set_random_seed(config.seed)  # reproducible sampled actions
    seed = config.seed + EVAL_SEED_OFFSET
    results = {
        "fixed_stochastic": evaluate(_StochasticPPO(model), fixed, config.eval_episodes, seed),
        "random_deterministic": evaluate(
            sb3_actor_to_policy(model), random_goal, config.eval_episodes, seed
        ),
    }
    return results, fixed.steps + random_goal.steps


def _fit_model(
    episodes: list[Episode], config: WorldModelConfig, out: Path, round_: int, progress: bool
) -> tuple[EnsembleDynamics, dict]:
    """A fresh ensemble on all ``episodes`` (shuffled by episode, so validation mixes rounds)."""
    rng = np.random.default_rng(config.seed + round_)
    data = Transitions.from_episodes([episodes[i] for i in rng.permutation(len(episodes))])
    torch.manual_seed(config.seed + round_)
    model = config.dynamics_model().to(config.device)
    train = DynamicsTrainConfig(
        epochs=config.epochs,
        batch_size=config.model_batch_size,
        lr=config.lr,
        val_fraction=config.val_fraction,
        patience=config.patience,
        bootstrap=config.members > 1,
    )
    history, _ = train_dynamics_run(
        model,
        data,
        get_task(POLICY_TASK),
        train,
        out,
        config.seed + round_,
        progress,
        metadata={
            "env_id": FIXED_GOAL_ENV_ID,
            "random_goals": config.random_goals,
            "round": round_,
        },
    )
    return model, {
        "transitions": len(data),
        "val_one_step_mse": history.val_one_step_mse[history.best_epoch],
    }


def _round_table(expert: dict, rounds: list[dict], out: Path) -> None:
    """Print the by-round table (rich) and write ``rounds.txt``, ``rounds.json``, ``rounds.png``."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title="world model by round (real FetchReach, 13-d goal+robot observation)")
    for col in (
        "round",
        "real steps (training)",
        "transitions",
        "model val MSE",
        "fixed goal: reward",
        "fixed goal: success",
        "random goals: success",
    ):
        table.add_column(col, justify="right")
    for r in [{"round": "expert", "transitions": "-", **expert}, *rounds]:
        fixed, rand = r["fixed_stochastic"], r["random_deterministic"]
        mse = f"{r['val_one_step_mse']:.3g}" if "val_one_step_mse" in r else "-"
        table.add_row(
            str(r["round"]),
            str(r["real_steps"]),
            str(r["transitions"]),
            mse,
            f"{fixed['mean']:.3f}",
            f"{fixed['success']:.2f}",
            f"{rand['success']:.2f}",
        )
    console = Console(record=True, width=130)
    console.print(table)
    (out / "rounds.txt").write_text(console.export_text())
    (out / "rounds.json").write_text(json.dumps({"expert": expert, "rounds": rounds}, indent=1))
    _plot(
        out / "rounds.png",
        [r["round"] for r in rounds],
        {
            "fixed goal, stochastic": [r["fixed_stochastic"]["success"] for r in rounds],
            "random goals, deterministic": [r["random_deterministic"]["success"] for r in rounds],
        },
        "aggregation round",
        "real-env success rate",
    )


def run_world_model(
    config: WorldModelConfig, out_dir: str | Path, progress: bool = True
) -> WorldModelResult:
    """Run the whole pipeline (module docstring) into ``out_dir``; see :class:`WorldModelResult`."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(asdict(config), indent=1))
    steps: dict[str, Any] = {"aggregation": [], "evaluation": 0}
    stages = tqdm(
        total=3 + 2 * config.rounds, desc="world model", unit="stage", disable=not progress
    )

    stages.set_postfix_str("expert PPO")
    ppo, expert_steps = _train_expert(config, out / "expert", progress)
    steps.update(expert_steps)
    expert_eval, used = _evaluate(ppo, config)
    steps["evaluation"] += used
    stages.update()

    stages.set_postfix_str("collection")
    datasets = [f"{config.dataset_prefix}-collect-v0"]
    episodes = _collect(
        ppo, _training_env(config), config.collect_steps, config.seed, datasets[0], progress
    )
    steps["collection"] = sum(len(ep) for ep in episodes)
    stages.update()

    rounds: list[dict] = []
    learner = None
    for k in range(config.rounds + 1):
        if k > 0:
            stages.set_postfix_str(f"round {k}: learner rollouts")
            datasets.append(f"{config.dataset_prefix}-round{k}-v0")
            new = _collect(
                learner,
                _training_env(config),
                config.aggregation_steps,
                config.seed + k * ROUND_SEED_OFFSET,
                datasets[-1],
                progress,
            )
            steps["aggregation"].append(sum(len(ep) for ep in new))
            episodes = episodes + new
            stages.update()
        stages.set_postfix_str(f"round {k}: model + PPO in model")
        dynamics, fit = _fit_model(episodes, config, out / f"round{k}", k, progress)
        venv = ModelVecEnv(
            ensemble_predict(dynamics),
            np.stack([ep.observations[0] for ep in episodes]),
            config.model_envs,
            device=config.device,
            seed=config.seed + k,
            terminate_on_success=not config.random_goals,
        )
        if learner is None or config.ppo_from_expert:
            learner = _ppo(venv, config)
            if config.ppo_from_expert:
                learner.policy.load_state_dict(ppo.policy.state_dict())
        else:
            learner.set_env(venv)
        learner.learn(config.model_ppo_steps, progress_bar=progress)
        evals, used = _evaluate(learner, config)
        steps["evaluation"] += used
        rounds.append(
            {
                "round": k,
                **fit,
                **{name: r.summary() for name, r in evals.items()},
                "real_steps": steps["expert"]
                + steps["expert_eval"]
                + steps["collection"]
                + sum(steps["aggregation"]),
            }
        )
        stages.update()
    stages.close()
    assert learner is not None  # round 0 always runs

    expert = {
        **{name: r.summary() for name, r in expert_eval.items()},
        "real_steps": steps["expert"] + steps["expert_eval"],
    }
    _round_table(expert, rounds, out)
    policy = sb3_actor_to_policy(learner)
    checkpoint = save_checkpoint(
        out / "policy.pt",
        policy,
        get_task(POLICY_TASK),
        metadata={
            "trainer": "world_model",
            "env_id": FIXED_GOAL_ENV_ID,
            "random_goals": config.random_goals,
            "rounds": config.rounds,
            "real_steps": steps,
            "seed": config.seed,
            "fixed_goal_success": rounds[-1]["fixed_stochastic"]["success"],
            "random_goal_success": rounds[-1]["random_deterministic"]["success"],
        },
    )
    learner.save(out / "policy_ppo.zip")
    result = WorldModelResult(checkpoint, expert, rounds, steps, datasets)
    (out / "result.json").write_text(json.dumps(result.as_dict(), indent=1))
    return result
