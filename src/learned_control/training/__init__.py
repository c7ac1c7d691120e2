"""Trainers: behavior cloning, DAgger, dynamics fitting, SB3 experts."""
