"""The few narrow exceptions the package raises; each message names the culprit."""

__all__ = [
    "LearnedControlError",
    "ConfigError",
    "CheckpointError",
    "DatasetError",
    "BagError",
    "SpecError",
]


class LearnedControlError(Exception):
    """Base class of every error this package raises on purpose."""


class ConfigError(LearnedControlError, ValueError):
    """A setting is out of range or inconsistent with another."""


class CheckpointError(LearnedControlError):
    """A checkpoint is missing, truncated, foreign or does not fit the task."""


class DatasetError(LearnedControlError):
    """A dataset is unknown, empty or does not fit the task."""


class BagError(LearnedControlError):
    """A rosbag2 bag cannot be written or read as expected."""


class SpecError(LearnedControlError):
    """An observation or command spec does not fit the robot or the task."""
