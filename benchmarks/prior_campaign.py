"""A training campaign for a micro prior: train in the background for as long as a sitting allows, measure the
samples every --eval-every minutes, and keep the EMA weights and the curve in a tracked folder so that the
next sitting resumes from them.

    nohup python benchmarks/prior_campaign.py micro-ddpm-faces64 --hours 2.5 > runs/campaign-ddpm.log 2>&1 &

- benchmarks/campaign/<name>/ (committed, read by no test) holds prior/, a prior folder written by
  `save_prior` (fp16 EMA weights, the scheduler, training.json, the model card), and curve.json: one point per
  measurement (step, faces seen, training minutes, dlib detection and Frechet distance of 256 samples with 50
  DDIM steps, as benchmarks/prior_report.py measures them).
- runs/campaign/<name>/ (ignored) is the train_prior run: within a sitting it resumes from its checkpoint; in
  a new sitting it starts from the campaign folder (or, when it has no prior/, from the shipped weights), with
  a fresh optimizer. When a campaign's weights are swapped into the package, its prior/ is removed and only
  curve.json stays.
- SIGTERM (or --hours) ends the sitting cleanly: the step in progress is finished, the weights are saved and
  measured.
The training recipe is the `cpu` preset of restoration_nb.priors (see nbs/06_priors.ipynb for why)."""

from __future__ import annotations
import argparse, json, signal, sys, time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine  # noqa: E402
from prior_report import measure_prior, measurement_faces  # noqa: E402

from restoration_nb.core import atomic_write_json  # noqa: E402
from restoration_nb.metrics import FaceEmbedder  # noqa: E402
from restoration_nb.priors import (
    PRIOR_SPECS,
    TRAIN_PRESETS,
    load_prior,
    load_training_faces,  # noqa: E402
    save_prior,
    train_prior,
)
from restoration_nb.training import WEIGHTS_DIR, load_checkpoint  # noqa: E402

CAMPAIGNS = Path(__file__).resolve().parent / "campaign"
RUNS = Path("runs/campaign")


def measure(folder: Path, faces: dict, embedder: FaceEmbedder) -> dict:
    """The prior in `folder` measured as benchmarks/prior_report.py measures it: detection, Frechet distance,
    prompt following."""
    prior = load_prior(folder, sampler="ddim", device="cpu", dtype=torch.float32)
    _, quality, followed = measure_prior(prior, faces, embedder)
    quality = {k: round(v, 4) if isinstance(v, float) else v for k, v in quality.items()}
    shares = {k: v["share"] for k, v in followed.items()} if followed else None
    return dict(quality, prompt_share=shares, reference=faces["reference_is"])


def curve_point(log: dict, before: dict | None, quality: dict, threads: int, batch: int) -> dict:
    "One point of the curve: where training is, how many faces it has seen, and how good its samples are."
    seen = (before["samples_seen"] if before else 0) + (
        log["step"] - (before["step"] if before else 0)
    ) * batch
    recent = log["losses"][-200:]
    return dict(
        step=log["step"],
        samples_seen=seen,
        train_minutes=round(log["minutes"], 1),
        threads=threads,
        loss_last_200=round(float(np.mean(recent)), 5) if recent else None,
        detection=quality["detection_rate"],
        fd=quality["fd"],
        fd_floor=quality.get("fd_floor"),
        samples=quality["samples"],
        prompt_share=quality["prompt_share"],
        reference=quality["reference"],
        date=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("name", choices=list(PRIOR_SPECS))
    ap.add_argument(
        "--hours", type=float, default=2.5, help="wall-clock hours of this sitting (training and measuring)"
    )
    ap.add_argument("--eval-every", type=float, default=45.0, help="training minutes between measurements")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--n", type=int, default=256, help="samples per measurement")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    deadline = time.time() + args.hours * 3600
    stop = dict(requested=False)
    signal.signal(signal.SIGTERM, lambda *a: stop.update(requested=True))
    campaign, run = CAMPAIGNS / args.name / "prior", RUNS / args.name
    curve_file = CAMPAIGNS / args.name / "curve.json"
    curve = json.loads(curve_file.read_text()) if curve_file.is_file() else dict(name=args.name, points=[])
    embedder, faces = FaceEmbedder(), measurement_faces(args.n)
    init = campaign if (campaign / "training.json").is_file() else WEIGHTS_DIR / args.name
    last = curve["points"][-1] if curve["points"] else None
    before = json.loads((init / "training.json").read_text())
    moved = (
        last is not None and last["step"] != before["step"]
    )  # saved at the end of a sitting cut short of measuring
    if (
        last is None or moved or last.get("reference") != faces["reference_is"]
    ):  # the weights we begin from, measured this way
        start_log = dict(step=before["step"], minutes=before["minutes"], losses=[])
        point = curve_point(
            start_log, last, measure(init, faces, embedder), None, before["config"]["batch_size"]
        )
        note = "start" if last is None else "the same weights re-measured against the current reference faces"
        if moved:
            note = "the weights saved when the last sitting ended, measured at the start of this one"
        curve["points"].append(dict(point, note=f"{note}: {init.relative_to(init.parents[2])}"))
        curve_file.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(curve_file, curve)
    cfg = TRAIN_PRESETS["cpu"]
    train_faces = load_training_faces(progress=False)
    curve["recipe"] = dict(
        preset="cpu", **{k: v for k, v in vars(cfg).items() if k not in ("steps", "max_minutes")}
    )
    while not stop["requested"] and time.time() < deadline:
        minutes_left = (deadline - time.time()) / 60 - 8  # leave time to measure and save
        if minutes_left < 5:
            break
        start = (
            json.loads((init / "training.json").read_text())["minutes"]
            if not (run / "checkpoint.pt").exists()
            else None
        )
        done = start if start is not None else load_checkpoint(run / "checkpoint.pt", "cpu")["log"]["minutes"]
        target = done + min(args.eval_every, minutes_left)
        try:
            log = train_prior(
                args.name,
                run,
                cfg,
                faces=train_faces,
                device="cpu",
                progress=False,
                init=init,
                steps=10**8,
                max_minutes=target,
            )
        except InterruptedError:  # SIGTERM reached train_prior: its checkpoint holds the last step
            stop["requested"] = True
            log = load_checkpoint(run / "checkpoint.pt", "cpu")["log"]
        save_prior(
            run,
            campaign,
            overwrite=True,
            note="A campaign snapshot (benchmarks/prior_campaign.py): not the shipped weights.",
        )
        point = curve_point(
            log, curve["points"][-1], measure(campaign, faces, embedder), args.threads, cfg.batch_size
        )
        curve["points"].append(point)
        curve["machine"] = machine(torch.device("cpu"))
        atomic_write_json(curve_file, curve)
        print(json.dumps(point), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
