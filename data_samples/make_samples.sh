#!/usr/bin/env bash
# Remake data_samples/ from the shipped micro prior (seeded, so the same weights give the same files):
#   bash data_samples/make_samples.sh [--overwrite]
set -euo pipefail
cd "$(dirname "$0")"
RNB=${RNB:-restoration-nb}
"$RNB" sample -o prior_faces --prior micro-ddpm-faces64 --n 8 --num-steps 50 --seed 0 --device cpu --quiet "$@"
"$RNB" sample -o prior_faces_sd --prior micro-sd-faces64 --prompt "face" --guidance 2 --n 8 --num-steps 50 --seed 0 --device cpu --quiet "$@"
"$RNB" degrade prior_faces -o degraded --mode second-order --seed 0 --device cpu --quiet "$@"
"$RNB" degrade prior_faces -o degraded_classical --mode classical --sigma 1.5 --scale 4 --noise 10 --quality 50 --seed 0 --device cpu --quiet "$@"
