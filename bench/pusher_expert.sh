#!/usr/bin/env bash
# Train the Pusher-v5 SAC expert that bench/pusher_bc.py imitates (resumable).
#
# Usage: bench/pusher_expert.sh [RUN_DIR] [STEPS]
#   RUN_DIR  default /tmp/runs-pusher/expert; running again with the same RUN_DIR resumes from
#            its checkpoint.zip + replay.npz (saved every 10000 steps) up to STEPS in all.
#   STEPS    default 200000 env steps (~1 h at ~55 steps/s on one CPU thread).
# Progress: SB3's bar on the terminal; RUN_DIR/progress.csv (training return and the mean of 10
# seeded deterministic episodes per checkpoint) and RUN_DIR/learning_curve.png.
# Hyperparameters: SAC's defaults with gamma 0.98 (100-step episodes) and 10000 random steps
# before learning. The final line is the return over 100 seeded episodes (seeds 0..99).
set -euo pipefail
RUN_DIR=${1:-/tmp/runs-pusher/expert}
STEPS=${2:-200000}
exec learned-control expert --task Pusher-v5 --algo sac --steps "$STEPS" \
  --hyperparams '{"gamma": 0.98, "learning_starts": 10000}' \
  --checkpoint-every 10000 --run-dir "$RUN_DIR" --eval-episodes 100 \
  --seed 0 --device cpu --torch-threads 1
