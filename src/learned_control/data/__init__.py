"""Data: Minari datasets, rosbag2 bags, transition sets."""
