#!/usr/bin/env bash
# Past-one-machine GPU figures in one command (runs unchanged through the device tool; needs the distributed extra):
#   bash benchmarks/gpu_distributed.sh [--overwrite]
# 1. a sweep of 8 points on one GPU with 2 Ray workers against 1: benchmarks/results/distributed_sweep_gpu.json
# 2. with PLAIN set to a checkout of commit 09e6769 (the loop before accelerate): seconds per train_prior step (gpu preset) of
#    both loops, alternately, 3 rounds, and the overhead: distributed_overhead_gpu.json (goal: < 5 %); without PLAIN, this
#    checkout's step alone: distributed_train_gpu_accelerate.json
# With $OUT set (device tool) it copies the results there, since only $OUT comes back.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
"$PY" -c "import ray" 2>/dev/null || "$PY" -m pip install -q "ray>=2.9"
"$PY" benchmarks/bench_distributed.py sweep --gpu --points 8 "$@"
if [ -n "${PLAIN:-}" ]; then "$PY" benchmarks/bench_distributed.py overhead --plain "$PLAIN" --rounds 3 "$@"
else "$PY" benchmarks/bench_distributed.py train --label accelerate "$@"; fi
if [ -n "${OUT:-}" ]; then cp benchmarks/results/distributed_*_gpu*.json "$OUT/"; fi
