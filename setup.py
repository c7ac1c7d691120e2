"""learned_control: ament_python package that also installs with plain pip."""
from glob import glob

from setuptools import find_packages, setup

PACKAGE = "learned_control"

setup(
    name=PACKAGE,
    version="0.1.0",
    description="Learning-based control for ROS 2: behavior cloning, learned dynamics and CEM-MPC.",
    package_dir={"": "src"},
    packages=find_packages("src"),
    package_data={PACKAGE: ["py.typed", "specs/*.yaml", "config/*.yaml"]},
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.launch.py")),
        # the parameter files are package data; a copy in share/ for ROS tools that look there
        (f"share/{PACKAGE}/config", glob(f"src/{PACKAGE}/config/*.yaml")),
    ],
    python_requires=">=3.10",
    # torch is left unpinned here; the Makefile installs the known-good CPU build first
    # (see constraints.txt) so that pip never resolves a multi-GB CUDA build by accident.
    install_requires=[
        "numpy>=1.26",
        "torch>=2.2",
        "gymnasium[mujoco]>=1.0",
        "mujoco>=3.1",
        "gymnasium-robotics>=1.3",
        "minari[hdf5]>=0.5",
        "stable-baselines3>=2.3",
        "sb3-contrib>=2.3",
        "rosbags>=0.10",
        "diffusers>=0.30",
        "pyyaml",
        "tqdm",
        "rich",
        "matplotlib",
        "tensorboard",
    ],
    extras_require={
        # ROS 2 Jazzy from pip wheels, for machines without a system ROS install.
        # Never a hard requirement: it would shadow a system rclpy.
        "ros": [
            "ros-jazzy-rclpy[fastrtps]",
            "ros-jazzy-std-msgs",
            "ros-jazzy-std-srvs",
            "ros-jazzy-sensor-msgs",
            "ros-jazzy-geometry-msgs",
            "ros-jazzy-nav-msgs",
            "ros-jazzy-trajectory-msgs",
            "ros-jazzy-diagnostic-msgs",
            "ros-jazzy-rosgraph-msgs",
            "ros-jazzy-lifecycle-msgs",
            "ros-jazzy-builtin-interfaces",
        ],
        "test": ["pytest>=8", "pytest-timeout"],
        "lint": ["ruff", "mypy", "types-PyYAML"],
    },
    entry_points={
        "console_scripts": [
            "learned-control = learned_control.cli:main",
            "sim_bridge = learned_control.ros.sim_bridge:main",
            "controller = learned_control.ros.controller:main",
            "recorder = learned_control.ros.recorder:main",
            "learner = learned_control.ros.learner:main",
        ],
    },
    zip_safe=False,  # the parameter files are handed to ROS nodes by path
)
