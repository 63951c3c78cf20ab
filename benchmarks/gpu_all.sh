#!/usr/bin/env bash
# Every GPU figure of the project in one call of at most 10 minutes on the lent GPU machine (an H100 or H200,
# no network), once `bash benchmarks/gpu_wheels.sh` has filled the carried folder here:
#   bash benchmarks/gpu_all.sh [--dry-run] [--carry DIR] [--results DIR] [--prior-minutes M]
# It installs DIR/wheels offline and reads the faces from DIR/data (default DIR: .gpu_carry). Then each step
# runs under its own time cap, and all of them within 570 s; each writes its results file before the next
# starts, and one that fails or runs out of time is recorded and the next one runs:
#   wheels      pip install --no-index of DIR/wheels (diffusers, fastcore, pytorch-msssim)
#   priors      both micro priors trained with the `gpu` preset cut to M minutes each (default 1.25; the
#               preset's own 5 would not fit), saved, and timed (one face, 50 DDIM steps):
#               priors_timing_cuda.json. Their detection and Frechet distance need dlib, which that machine
#               lacks: score the returned priors on the CPU afterwards (README)
#   instant     InstantRestore at SD-Turbo size, 512 px, 4 references, with and without the reference cache:
#               instant_speed_sd-turbo_cuda.json (paper 471 ms; goal <= 60 ms with the cache)
#   flipnet     BoostHub's overhead on the SD 2.1-base UNet: flipnet_speed_sd21_cuda.json
#   adapter     the adapters' forward overhead and RSS's share of a sampling step on the SD 2.1 UNet:
#               adapter_speed_sd21_cuda.json
#   gen2res     the fast recipe per image on the 256 px DDPM config: gen2res_speed_ddpm-celebahq-256_cuda.json
#               (the published recipe takes minutes by itself: benchmarks/gpu_gen2res.sh)
#   cells       the notebooks' `#| gpu` cells (06_priors's is the priors step): gpu_cells_cuda.json
#   accelerate  train_prior's step under accelerate against the loop before it (DIR/plain):
#               distributed_overhead_gpu.json
# Results go to benchmarks/results (or --results DIR), each with the commands that made it; the summary
# gpu_all_cuda.json holds the device, torch, and each step's commands, dtype, cap, seconds and status. With
# $OUT set (the device tool) the summary, a tar of the results and logs, and each trained prior are copied
# there after every step. Exits 1 if a step failed, 2 on a bad option or a missing wheel folder.
# --dry-run: every step on this CPU at tiny sizes, into a new temporary folder (never benchmarks/results);
# the wheels are only resolved for CPython 3.12 manylinux (pip --dry-run) and the GPU cells only checked.
set -euo pipefail
CALLER=$PWD
cd "$(dirname "$0")/.."
ROOT=$PWD
SELF=$ROOT/benchmarks/gpu_all.sh
STEPS="wheels priors instant flipnet adapter gen2res cells accelerate"
die() { echo "gpu_all.sh: $*" >&2; exit 2; }

# ---- one step, run by the main script below as `timeout CAP bash gpu_all.sh --step NAME` ----
run() {  # log the exact command (an argument quoted where the shell needs it), then run it
  local a line=''
  for a in "$@"; do
    [[ $a =~ ^[A-Za-z0-9_./=:,+@%-]+$ ]] || a="'${a//\'/\'\\\'\'}'"
    line="${line:+$line }$a"
  done
  echo "$line" >>"$GA_WORK/commands/$GA_STEP"
  "$@"
}
rnb() { run "$GA_PY" -c 'import sys; from restoration_nb.cli import main; sys.exit(main())' "$@"; }
bench() { run "$GA_PY" "benchmarks/$1" "${@:2}" --overwrite; }
dry() { [ "$GA_DRY" = 1 ]; }

step_wheels() {  # only the wheel folder: no pip configuration, no other links
  local w=$GA_CARRY/wheels
  local pip=(env -u PIP_FIND_LINKS PIP_CONFIG_FILE=/dev/null "$GA_PY" -m pip install -q
    --disable-pip-version-check --no-index --no-deps --find-links "$w" -r "$w/requirements.txt")
  if dry; then
    run "${pip[@]}" --dry-run --only-binary=:all: --python-version 3.12 --implementation cp \
      --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
      --target "$GA_WORK/site"
  else run "${pip[@]}" --no-cache-dir; fi
}
step_priors() {
  local name size=(--preset gpu --max-minutes "$GA_PRIOR_MINUTES")
  dry && size=(--preset test --faces 16 --channels 8,16,16,16)
  for name in micro-ddpm-faces64 micro-sd-faces64; do
    rnb train-prior "$name" "${size[@]}" --device "$GA_DEV" --out "$GA_WORK/runs/$name" --quiet
    rnb save-prior "$GA_WORK/runs/$name" --to "$GA_WORK/priors/$name"
  done
  bench prior_report.py --timing-only --device "$GA_DEV" --priors "$GA_WORK"/priors/micro-*-faces64
}
step_instant() {
  if dry; then bench bench_instant_restore.py speed --device cpu --config micro --refs 4 --warmup 1 --runs 2
  else bench bench_instant_restore.py speed --device cuda --config sd-turbo --refs 4; fi
}
step_flipnet() {
  if dry; then bench bench_flipnet.py speed --device cpu --config micro --batch 1 --warmup 1 --runs 1
  else bench bench_flipnet.py speed --device cuda --config sd21 --batch 2; fi
}
step_adapter() {
  if dry; then
    bench bench_restoration_adapter.py speed --device cpu --config micro --batch 1 --warmup 1 --runs 1 \
      --sampling-steps 3
  else bench bench_restoration_adapter.py speed --device cuda --config sd21 --batch 2; fi
}
step_gen2res() {
  if dry; then
    bench bench_gen2res.py speed --device cpu --config micro --recipes fast --runs 1 --finetune-steps 3
  else bench bench_gen2res.py speed --device cuda --config ddpm-celebahq-256 --recipes fast --runs 1; fi
}
step_cells() {  # each notebook stops in time for the file to be written within the step's cap
  if dry; then bench gpu_cells.py --check --skip 06_priors --jobs 2 --timeout $((GA_CAP - 20))
  else bench gpu_cells.py --skip 06_priors --jobs 3 --timeout $((GA_CAP - 20)); fi
}
step_accelerate() {  # without the old loop in DIR/plain, this checkout's step alone
  local steps=20 rounds=2 settings=$GA_WORK/settings.ini
  dry && steps=2 rounds=1
  echo "[restoration_nb]" >"$settings"  # built-in defaults: the old loop knows none of today's new settings
  if [ -d "$GA_CARRY/plain/restoration_nb" ]; then
    run env RESTORATION_NB_SETTINGS="$settings" "$GA_PY" benchmarks/bench_distributed.py overhead \
      --plain "$GA_CARRY/plain" --rounds "$rounds" --steps "$steps" --overwrite
  else
    run env RESTORATION_NB_SETTINGS="$settings" "$GA_PY" benchmarks/bench_distributed.py train \
      --label accelerate --steps "$steps" --overwrite
  fi
}

if [ "${1:-}" = --step ] && [ -n "${GA_WORK:-}" ]; then  # only as the main script below calls it
  GA_STEP=${2:?}
  "step_$GA_STEP"
  exit
fi

# ---- the options ----
ARGS="$*" ABSENT='' DRY=0 CARRY=$ROOT/.gpu_carry RESULTS_DIR='' PRIOR_MINUTES=1.25
while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) DRY=1; shift ;;
    --carry|--results|--prior-minutes)
      [ $# -ge 2 ] && [ -n "$2" ] || die "$1 needs a value"
      case "$1" in
        --carry) CARRY=$2 ;;
        --results) RESULTS_DIR=$2 ;;
        *) PRIOR_MINUTES=$2 ;;
      esac
      shift 2 ;;
    *) die "unknown option '$1'; expected --dry-run, --carry DIR, --results DIR or --prior-minutes M" ;;
  esac
done
[[ $PRIOR_MINUTES =~ ^[0-9]*\.?[0-9]+$ ]] && awk "BEGIN { exit !($PRIOR_MINUTES > 0) }" ||
  die "--prior-minutes '$PRIOR_MINUTES'; expected a number of minutes > 0"
inside() { case "$1" in /*) echo "$1" ;; *) echo "$CALLER/$1" ;; esac; }  # relative to where it was called
CARRY=$(inside "$CARRY")
[ -f "$CARRY/wheels/requirements.txt" ] ||
  die "no wheel folder '$CARRY/wheels' (with requirements.txt); make it with: bash benchmarks/gpu_wheels.sh"
PY=${PYTHON:-$ROOT/.venv/bin/python}
[ -x "$PY" ] || PY=$(command -v python3)
if [ -f "$CARRY/data/utkface64.zip" ]; then export RESTORATION_NB_DATA=$CARRY/data
else  # the lab's data, as a path that needs no settings.ini (the accelerate step runs without it)
  RESTORATION_NB_DATA=$("$PY" -c 'from restoration_nb.core import face_data_dir; print(face_data_dir())' \
    2>/dev/null) ||
    die "no face data: neither '$CARRY/data/utkface64.zip' nor the lab's data_dir (settings.ini)"
  export RESTORATION_NB_DATA
fi
WORK=$(mktemp -d "${TMPDIR:-/tmp}/gpu_all.XXXXXX")
mkdir -p "$WORK/commands" "$WORK/logs"
if [ "$DRY" = 1 ]; then
  DEV=cpu BUDGET=1500 CAPS=(120 300 300 300 300 300 400 300)
  RESULTS_DIR=${RESULTS_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/gpu_all_results.XXXXXX")}
  trap 'rm -rf "$WORK"' EXIT
  export OMP_NUM_THREADS=1  # tiny models on a shared 2-core CPU: threads that spin-wait make them 100x slower
  ABSENT=$WORK/absent  # what the GPU machine lacks and no wheel brings cannot be imported here either
  for m in dlib face_recognition_models ipywidgets IPython ipykernel jupyter_client papermill nbformat \
    nbclient nbdev execnb ray matplotlib_inline; do
    mkdir -p "$ABSENT/$m"
    echo "raise ImportError('no $m: the GPU machine has none')" >"$ABSENT/$m/__init__.py"
  done
else
  # priors: two trainings of M minutes, each with ~30 s to start, load the faces and save; then the timing
  priors=$(awk "BEGIN { print int(2 * ($PRIOR_MINUTES * 60 + 30) + 40) }")
  DEV=cuda BUDGET=570 CAPS=(60 "$priors" 75 75 60 90 130 90)
  RESULTS_DIR=${RESULTS_DIR:-$ROOT/benchmarks/results}
fi
RESULTS_DIR=$(inside "$RESULTS_DIR")
mkdir -p "$RESULTS_DIR"
RESULTS_DIR=$(cd "$RESULTS_DIR" && pwd)
export PYTHONPATH=${ABSENT:+$ABSENT:}$ROOT${PYTHONPATH:+:$PYTHONPATH}
export RESTORATION_NB_RESULTS=$RESULTS_DIR MPLBACKEND=Agg
export GA_DRY=$DRY GA_CARRY=$CARRY GA_PY=$PY GA_DEV=$DEV GA_WORK=$WORK GA_PRIOR_MINUTES=$PRIOR_MINUTES
SUMMARY=$RESULTS_DIR/gpu_all_$DEV.json
dtype_of() {
  case "$1" in
    priors) echo "training: bf16 mixed precision on a GPU (fp32 on the CPU); timing: float32" ;;
    instant) echo "float16 on cuda, float32 on the CPU" ;;
    flipnet|adapter|gen2res) echo "bfloat16 on cuda, float32 on the CPU" ;;
    cells) echo "as each cell says" ;;
    accelerate) echo "the preset's: bf16 mixed precision on a GPU" ;;
    *) echo "-" ;;
  esac
}

# ---- the summary: started once (the machine, with torch), then updated after each step (no torch) ----
"$PY" - "$SUMMARY" "$DEV" "$DRY" "$CARRY" "$BUDGET" "bash benchmarks/gpu_all.sh $ARGS" <<'EOF'
import json, os, sys
from pathlib import Path
import torch
sys.path.insert(0, "benchmarks")
from common import machine
summary, dev, dry, carry, budget, argv = sys.argv[1:]
manifest = Path(carry) / "MANIFEST.json"
try:
    where = machine(torch.device(dev))
except Exception as e:  # no such device: each step will say so; the summary is written all the same
    where = dict(device=dev, error=f"{type(e).__name__}: {e}", torch=torch.__version__)
out = dict(
    command=argv, dry_run=dry == "1", budget_s=int(budget), machine=where,
    carry=json.loads(manifest.read_text()) if manifest.is_file() else None,
    data=os.environ.get("RESTORATION_NB_DATA") or "the lab's data_dir (settings.ini)",
    identity="not measured here: the GPU machine has no dlib; score the returned outputs on the CPU",
    steps=[], all_ok=None,
)
tmp = Path(summary + ".tmp")
tmp.write_text(json.dumps(out, indent=1))
os.replace(tmp, summary)
EOF
record() {  # NAME STATUS RC SECONDS CAP EXPECTED...: the step into the summary; its commands into its results
  "$PY" - "$SUMMARY" "$WORK" "$(dtype_of "$1")" "$@" <<'EOF'
import json, os, sys
from pathlib import Path
summary, work, dtype, name, status, rc, seconds, cap, *expected = sys.argv[1:]
commands_file = Path(work) / "commands" / name
commands = commands_file.read_text().splitlines() if commands_file.is_file() else []
def write(path, data):
    tmp = Path(f"{path}.tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)
results = Path(summary).parent
for f in expected:
    data = json.loads((results / f).read_text())
    write(results / f, dict(data, commands=commands, made_by=f"benchmarks/gpu_all.sh, step {name}"))
out = json.loads(Path(summary).read_text())
out["steps"].append(dict(name=name, status=status, rc=int(rc), seconds=float(seconds), cap_s=int(cap),
                         dtype=dtype, commands=commands, results=expected, log=f"logs/{name}.log"))
out["all_ok"] = all(s["status"] == "ok" for s in out["steps"])
write(summary, out)
EOF
}
expected_of() {  # the results files a step must write
  case "$1" in
    priors) echo "priors_timing_$DEV.json" ;;
    instant) echo "instant_speed_$([ "$DRY" = 1 ] && echo micro || echo sd-turbo)_$DEV.json" ;;
    flipnet) echo "flipnet_speed_$([ "$DRY" = 1 ] && echo micro || echo sd21)_$DEV.json" ;;
    adapter) echo "adapter_speed_$([ "$DRY" = 1 ] && echo micro || echo sd21)_$DEV.json" ;;
    gen2res) echo "gen2res_speed_$([ "$DRY" = 1 ] && echo micro || echo ddpm-celebahq-256)_$DEV.json" ;;
    cells) echo "gpu_cells_$DEV.json" ;;
    accelerate)
      local kind=$([ "$DEV" = cuda ] && echo gpu || echo cpu)
      if [ -d "$CARRY/plain/restoration_nb" ]; then echo "distributed_overhead_$kind.json"
      else echo "distributed_train_${kind}_accelerate.json"; fi ;;
  esac
}
pack() {  # what the device tool brings back: at most 8 files, so the results and logs travel as one tar
  [ -n "${OUT:-}" ] || return 0
  cp "$SUMMARY" "$OUT/"
  tar -C "$RESULTS_DIR" -cf "$OUT/results_$DEV.tar.tmp" $WRITTEN "$(basename "$SUMMARY")" -C "$WORK" logs
  mv "$OUT/results_$DEV.tar.tmp" "$OUT/results_$DEV.tar"
  local p
  for p in "$WORK"/priors/*/; do
    [ -d "$p" ] && tar -C "$WORK/priors" -cf "$OUT/prior_$(basename "$p").tar" "$(basename "$p")"
  done
  return 0
}

# ---- the steps, in order, each under its cap and what is left of the budget ----
echo "gpu_all: $([ "$DRY" = 1 ] && echo "dry run on the CPU" || echo "on $DEV"); results in $RESULTS_DIR"
WRITTEN='' FAILED=0 i=0
for name in $STEPS; do
  cap=${CAPS[$i]}
  i=$((i + 1))
  left=$((BUDGET - SECONDS - 5))
  [ "$cap" -le "$left" ] || cap=$left
  expected=$(expected_of "$name")
  if [ "$cap" -lt 30 ]; then
    echo "gpu_all: [$i] $name: skipped, no time left"
    record "$name" "skipped: no time left of the ${BUDGET}s budget" 0 0 0
    FAILED=1
    continue
  fi
  touch "$WORK/started"
  start=$(date +%s%N)
  rc=0
  GA_CAP=$cap timeout -k 10 "$cap" bash "$SELF" --step "$name" >"$WORK/logs/$name.log" 2>&1 || rc=$?
  seconds=$(awk "BEGIN { printf \"%.1f\", ($(date +%s%N) - $start) / 1e9 }")
  missing=''
  for f in $expected; do
    [ -f "$RESULTS_DIR/$f" ] && [ "$RESULTS_DIR/$f" -nt "$WORK/started" ] || missing="$missing $f"
  done
  if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then status="timed out after ${cap}s"
  elif [ "$rc" != 0 ]; then status="failed (exit $rc)"
  elif [ -n "$missing" ]; then status="failed: no results file$missing"
  else status=ok; fi
  [ "$status" = ok ] || { FAILED=1; tail -n 15 "$WORK/logs/$name.log" | sed "s/^/  $name| /"; }
  [ -z "$missing" ] && [ "$rc" = 0 ] && WRITTEN="$WRITTEN $expected" || expected=''
  record "$name" "$status" "$rc" "$seconds" "$cap" $expected
  echo "gpu_all: [$i] $name: $status in ${seconds}s (cap ${cap}s)${expected:+: $expected}"
  pack
done
[ "$DRY" = 0 ] || cp -r "$WORK/logs" "$RESULTS_DIR/gpu_all_logs"
echo "gpu_all: summary $SUMMARY; $([ "$FAILED" = 0 ] && echo "every step ok" || echo "some step failed")"
exit "$FAILED"
