"""Custom environments and their scripted experts (no ROS)."""
