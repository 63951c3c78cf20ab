#!/usr/bin/env bash
# The spine's GPU figures in one command, on a CUDA machine (runs unchanged through the device tool):
#   bash benchmarks/gpu.sh [--overwrite]
# writes benchmarks/results/degrade_cuda.json and backbones_cuda.json, then runs every notebook with
# its `#| gpu` cells (nbdev-test --flags gpu). Set RESTORATION_NB_DATA to the folder holding
# utkface64.zip (without it the degradation benchmark uses random images and the notebooks fail).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
"$PY" benchmarks/bench_degrade.py --device cuda "$@"
"$PY" benchmarks/bench_backbones.py --device cuda "$@"
"$(dirname "$(command -v "$PY")")"/nbdev-test --flags gpu --do-print
