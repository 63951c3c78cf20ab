#!/usr/bin/env bash
# FLIPNET GPU figures in one command (runs unchanged through the device tool):
#   bash benchmarks/gpu_flipnet.sh [--overwrite]
# 1. step time of the dual-stream batch (2 + 2 samples, 512 px = 64x64 latents, bf16) through the full SD 2.1-base UNet
#    (random weights) with BoostHub + LoRA r64 against the bare UNet: benchmarks/results/flipnet_speed_sd21_cuda.json (goal: <= 35 %)
# 2. the `gpu` training preset on the micro conditional prior (goal: <= 10 min) and its phi evaluation:
#    flipnet_train_gpu_cuda.json, flipnet_phi_micro_cuda.json; weights in runs/flipnet_gpu/weights.
# With $OUT set (device tool) it copies the results there, since only $OUT comes back.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
"$PY" benchmarks/bench_flipnet.py speed --device cuda --config sd21 --batch 2 "$@"
"$PY" benchmarks/bench_flipnet.py train --device cuda --preset gpu --run-dir runs/flipnet_gpu --weights runs/flipnet_gpu/weights "$@"
"$PY" benchmarks/bench_flipnet.py phi --device cuda --weights runs/flipnet_gpu/weights --faces 64 "$@"
if [ -n "${OUT:-}" ]; then cp benchmarks/results/flipnet_*_cuda.json "$OUT/"; fi
