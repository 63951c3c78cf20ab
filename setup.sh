#!/usr/bin/env bash
# Set up a virtual environment in .venv with restoration-nb and its test tools.
# torch: kept if the venv has one; on a machine with an NVIDIA GPU pip's default (CUDA) build;
# otherwise torch 2.13.0, which on our lab machines and CI is the CPU build on local disk.
# Override with TORCH_SPEC='torch==X.Y' (any torch>=2.4 works).
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
pip() { .venv/bin/python -m pip -q --disable-pip-version-check "$@"; }
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
  if [ -n "${TORCH_SPEC:-}" ]; then pip install "$TORCH_SPEC"
  elif command -v nvidia-smi >/dev/null 2>&1; then pip install "torch>=2.4"
  else pip install "torch==2.13.0"; fi
fi
pip install -e ".[faces,dev,distributed]"
echo "restoration-nb set up in .venv (torch $(.venv/bin/python -c 'import torch; print(torch.__version__)'))"
