"""Networks, normalizers, policies and dynamics models (no ROS)."""

from .base import MODEL_CLASSES, SavableModel, register_model
from .dynamics import EnsembleDynamics, EnsembleLinear
from .mlp import MLP, Normalizer
from .policies import MLPPolicy, Policy
from .policy_classes import POLICY_CLASSES, make_policy

__all__ = [
    "POLICY_CLASSES",
    "make_policy",
    "MLP",
    "Normalizer",
    "SavableModel",
    "MODEL_CLASSES",
    "register_model",
    "Policy",
    "MLPPolicy",
    "EnsembleDynamics",
    "EnsembleLinear",
]
