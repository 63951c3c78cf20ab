#!/usr/bin/env bash
# Past-one-machine GPU figures in one command (runs unchanged through the device tool; needs the distributed extra):
#   bash benchmarks/gpu_distributed.sh [--overwrite]
# 1. a sweep of 8 points on one GPU with 2 Ray workers against 1: benchmarks/results/distributed_sweep_gpu.json
# 2. seconds per train_prior step (gpu preset) under accelerate: distributed_train_gpu_accelerate.json; with PLAIN set to a
#    checkout of commit 09e6769 (the loop before accelerate), the same for it: distributed_train_gpu_plain.json (goal: < 5 %)
# With $OUT set (device tool) it copies the results there, since only $OUT comes back.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
"$PY" -c "import ray" 2>/dev/null || "$PY" -m pip install -q "ray>=2.9"
"$PY" benchmarks/bench_distributed.py sweep --gpu --points 8 "$@"
"$PY" benchmarks/bench_distributed.py train --label accelerate "$@"
if [ -n "${PLAIN:-}" ]; then PYTHONPATH="$PLAIN" "$PY" benchmarks/bench_distributed.py train --label plain "$@"; fi
if [ -n "${OUT:-}" ]; then cp benchmarks/results/distributed_*_gpu*.json "$OUT/"; fi
