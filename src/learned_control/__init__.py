"""learned_control: learn to act from data, then act in real time through ROS 2.

The core (everything outside :mod:`learned_control.ros`) imports no ROS package.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
