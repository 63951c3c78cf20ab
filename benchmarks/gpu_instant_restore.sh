#!/usr/bin/env bash
# InstantRestore GPU figures in one command (runs unchanged through the device tool):
#   bash benchmarks/gpu_instant_restore.sh [--overwrite]
# 1. the full SD-Turbo configuration (UNet + VAE, random weights, LoRA r32, fp16) at 512 px with 4 references: time per image
#    with and without the reference cache: benchmarks/results/instant_speed_sd-turbo_cuda.json (paper 471 ms; goal <= 60 ms cached)
# 2. the `gpu` training preset on the micro conditional prior and its references evaluation on the albums:
#    instant_train_gpu_cuda.json, instant_eval_micro_cuda.json; weights in runs/instant_gpu/weights.
# With $OUT set (device tool) it copies the results there, since only $OUT comes back.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
"$PY" benchmarks/bench_instant_restore.py speed --device cuda --config sd-turbo --refs 4 "$@"
"$PY" benchmarks/bench_instant_restore.py train --device cuda --preset gpu --run-dir runs/instant_gpu --weights runs/instant_gpu/weights "$@"
"$PY" benchmarks/bench_instant_restore.py eval --device cuda --weights runs/instant_gpu/weights "$@"
if [ -n "${OUT:-}" ]; then cp benchmarks/results/instant_*_cuda.json "$OUT/"; fi
