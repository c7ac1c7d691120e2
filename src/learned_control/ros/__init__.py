"""Thin rclpy nodes around the core. Only this package imports ROS."""
