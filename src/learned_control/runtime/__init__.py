"""Plain-Python run-time logic behind the ROS nodes and ``up`` (no ROS imports): testable without
a graph."""

from .bridge import BridgeConfig, CommandGate, SimSession, StepOutcome
from .stats import LatencyStats

__all__ = ["BridgeConfig", "CommandGate", "SimSession", "StepOutcome", "LatencyStats"]
