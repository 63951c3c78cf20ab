#!/usr/bin/env bash
# Prepares, on a machine that reaches the package registry, what benchmarks/gpu_all.sh needs on the lent GPU
# machine (Python 3.12, torch 2.11, no network), in one folder that git ignores:
#   bash benchmarks/gpu_wheels.sh [--carry DIR] [--margin-mib M]
# DIR (default .gpu_carry) then holds:
#   wheels/    what the GPU steps import and that machine lacks, for CPython 3.12 on x86_64 manylinux, at the
#              versions of this checkout's .venv, with wheels/requirements.txt (torch is never downloaded)
#   plain/     restoration_nb at commit 09e6769, the training loop before accelerate (its .py files only),
#              for the accelerate overhead
#   data/      utkface64.zip cut to whole blocks of 20 faces (each block's first face is held out, so every
#              kept face stays in its split): the first 16 blocks, which the notebooks and the overhead read
#              by position, then blocks spread evenly over the rest, as many as fit
# The device tool carries the working tree (tracked and untracked files) and the carried folders together, in
# 64 MiB at most: the data gets what is left after the tree, the wheels, plain/ and M MiB (default 1) kept
# free for the tree to grow. Prints each size and the total; exits 1 if even the smallest data does not fit.
# Left out: dlib and its models (over 100 MB: identity is not measured on the GPU machine), and papermill,
# nbformat, ipywidgets and nbdev, which no GPU step imports (benchmarks/gpu_cells.py runs the `#| gpu` cells).
set -euo pipefail
cd "$(dirname "$0")/.."
CARRY=.gpu_carry
MARGIN=1
while [ $# -gt 0 ]; do
  case "$1" in
    --carry) CARRY=${2:?--carry needs a folder}; shift 2 ;;
    --margin-mib) MARGIN=${2:?--margin-mib needs a number}; shift 2 ;;
    *) echo "gpu_wheels.sh: unknown option '$1'; expected --carry DIR or --margin-mib M" >&2; exit 2 ;;
  esac
done
case "$MARGIN" in
  ''|*[!0-9]*) echo "gpu_wheels.sh: --margin-mib '$MARGIN'; expected a whole number of MiB" >&2; exit 2 ;;
esac
git check-ignore -q "$CARRY/" ||
  { echo "gpu_wheels.sh: --carry '$CARRY'; expected a folder git ignores (it must not join the tree)" >&2; exit 2; }
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
PACKAGES="diffusers fastcore pytorch-msssim importlib_metadata"  # importlib_metadata: diffusers asks for it
PLAIN_COMMIT=09e6769

rm -rf "$CARRY/wheels" "$CARRY/plain"
mkdir -p "$CARRY/wheels" "$CARRY/plain" "$CARRY/data"
versions='import sys, importlib.metadata as m; print(*(f"{p}=={m.version(p)}" for p in sys.argv[1:]))'
pins=$("$PY" -c "$versions" $PACKAGES)
printf '%s\n' $pins > "$CARRY/wheels/requirements.txt"
"$PY" -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: --python-version 3.12 \
  --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d "$CARRY/wheels" $pins
git archive "$PLAIN_COMMIT" -- restoration_nb ':(exclude)restoration_nb/weights' | tar -x -C "$CARRY/plain"
echo "$PLAIN_COMMIT" > "$CARRY/plain/COMMIT"

"$PY" - "$CARRY" "$MARGIN" <<'EOF'
import json, os, subprocess, sys, zipfile
from pathlib import Path
from restoration_nb.core import HELDOUT_EVERY, UTKFACE_ZIP, face_data_dir, face_names

carry, margin = Path(sys.argv[1]), int(sys.argv[2]) * 2**20
LIMIT, PREFIX = 64 * 2**20, 16  # the device tool's limit; blocks read by position
mib = lambda b: f"{b / 2**20:6.2f} MiB"
size = lambda folder: sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file())
listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                        capture_output=True, text=True, check=True).stdout.split("\0")
tree = sum(os.path.getsize(p) for p in listed if p and os.path.isfile(p))
wheels, plain = size(carry / "wheels"), size(carry / "plain")
source = face_data_dir() / UTKFACE_ZIP
names = face_names("all")
blocks = [names[k : k + HELDOUT_EVERY] for k in range(0, len(names), HELDOUT_EVERY)]
with zipfile.ZipFile(source) as z:
    infos = {i.filename: i for i in z.infolist()}
    cost = lambda block: sum(infos[n].compress_size + 76 + 2 * len(n) for n in block)  # data + zip headers
    budget = LIMIT - tree - wheels - plain - margin - 22
    rest = blocks[PREFIX:]
    def chosen(k):  # the first PREFIX blocks, then k - PREFIX blocks spread evenly over the rest
        m = min(max(k - PREFIX, 0), len(rest))
        return blocks[:PREFIX] + [rest[i * len(rest) // m] for i in range(m)] if m else blocks[:PREFIX]
    k = min(len(blocks), PREFIX + max(0, int(budget / (sum(map(cost, blocks)) / len(blocks))) - PREFIX))
    while k > PREFIX and sum(map(cost, chosen(k))) > budget:
        k -= 1
    keep = chosen(k)
    if sum(map(cost, keep)) > budget:
        sys.exit(f"gpu_wheels.sh: over the 64 MiB limit: the tree ({mib(tree)}), wheels ({mib(wheels)}) and "
                 f"plain/ ({mib(plain)}) leave {mib(max(budget, 0))} for data; {PREFIX} blocks need more")
    out = carry / "data" / UTKFACE_ZIP
    tmp = out.with_suffix(".zip.tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as w:
        for n in sorted(n for block in keep for n in block):
            w.writestr(zipfile.ZipInfo(n, infos[n].date_time), z.read(n), zipfile.ZIP_DEFLATED)
    os.replace(tmp, out)
kept = face_names("all", out.parent)
assert face_names("heldout", out.parent) == [b[0] for b in keep] and set(kept) <= set(names)
assert set(face_names("heldout", out.parent)) <= set(face_names("heldout"))
data = out.stat().st_size
manifest = dict(
    wheels=(carry / "wheels" / "requirements.txt").read_text().split(),
    plain_commit=(carry / "plain" / "COMMIT").read_text().strip(),
    data=dict(faces=len(kept), of=len(names), heldout=len(keep), train=len(kept) - len(keep),
              rule=f"whole blocks of {HELDOUT_EVERY}: the first {PREFIX}, then {len(keep) - PREFIX} of the "
              f"other {len(rest)} spread evenly"),
    bytes=dict(tree=tree, wheels=wheels, plain=plain, data=data, total=tree + wheels + plain + data,
               limit=LIMIT),
)
(carry / "MANIFEST.json").write_text(json.dumps(manifest, indent=1))
total = tree + size(carry)
print(f"working tree (tracked + untracked) {mib(tree)}")
print(f"wheels/  {mib(wheels)}  {' '.join(manifest['wheels'])}")
print(f"plain/   {mib(plain)}  restoration_nb at {manifest['plain_commit']}")
print(f"data/    {mib(data)}  {len(kept)} of {len(names)} faces ({len(keep)} held out, "
      f"{len(kept) - len(keep)} train)")
print(f"total    {mib(total)} of {mib(LIMIT)} ({mib(LIMIT - total)} free)")
if total > LIMIT:
    sys.exit("gpu_wheels.sh: over the 64 MiB limit; raise --margin-mib or carry less")
EOF
echo "carry: $CARRY (device tool: run with carry [\"$CARRY\"]; see benchmarks/gpu_all.sh)"
