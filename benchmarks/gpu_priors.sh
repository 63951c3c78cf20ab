#!/usr/bin/env bash
# Retrain both micro priors on a CUDA GPU (preset `gpu`: 12,000 steps of 128 faces, v-prediction, bf16, at most 5 minutes each),
# save them into the package, and write their evidence; one command, unchanged through the device tool:
#   RESTORATION_NB_DATA=<folder holding utkface64.zip> bash benchmarks/gpu_priors.sh
# A killed run is resumed by running the same command again (checkpoints in runs/<name>/).
# Writes restoration_nb/weights/<name>/ and benchmarks/results/priors_cuda.json + prior_samples_*_cuda.png;
# with $OUT set (device tool) it also copies them there, since only $OUT comes back.
# The CPU timing of the new weights is then measured here, on the 2-core CPU machine:
#   python benchmarks/prior_report.py --device cpu --overwrite
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
RNB="$(dirname "$(command -v "$PY")")/restoration-nb"
for name in micro-ddpm-faces64 micro-sd-faces64; do
  "$RNB" train-prior "$name" --preset gpu --device cuda --out "runs/$name" --quiet
  "$RNB" save-prior "runs/$name" --to "restoration_nb/weights/$name" --overwrite
done
"$PY" benchmarks/prior_report.py --device cuda --overwrite
if [ -n "${OUT:-}" ]; then
  for name in micro-ddpm-faces64 micro-sd-faces64; do
    tar -C restoration_nb/weights -cf "$OUT/$name.tar" "$name"
  done
  cp benchmarks/results/priors_cuda.json benchmarks/results/prior_samples_*_cuda.png "$OUT/"
fi
