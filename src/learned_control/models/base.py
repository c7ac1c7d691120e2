"""What every saved model shares: a JSON-able config, a state dict, and a class registry."""

from __future__ import annotations

from typing import Any, ClassVar, TypeVar

from torch import nn

__all__ = ["SavableModel", "MODEL_CLASSES", "register_model"]

MODEL_CLASSES: dict[str, type[SavableModel]] = {}
"""Class name -> class, for rebuilding models from checkpoints (no unpickling)."""

M = TypeVar("M", bound=type["SavableModel"])


def register_model(cls: M) -> M:
    """Class decorator: make ``cls`` loadable from a checkpoint by its name."""
    MODEL_CLASSES[cls.__name__] = cls
    return cls


class SavableModel(nn.Module):
    """A network that the checkpoint format can save and rebuild.

    Subclasses keep their constructor arguments JSON-able and return them from
    :meth:`get_config`; the checkpoint stores that config beside the state dict and
    rebuilds with ``cls(**config)`` followed by ``load_state_dict``.
    """

    kind: ClassVar[str] = "model"
    """``"policy"`` or ``"dynamics"``: what the controller may do with it."""

    def get_config(self) -> dict[str, Any]:
        raise NotImplementedError

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> SavableModel:
        return cls(**config)

    @property
    def device(self):
        return next(self.buffers(), next(self.parameters())).device
