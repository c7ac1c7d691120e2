"""Input checks shared by the nodes: what a vector or robot sample must be before anything is
computed from it, and the controller's count of rejected inputs (per input, per kind, in a row).

Kinds of rejection: ``size`` (wrong length), ``nonfinite`` (NaN or inf), ``overflow`` (finite but
beyond float32, which the actors compute in) and ``frame`` (a pose or goal in another frame than
the spec's); the controller also counts ``error`` (the actor raised on an input).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..specs import GoalSample, JointSample, PoseSample, SourceSpec
from ..specs.observation import JOINT_FIELDS

__all__ = ["FLOAT32_MAX", "KINDS", "check_vector", "check_sample", "InputGuard"]

FLOAT32_MAX = float(np.finfo(np.float32).max)
"""Largest magnitude an input may carry: beyond it the actors' float32 cast gives inf."""

KINDS = ("size", "nonfinite", "overflow", "frame", "error")
"""Rejection kinds, in the order diagnostics list them."""


def _values_problem(values: np.ndarray, what: str) -> tuple[str, str]:
    """``("", "")`` when every value is finite and within float32, else ``(kind, reason)``."""
    if not np.isfinite(values).all():
        return "nonfinite", f"{what} with NaN or inf rejected"
    if values.size and float(np.abs(values).max()) > FLOAT32_MAX:
        return "overflow", f"{what} beyond float32 (|value| > {FLOAT32_MAX:.4g}) rejected"
    return "", ""


def check_vector(values, size: int | None, what: str) -> tuple[np.ndarray | None, str, str]:
    """``values`` as a float64 vector ``(size,)`` if usable, else ``(None, kind, reason)``.

    Args:
        values: any sequence of numbers (a message's data).
        size: the length it must have; ``None``: any.
        what: the input's name for the reason (``"observation"``, ``"command"``).

    Returns:
        ``(vector, "", "")`` or ``(None, kind, reason)``, ``kind`` one of :data:`KINDS`.
    """
    try:
        vector = np.asarray(values, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        return None, "size", f"{what} that is not a vector of numbers rejected"
    if size is not None and vector.shape != (size,):
        return None, "size", f"{what} of size {vector.size} rejected: expected {size}"
    kind, reason = _values_problem(vector, what)
    return (None, kind, reason) if kind else (vector, "", "")


def check_sample(
    src: SourceSpec,
    sample: JointSample | PoseSample | GoalSample,
    read: Iterable[tuple[str, str]] = (),
    frame: str | None = None,
) -> tuple[str, str]:
    """Whether a robot sample may be stored: ``("", "")`` or ``(kind, reason)``.

    A JointState field must be empty or hold one value per name, and the values the features
    read (``read``: ``(joint, field)`` pairs, :attr:`ObservationSpec.joint_fields`) must be
    finite and within float32 (other joints may carry anything: a passive joint's NaN effort
    stops nothing). A pose must be in ``src.frame`` with every value usable; so must a goal,
    whose frame (``header.frame_id``) is given as ``frame``.
    """
    where = src.topic or src.name
    if isinstance(sample, JointSample):
        n = len(sample.names)
        for fld in JOINT_FIELDS:
            count = len(getattr(sample, fld))
            if count not in (0, n):
                return "size", f"{where}: {fld} has {count} values for {n} names; rejected"
        index = {name: i for i, name in enumerate(sample.names)}
        picked = [
            getattr(sample, fld)[index[joint]]
            for joint, fld in read
            if joint in index and len(getattr(sample, fld)) == n
        ]
        return _values_problem(np.asarray(picked, dtype=np.float64), f"{where}: joint state")
    got = sample.frame if isinstance(sample, PoseSample) else frame
    if got is not None and got != src.frame:
        return "frame", f"{where}: frame {got!r} rejected (the spec expects {src.frame!r})"
    parts: list[Sequence[float]]
    if isinstance(sample, PoseSample):
        parts = [sample.position, sample.orientation]
        parts += [v for v in (sample.linear_velocity, sample.angular_velocity) if v is not None]
    else:
        parts = [sample.value]
    values = np.concatenate([np.asarray(p, dtype=np.float64).reshape(-1) for p in parts])
    return _values_problem(values, f"{where}: {src.type}")


@dataclass
class InputGuard:
    """The controller's rejected inputs: counted per input and kind, and in a row (no command
    published between them).

    Attributes:
        limit: rejections in a row at which :meth:`reject` says to stop (0: never).
        by_input: rejections per input (a topic name, or ``action`` for the actor's output).
        by_kind: rejections per kind (:data:`KINDS`).
        in_a_row: rejections since the last command.
        last_reason: the newest rejection's reason.
    """

    limit: int = 10
    by_input: dict[str, int] = field(default_factory=dict)
    by_kind: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    in_a_row: int = 0
    last_reason: str = ""

    def reject(self, source: str, kind: str, reason: str) -> bool:
        """Count one rejection; True when ``limit`` rejections in a row are reached."""
        self.by_input[source] = self.by_input.get(source, 0) + 1
        self.by_kind[kind] += 1
        self.in_a_row += 1
        self.last_reason = reason
        return 0 < self.limit <= self.in_a_row

    def commanded(self) -> None:
        """A command went out: the run of rejections is over."""
        self.in_a_row = 0

    @property
    def rejected_inputs(self) -> int:
        """Rejected inputs (every input but the actor's actions)."""
        return sum(n for name, n in self.by_input.items() if name != "action")

    @property
    def rejected_actions(self) -> int:
        """Actions the actor returned (or raised on) that were not commanded."""
        return self.by_input.get("action", 0)

    def values(self) -> dict[str, int]:
        """Diagnostics values: ``rejected_in_a_row``, ``rejected_<kind>``, ``rejected/<input>``."""
        return {
            "rejected_in_a_row": self.in_a_row,
            **{f"rejected_{kind}": n for kind, n in self.by_kind.items()},
            **{f"rejected/{name}": n for name, n in sorted(self.by_input.items())},
        }
