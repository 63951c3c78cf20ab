"""The quality protocol (nbs/03b_quality.ipynb) run on the four papers' restorers at their defaults.

  run:    restore the 64 protocol faces at each tier (x4, x8, second-order; seed 0) with each method, keeping
          every method's outputs in --run-dir (ignored; a method already there is not run again, and gen2res
          resumes face by face from its fine-tune checkpoints), then score them all and write
          benchmarks/results/quality_<device>.json (rows: tier, method, n, psnr, ssim, ms_ssim, detection,
          identity, identity_n, rank1, fd, per-face scores) and quality_contact_<device>.jpg (x4: faces x
          methods).

  python benchmarks/bench_quality.py run     # all four methods, all three tiers
  python benchmarks/bench_quality.py run --methods flipnet adapter --tiers x4
  python benchmarks/bench_quality.py run --skip x8:gen2res second-order:gen2res   # gen2res: 1 CPU-hour a tier
  python benchmarks/bench_quality.py knobs   # each paper's knob swept at x4: quality_knobs_<device>.json
  python benchmarks/bench_quality.py knobs --methods instant --overwrite   # the others' rows kept

The methods at their defaults (the lab's settings.ini: seed 0, 20 DDIM steps, phi 1.0, a 0.8, w 0.05):
  gen2res  the `fast` recipe (the CLI's default): each face's generative album, the prior constrained on it
           (LoRA), restoration from K = 100; the unconditional micro prior.
  flipnet  the shipped FLIPNET, restoration mode, phi from the settings.
  adapter  the shipped adapters and LoRA, RSS with a and w from the settings.
  instant  the shipped InstantRestore with 4 other photos of the same person as references.
The result file is refused if it exists, unless --overwrite."""

from __future__ import annotations
import argparse, io, json, sys, time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, result_path  # noqa: E402

from restoration_nb.cli import RESTORE_METHODS as METHODS  # noqa: E402
from restoration_nb.compare import KNOB_SWEEPS, paper_restorer  # noqa: E402
from restoration_nb.core import atomic_write_bytes, setting  # noqa: E402
from restoration_nb.degradations import TIERS  # noqa: E402
from restoration_nb.quality import (
    PROTOCOL_FACES,
    QUALITY_FIELDS,
    ProtocolScorer,  # noqa: E402
    contact_sheet,
    protocol_faces,
    protocol_inputs,
    quality_bars,
    score_outputs,
    score_tier,
    write_quality,
)

RUN_DIR = Path("runs/quality")


def tier_method(text: str) -> str:
    "A --skip value, TIER:METHOD, checked."
    tier, _, method = text.partition(":")
    if tier not in TIERS or method not in METHODS:
        raise argparse.ArgumentTypeError(
            f"{text!r}; expected TIER:METHOD with a tier of {', '.join(TIERS)} "
            f"and a method of {', '.join(METHODS)}"
        )
    return text


def checked_out(out: Path | None, name: str, overwrite: bool) -> Path:
    """The results file: `out`, else benchmarks/results/`name`; refused before any work if it exists,
    unless `overwrite`."""
    if out is None:
        return result_path(name, overwrite)
    if out.exists() and not overwrite:
        raise SystemExit(f"{out} exists; pass --overwrite to replace it")
    return out


def outputs_of(
    method: str, tier: str, faces, run_dir: Path, progress: bool = True
) -> tuple[torch.Tensor, dict]:
    """`method`'s outputs on the protocol faces at `tier`, from --run-dir when they are there, with its
    settings and seconds."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    path = run_dir / "outputs" / f"{len(faces)}-faces" / tier / f"{method}.safetensors"
    if path.is_file():
        with safe_open(str(path), "pt") as f:
            return f.get_tensor("outputs"), json.loads(f.metadata()["settings"])
    restore, settings = paper_restorer(method, run_dir=run_dir, progress=progress)
    start = time.time()
    out = restore(protocol_inputs(faces.clean, tier), faces, tier)
    settings = dict(settings, seconds=round(time.time() - start, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({"outputs": out.contiguous()}, str(path), metadata={"settings": json.dumps(settings)})
    return out, settings


def measure_restorer(method: str, weights: Path, faces=None) -> dict:
    "One restorer's weights on the protocol at x4: its row and the input's (for the campaigns' curves)."
    faces = faces or protocol_faces(PROTOCOL_FACES)
    restore, _ = paper_restorer(method, weights)
    lq = protocol_inputs(faces.clean, "x4")
    out = restore(lq, faces, "x4")
    rows = score_tier(ProtocolScorer(faces.clean), lq, {method: out}, "x4")
    fields = (*QUALITY_FIELDS, "fd_n", "fd_gap", "fd_gap_low", "fd_gap_high")
    keep = lambda r: {k: r.get(k) for k in fields if k not in ("tier", "method")}
    bars = quality_bars(rows).rows[0]
    return dict(
        x4=keep(rows[-1]), input_x4=keep(rows[0]), bars={k: v for k, v in bars.items() if k != "method"}
    )


def run(args) -> dict:
    device = torch.device("cpu")
    path = checked_out(args.out, f"quality_{device.type}.json", args.overwrite)
    sheet = path.with_name(f"quality_contact_{device.type}.jpg")
    faces = protocol_faces(args.faces)
    scorer, rows, settings, seconds, x4 = ProtocolScorer(faces.clean), [], {}, {}, {}
    skipped = [tuple(s.split(":", 1)) for s in args.skip]
    for tier in args.tiers:
        outputs = {}
        for method in args.methods:
            if (tier, method) in skipped:
                continue
            print(f"{tier}: {method}", flush=True)
            outputs[method], done = outputs_of(method, tier, faces, args.run_dir)
            seconds.setdefault(tier, {})[method] = done.pop("seconds", None)
            settings[method] = done
        rows += score_tier(scorer, protocol_inputs(faces.clean, tier), outputs, tier)
        if tier == "x4":
            x4 = dict(clean=faces.clean, input=protocol_inputs(faces.clean, tier), **outputs)
    about = dict(
        faces=dict(
            n=len(faces),
            set="albums256, taken in turns (quality.protocol_faces)",
            people=faces.people,
            photos=faces.photos,
        ),
        seed=int(setting("seed")),
        methods=settings,
        seconds=seconds,
        machine=machine(device),
        skipped=[f"{method} at {tier}" for tier, method in skipped],
        command="python benchmarks/bench_quality.py run " + " ".join(sys.argv[2:]),
    )
    if "x4" in args.tiers:
        about["bars_x4"] = quality_bars(rows, "x4").rows
    write_quality(path, rows, overwrite=args.overwrite, **about)
    if x4:
        fig = contact_sheet(
            x4,
            faces.people,
            range(min(8, len(faces))),
            f"x4, seed {about['seed']}: the first {min(8, len(faces))} of {len(faces)} faces",
        )
        buf = io.BytesIO()
        fig.savefig(buf, format="jpeg", dpi=72, pil_kwargs=dict(quality=85))
        atomic_write_bytes(sheet, buf.getvalue())
    for r in rows:
        print({k: round(r[k], 3) if isinstance(r[k], float) else r[k] for k in QUALITY_FIELDS})
    return about


def kept_knob_rows(path: Path, methods: list) -> dict:
    """The rows of the methods not in `methods`, kept from the knob file at `path` (read before it is
    replaced): a sweep of some methods leaves the others' measured points as they are."""
    others = [m for m in METHODS if m not in methods]
    if not others:
        return dict(methods=[], rows=[], command=None, machine=None)
    if not path.exists():
        raise SystemExit(
            f"--methods {' '.join(methods)} keeps the other methods' rows of {path}, which does not exist; "
            "run all methods first"
        )
    old = json.loads(path.read_text())
    return dict(methods=others, rows=old["rows"], command=old.get("command"), machine=old.get("machine"))


def knobs(args) -> dict:
    "Each paper's knob swept at x4 (`KNOB_SWEEPS`), the other knobs at their defaults: one row per point."
    device = torch.device("cpu")
    path = checked_out(args.out, f"quality_knobs_{device.type}.json", args.overwrite)
    faces = protocol_faces(args.faces)
    lq = protocol_inputs(faces.clean, "x4")
    scorer = ProtocolScorer(faces.clean)
    rows = score_tier(scorer, lq, {}, "x4")
    input_found = scorer.embedder(lq).detected
    kept = kept_knob_rows(path, args.methods)
    for method, knob, values, fixed in KNOB_SWEEPS:
        if method not in args.methods:
            rows += [r for r in kept["rows"] if r["method"] == method and r.get("knob") == knob]
            continue
        for value in values:
            print(f"{method}: {knob} = {value}", flush=True)
            restore, settings = paper_restorer(method, **fixed, **{knob: value})
            start = time.time()
            out = restore(lq, faces, "x4")
            row = score_outputs(scorer, out, "x4", method, input_found)
            rows.append(
                dict(row, knob=knob, value=value, settings=settings, seconds=round(time.time() - start, 1))
            )
    about = dict(
        faces=dict(n=len(faces), people=faces.people, photos=faces.photos),
        seed=int(setting("seed")),
        sweeps=[dict(method=m, knob=k, values=list(v), fixed=f) for m, k, v, f in KNOB_SWEEPS],
        machine=machine(device),
        command="python benchmarks/bench_quality.py knobs " + " ".join(sys.argv[2:]),
    )
    if kept["methods"]:
        about["kept"] = dict(methods=kept["methods"], command=kept["command"], machine=kept["machine"])
    write_quality(path, rows, overwrite=args.overwrite, **about)
    for r in rows:
        print(
            {
                k: round(r[k], 3) if isinstance(r.get(k), float) else r.get(k)
                for k in ("method", "knob", "value", *QUALITY_FIELDS[2:])
            }
        )
    return about


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="mode", required=True)
    r, k = sub.add_parser("run"), sub.add_parser("knobs")
    r.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    r.add_argument("--tiers", nargs="+", choices=TIERS, default=list(TIERS))
    r.add_argument("--run-dir", type=Path, default=RUN_DIR)
    r.add_argument(
        "--skip",
        nargs="+",
        action="extend",
        default=[],
        type=tier_method,
        metavar="TIER:METHOD",
        help="pairs not to run, e.g. x8:gen2res; may be repeated (the file lists what was skipped)",
    )
    for p in (r, k):
        p.add_argument("--faces", type=int, default=PROTOCOL_FACES)
        p.add_argument("--threads", type=int, default=2)
        p.add_argument(
            "--out",
            type=Path,
            help="the results file (default: benchmarks/results/quality[_knobs]_<device>.json)",
        )
        p.add_argument("--overwrite", action="store_true")
    k.add_argument(
        "--methods",
        nargs="+",
        choices=METHODS,
        default=list(METHODS),
        help="the methods whose knobs are swept; the others' rows are kept from the existing file",
    )
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    run(args) if args.mode == "run" else knobs(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
