"""Planning: CEM-MPC and per-task reward/termination functions in torch."""
