"""DAgger: behavior cloning, then iterations of learner rollouts relabelled by an expert.

Definitions used throughout:

* Iteration 0 is plain BC on ``demo_episodes`` expert episodes.
* Iteration ``i >= 1`` rolls out the current learner for ``rollout_episodes`` episodes (with
  probability ``beta_i = beta * beta_decay**(i-1)`` per step the expert's action is applied
  instead), labels every visited observation with the expert's action, adds these samples to
  the aggregate and retrains a fresh policy from scratch on the whole aggregate (retraining from
  scratch keeps every iteration's result independent of the optimizer's history).
* The policy DAgger returns is, as in Ross et al. (2011), the best of iterations ``0..N`` on
  validation: ``validation_episodes`` learner-only episodes per policy with reset seeds
  ``seed+30000+k`` (the same for every iteration, disjoint from the evaluation seeds); with
  ``validation_episodes = 0`` it is the last iterate. Its evaluation is the reported result.
* "Plain BC at equal expert data" is BC trained on the first ``N`` samples of expert-driven
  episodes, where ``N`` is the number of expert-labelled samples DAgger used in total (demos
  plus all relabelled samples).
* ``% of expert`` is ``100 * mean / expert_mean``; the normalized score is
  ``100 * (mean - random_mean) / (expert_mean - random_mean)`` with the random policy measured
  in the same run (meaningful where returns can be negative).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..actors import Actor, RandomActor
from ..errors import ConfigError
from ..evaluation import EvalResult, evaluate, run_episode
from ..models.policies import Policy
from ..tasks import Task
from ..utils import seed_everything
from .bc import BCConfig, mlp_policy_for, train_bc

__all__ = [
    "DAggerConfig",
    "DAggerRow",
    "DAggerResult",
    "run_dagger",
    "collect_labelled",
    "dagger_table",
    "plot_dagger",
]


@dataclass
class DAggerConfig:
    """DAgger settings.

    Attributes:
        iterations: DAgger iterations after the initial BC (default 5, >= 0).
        demo_episodes: expert episodes for the initial BC (default 2, >= 1).
        rollout_episodes: learner episodes relabelled per iteration (default 2, >= 1).
        validation_episodes: learner-only episodes per policy that choose the returned one
            (default 10, >= 0; 0: the last iterate; 5 proved too few on Walker2d).
        eval_episodes: seeded evaluation episodes per policy (default 10, >= 1).
        beta: probability of applying the expert's action at iteration 1 (default 0.0, in [0, 1]).
        beta_decay: factor on ``beta`` per further iteration (default 0.5, in [0, 1]).
        hid_size: width of the policy's hidden layers (default 64, >= 1).
        num_layers: hidden layers of the policy (default 2, >= 1).
        activation: hidden activation of the policy (default "relu").
        bc: BC hyperparameters for every (re)training (defaults of :class:`BCConfig`).
        seed: seeds demos (``seed+10000+k``), rollouts (``seed+20000+k``), evaluation
            (``seed``, ``seed+1``, ...) and training (default 0).
    """

    iterations: int = 5
    demo_episodes: int = 2
    rollout_episodes: int = 2
    validation_episodes: int = 10
    eval_episodes: int = 10
    beta: float = 0.0
    beta_decay: float = 0.5
    hid_size: int = 64
    num_layers: int = 2
    activation: str = "relu"
    bc: BCConfig = field(default_factory=BCConfig)
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("iterations", "validation_episodes"):
            if getattr(self, name) < 0:
                raise ConfigError(f"DAggerConfig.{name}={getattr(self, name)!r}; expected >= 0")
        for name in (
            "demo_episodes",
            "rollout_episodes",
            "eval_episodes",
            "hid_size",
            "num_layers",
        ):
            if getattr(self, name) < 1:
                raise ConfigError(
                    f"DAggerConfig.{name}={getattr(self, name)!r}; expected an integer >= 1"
                )
        for name in ("beta", "beta_decay"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(
                    f"DAggerConfig.{name}={getattr(self, name)!r}; expected a value in [0, 1]"
                )


@dataclass
class DAggerRow:
    """One evaluated policy: ``name``, expert-labelled samples it was trained on, returns, and
    its mean validation return (NaN where not validated)."""

    name: str
    data_size: int
    result: EvalResult
    validation: float = float("nan")


@dataclass
class DAggerResult:
    """Everything a DAgger run measured (returns in env reward units).

    Attributes:
        expert: the expert's evaluation.
        random: a uniform random policy's evaluation.
        bc_equal: plain BC trained on as many expert samples as DAgger used in total.
        iterations: iteration 0 (initial BC) .. ``iterations``.
        policy: the policy DAgger returns (best on validation, see the module docstring).
        chosen: the index in ``iterations`` of ``policy``.
    """

    expert: EvalResult
    random: EvalResult
    bc_equal: DAggerRow
    iterations: list[DAggerRow]
    policy: Policy
    chosen: int

    @property
    def final(self) -> DAggerRow:
        """The row of the returned policy."""
        return self.iterations[self.chosen]

    def percent_of_expert(self, mean: float) -> float:
        return 100.0 * mean / self.expert.mean if self.expert.mean != 0 else float("nan")

    def normalized(self, mean: float) -> float:
        gap = self.expert.mean - self.random.mean
        return 100.0 * (mean - self.random.mean) / gap if gap != 0 else float("nan")

    def summary(self) -> dict:
        """JSON-able table rows."""
        rows = [
            DAggerRow("random", 0, self.random),
            DAggerRow("expert", 0, self.expert),
            self.bc_equal,
            *self.iterations,
        ]
        return {
            "chosen": self.final.name,
            "rows": [
                {
                    "name": r.name,
                    "data_size": r.data_size,
                    "mean": r.result.mean,
                    "std": r.result.std,
                    "percent_of_expert": self.percent_of_expert(r.result.mean),
                    "normalized": self.normalized(r.result.mean),
                    "validation": r.validation,
                }
                for r in rows
            ],
        }


class _Mixed:
    """Applies the expert's action with probability ``beta``, else the learner's."""

    def __init__(self, learner: Actor, expert: Actor, beta: float, rng: np.random.Generator):
        self.learner, self.expert, self.beta, self.rng = learner, expert, beta, rng

    def reset(self) -> None:
        for actor in (self.learner, self.expert):
            if hasattr(actor, "reset"):
                actor.reset()

    def act(self, obs: np.ndarray) -> np.ndarray:
        return self.expert.act(obs) if self.rng.random() < self.beta else self.learner.act(obs)


def collect_labelled(
    driver: Actor, expert: Actor, env, seeds: list[int]
) -> tuple[np.ndarray, np.ndarray]:
    """Roll out ``driver`` from each reset seed and label each visited observation by ``expert``.

    Returns:
        ``(obs (N, obs_dim), expert_actions (N, act_dim))``.
    """
    obs_list: list[np.ndarray] = []
    act_list: list[np.ndarray] = []

    class _Labeller:
        def reset(self) -> None:
            for actor in {id(driver): driver, id(expert): expert}.values():
                if hasattr(actor, "reset"):
                    actor.reset()

        def act(self, obs: np.ndarray) -> np.ndarray:
            label = np.asarray(expert.act(obs), dtype=np.float64)
            obs_list.append(np.asarray(obs, dtype=np.float64))
            act_list.append(label)
            return label if driver is expert else driver.act(obs)

    for seed in seeds:
        run_episode(_Labeller(), env, seed)
    return np.stack(obs_list), np.stack(act_list)


def run_dagger(
    task: Task,
    expert: Actor,
    config: DAggerConfig | None = None,
    device: str = "cpu",
    progress: bool = True,
    policy_factory: Callable[[], Policy] | None = None,
) -> DAggerResult:
    """DAgger on ``task`` with ``expert`` (any actor: SB3 policy, planner, scripted controller).

    Args:
        task: the task; its env is created here.
        expert: labels every visited observation; called once per step, in episode order.
        config: settings (defaults of :class:`DAggerConfig` when ``None``).
        device: torch device for training.
        progress: show tqdm bars.
        policy_factory: a fresh untrained policy per (re)training; an MLP of
            ``hid_size x num_layers`` sized for the task when ``None``.
    """
    config = config or DAggerConfig()
    seed_everything(config.seed)  # the policies' initial weights: a run depends on its seed only
    factory = policy_factory or (
        lambda: mlp_policy_for(task, config.hid_size, config.num_layers, config.activation)
    )
    env = task.make_env()

    def fit(obs: np.ndarray, act: np.ndarray) -> Policy:
        policy = factory()
        train_bc(policy, obs, act, config.bc, device, progress=False)
        return policy.cpu().eval()

    def score(name: str, size: int, policy: Policy) -> DAggerRow:
        validation = (
            evaluate(policy, env, config.validation_episodes, config.seed + 30000).mean
            if config.validation_episodes
            else float("nan")
        )
        return DAggerRow(
            name, size, evaluate(policy, env, config.eval_episodes, config.seed), validation
        )

    steps = tqdm(total=config.iterations + 4, desc=f"dagger {task.name}", disable=not progress)
    expert_eval = evaluate(expert, env, config.eval_episodes, config.seed)
    random_eval = evaluate(
        RandomActor(task.action_low, task.action_high, config.seed),
        env,
        config.eval_episodes,
        config.seed,
    )
    steps.update(2)
    demo_seeds = [config.seed + 10000 + k for k in range(config.demo_episodes)]
    obs, act = collect_labelled(expert, expert, env, demo_seeds)
    policy = fit(obs, act)
    policies, rows = [policy], [score("BC (iter 0)", len(obs), policy)]
    steps.update(1)
    rng = np.random.default_rng(config.seed)
    for it in range(1, config.iterations + 1):
        beta = config.beta * config.beta_decay ** (it - 1)
        seeds = [
            config.seed + 20000 + (it - 1) * config.rollout_episodes + k
            for k in range(config.rollout_episodes)
        ]
        new_obs, new_act = collect_labelled(_Mixed(policy, expert, beta, rng), expert, env, seeds)
        obs, act = np.concatenate([obs, new_obs]), np.concatenate([act, new_act])
        policy = fit(obs, act)
        policies.append(policy)
        rows.append(score(f"DAgger iter {it}", len(obs), policy))
        steps.update(1)
    # Plain BC at equal expert data: expert-driven episodes until as many samples as DAgger's.
    bc_obs, bc_act, k = obs[:0], act[:0], 0
    while len(bc_obs) < len(obs):
        more_obs, more_act = collect_labelled(expert, expert, env, [config.seed + 10000 + k])
        bc_obs, bc_act, k = (
            np.concatenate([bc_obs, more_obs]),
            np.concatenate([bc_act, more_act]),
            k + 1,
        )
    bc_row = score("BC (equal data)", len(obs), fit(bc_obs[: len(obs)], bc_act[: len(obs)]))
    steps.update(1)
    steps.close()
    env.close()
    chosen = (
        int(np.argmax([r.validation for r in rows]))
        if config.validation_episodes
        else len(rows) - 1
    )
    return DAggerResult(expert_eval, random_eval, bc_row, rows, policies[chosen], chosen)


def dagger_table(result: DAggerResult, title: str = "DAgger"):
    """A :class:`rich.table.Table`, one row per policy: expert samples, validation mean, mean,
    std, % of expert and normalized score (expert mean in the title); the returned policy's row
    is marked."""
    from rich.table import Table

    table = Table(title=f"{title} (expert mean {result.expert.mean:.1f})")
    for col in (
        "policy",
        "expert samples",
        "validation",
        "mean",
        "std",
        "% of expert",
        "normalized",
    ):
        table.add_column(col, justify="left" if col == "policy" else "right")
    summary = result.summary()
    for row in summary["rows"]:
        name = row["name"] + (" (returned)" if row["name"] == summary["chosen"] else "")
        table.add_row(
            name,
            str(row["data_size"]),
            f"{row['validation']:.1f}",
            f"{row['mean']:.1f}",
            f"{row['std']:.1f}",
            f"{row['percent_of_expert']:.1f}",
            f"{row['normalized']:.1f}",
        )
    return table


def plot_dagger(result: DAggerResult, path: str | os.PathLike, title: str = "DAgger") -> Path:
    """PNG of mean return (+- std) by iteration, with expert, random and plain BC baselines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    its = np.arange(len(result.iterations))
    means = np.array([r.result.mean for r in result.iterations])
    stds = np.array([r.result.std for r in result.iterations])
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(its, means, "o-", label="DAgger")
    ax.fill_between(its, means - stds, means + stds, alpha=0.2)
    ax.plot(result.chosen, means[result.chosen], "*", ms=14, label="returned (best on validation)")
    ax.axhline(result.expert.mean, color="g", ls="--", label="expert")
    ax.axhline(
        result.bc_equal.result.mean,
        color="r",
        ls=":",
        label=f"BC, equal data ({result.bc_equal.data_size} samples)",
    )
    ax.axhline(result.random.mean, color="gray", ls="-.", label="random")
    ax.set_xlabel("iteration (0 = BC on demos)")
    ax.set_ylabel("return")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
