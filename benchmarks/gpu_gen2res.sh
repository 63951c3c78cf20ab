#!/usr/bin/env bash
# gen2res GPU figures in one command (runs unchanged through the device tool):
#   bash benchmarks/gpu_gen2res.sh [--overwrite]
# Times the published recipe (float32) and the fast one (bf16 weights, DDIM, LoRA) per image on the full 256 px DDPM model
# (ddpm-celebahq-256 config, random weights): benchmarks/results/gen2res_speed_ddpm-celebahq-256_cuda.json.
# With $OUT set (device tool) it copies the result there, since only $OUT comes back.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
"$PY" benchmarks/bench_gen2res.py speed --device cuda --config ddpm-celebahq-256 --runs 2 "$@"
if [ -n "${OUT:-}" ]; then cp benchmarks/results/gen2res_speed_ddpm-celebahq-256_cuda.json "$OUT/"; fi
