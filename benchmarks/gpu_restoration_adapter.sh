#!/usr/bin/env bash
# Restoration-adapter GPU figures in one command (runs unchanged through the device tool):
#   bash benchmarks/gpu_restoration_adapter.sh [--overwrite]
# 1. at full SD 2.1 UNet size (random weights, batch 2, 512 px = 64x64 latents, bf16): the UNet forward with adapters + LoRA r32
#    against the bare UNet, and the RSS-wrapped scheduler step against the bare step (DDIM, DPM-Solver++) as a share of a sampling
#    step: benchmarks/results/adapter_speed_sd21_cuda.json (goal: RSS < 2 %)
# 2. the `gpu` training preset on the micro conditional prior (goal: <= 10 min) and its a x w grid on 64 held-out faces:
#    adapter_train_gpu_cuda.json, adapter_grid_micro_cuda.json; weights in runs/adapter_gpu/weights.
# With $OUT set (device tool) it copies the results there, since only $OUT comes back.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
"$PY" benchmarks/bench_restoration_adapter.py speed --device cuda --config sd21 --batch 2 "$@"
"$PY" benchmarks/bench_restoration_adapter.py train --device cuda --preset gpu --run-dir runs/adapter_gpu --weights runs/adapter_gpu/weights "$@"
"$PY" benchmarks/bench_restoration_adapter.py grid --device cuda --weights runs/adapter_gpu/weights --faces 64 "$@"
if [ -n "${OUT:-}" ]; then cp benchmarks/results/adapter_*_cuda.json "$OUT/"; fi
