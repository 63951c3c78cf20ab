"""A training campaign for a restorer: train in the background for as long as a sitting allows, save the
weights every --save-every minutes, and measure them with the quality protocol (64 album faces at x4, as
benchmarks/bench_quality.py does), so that the next sitting resumes from them and the curve shows when to
stop.

    nohup python benchmarks/restorer_campaign.py adapter --hours 2.5 > runs/campaign-adapter.log 2>&1 &

The restorers: adapter, instant, flipnet (FLIPNET goes on in its last stage; its saved weights hold no
more of the autoencoders than the LQ encoder, which is all that stage uses).

- benchmarks/campaign/<weights name>/ (committed, read by no test) holds the weights (fp16 safetensors,
  written by the restorer's own save function) and curve.json: one point per measurement (step, training
  minutes, mean loss, and the x4 row of the protocol: PSNR, detection, identity, rank-1, Frechet distance,
  beside the input's row).
- runs/campaign/<weights name>/ (ignored) is the training run: within a sitting it resumes from its
  checkpoint; in a new sitting it starts from the campaign folder's weights (or, when there are none, the
  shipped ones), with a fresh optimizer.
- SIGTERM (or --hours) ends the sitting cleanly: the step in progress is finished, the weights are saved
  and measured."""

from __future__ import annotations
import argparse, dataclasses, json, signal, sys, time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine  # noqa: E402
from bench_quality import measure_restorer  # noqa: E402

from restoration_nb.core import atomic_write_json  # noqa: E402
from restoration_nb.priors import load_training_faces  # noqa: E402
from restoration_nb.training import WEIGHTS_DIR, load_checkpoint  # noqa: E402
from restoration_nb import flipnet, instant_restore, restoration_adapter  # noqa: E402
from restoration_nb import flipnet_experiments, instant_restore_experiments  # noqa: E402
from restoration_nb import restoration_adapter_experiments  # noqa: E402

CAMPAIGNS = Path(__file__).resolve().parent / "campaign"
RUNS = Path("runs/campaign")
RESTORERS = dict(
    adapter=dict(
        weights=restoration_adapter.ADAPTER_WEIGHTS,
        card="adapter.json",
        train=restoration_adapter_experiments.train_restoration_adapter,
        save=restoration_adapter.save_restoration_adapter,
        presets=restoration_adapter_experiments.ADAPTER_PRESETS,
    ),
    instant=dict(
        weights=instant_restore.INSTANT_WEIGHTS,
        card="instant.json",
        train=instant_restore_experiments.train_instant_restore,
        save=instant_restore.save_instant_restore,
        presets=instant_restore_experiments.INSTANT_PRESETS,
    ),
    flipnet=dict(
        weights=flipnet.FLIPNET_WEIGHTS,
        card="flipnet.json",
        train=flipnet_experiments.train_flipnet,
        save=flipnet.save_flipnet,
        presets=flipnet_experiments.FLIP_PRESETS,
    ),
)


def trained_steps(folder: Path, card: str) -> dict:
    "The step and minutes recorded in a weights folder's config."
    training = json.loads((folder / card).read_text()).get("training") or {}
    return dict(step=int(training.get("step", 0)), minutes=float(training.get("minutes", 0.0)))


def recent_loss(log: dict, last: int = 200) -> float | None:
    """Mean total loss over a training log's `last` entries: the adapter logs floats, InstantRestore dicts
    with a `loss`, FLIPNET such dicts per stage (its last stage counts)."""
    losses = log.get("losses") or []
    if isinstance(losses, dict):
        losses = losses.get("flipnet") or []
    recent = [v["loss"] if isinstance(v, dict) else v for v in losses[-last:]]
    return round(float(np.mean(recent)), 5) if recent else None


def preset_overrides(cfg, pairs: list[str]) -> dict:
    "KEY=VALUE pairs (JSON values) as overrides of the preset `cfg`; a ValueError names a bad pair."
    out = {}
    names = [f.name for f in dataclasses.fields(cfg)]
    for pair in pairs:
        key, _, value = pair.partition("=")
        if key not in names or not value:
            raise ValueError(f"--set {pair!r}; expected KEY=VALUE with KEY one of {', '.join(names)}")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            raise ValueError(f"--set {pair!r}; expected a JSON value (true, 0.5, \"text\")") from None
    return out


def curve_point(method: str, folder: Path, log: dict, note: str | None = None) -> dict:
    "The weights in `folder` measured by the protocol at x4, with where training stands."
    rows = measure_restorer(method, folder)
    point = dict(
        step=log["step"],
        train_minutes=round(log["minutes"], 1),
        loss_last_200=recent_loss(log),
        **rows,
        date=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )
    return point if note is None else dict(point, note=note)


def measure_only(method: str, campaign: Path, training_log: Path, curve: dict, began: dict) -> int:
    """Add the campaign folder's weights to its curve, with the run's losses when the run's log is at the
    same step (a sitting that stopped between saving and measuring); train nothing."""
    log = json.loads(training_log.read_text()) if training_log.is_file() else {}
    if log.get("step") != began["step"]:
        log = dict(began, losses=[])
    curve["points"].append(curve_point(method, campaign, log, "measured on its own (--measure-only)"))
    atomic_write_json(campaign / "curve.json", curve)
    print(json.dumps(curve["points"][-1]), flush=True)
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("method", choices=list(RESTORERS))
    ap.add_argument(
        "--hours", type=float, default=2.5, help="wall-clock hours of this sitting (training and measuring)"
    )
    ap.add_argument(
        "--save-every", type=float, default=30.0, help="training minutes between saves and measurements"
    )
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument(
        "--measure-only",
        action="store_true",
        help="measure the campaign folder's weights (if the curve lacks them) and train nothing",
    )
    ap.add_argument(
        "--set",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="cpu-preset fields changed for this sitting (JSON values, e.g. identity_net=true); "
        "each point of the sitting records them",
    )
    args = ap.parse_args()
    try:
        overrides = preset_overrides(RESTORERS[args.method]["presets"]["cpu"], args.set)
    except ValueError as e:
        ap.error(str(e))
    torch.set_num_threads(args.threads)
    deadline = time.time() + args.hours * 3600
    stop = dict(requested=False)
    signal.signal(signal.SIGTERM, lambda *a: stop.update(requested=True))
    spec = RESTORERS[args.method]
    campaign, run = CAMPAIGNS / spec["weights"], RUNS / spec["weights"]
    curve_file = campaign / "curve.json"
    curve = (
        json.loads(curve_file.read_text()) if curve_file.is_file() else dict(method=args.method, points=[])
    )
    init = campaign if (campaign / spec["card"]).is_file() else WEIGHTS_DIR / spec["weights"]
    began = trained_steps(init, spec["card"])
    if args.measure_only:
        if init != campaign:
            raise SystemExit(
                f"no campaign weights in '{campaign}' to measure; expected a folder that a sitting saved"
            )
        return measure_only(
            args.method, campaign, run / f"{Path(spec['card']).stem}_training.json", curve, began
        )
    last = curve["points"][-1] if curve["points"] else None
    if last is None or last["step"] != began["step"]:
        where = init.relative_to(init.parents[2])
        curve["points"].append(
            curve_point(
                args.method, init, dict(began, losses=[]), f"the weights this sitting starts from: {where}"
            )
        )
        atomic_write_json(curve_file, curve)
    cfg = spec["presets"]["cpu"]
    before = cfg.ae_steps + cfg.assoc_steps if args.method == "flipnet" else 0  # FLIPNET: last stage
    curve["recipe"] = dict(
        preset="cpu", batch_size=cfg.batch_size, lr=cfg.lr, note="fresh optimizer at each sitting's start"
    )
    if overrides:
        curve["recipe"]["overrides"] = overrides
    faces = load_training_faces(progress=False)
    seconds_per_step = None
    while not stop["requested"] and time.time() < deadline:
        minutes_left = (deadline - time.time()) / 60 - 5  # leave time to save and measure
        if minutes_left < 3:
            break
        done = (
            load_checkpoint(run / "checkpoint.pt", "cpu")["log"]
            if (run / "checkpoint.pt").exists()
            else began
        )
        chunk = min(args.save_every, minutes_left)
        if seconds_per_step is None:  # until this sitting has timed a chunk: the run's average
            seconds_per_step = 60 * done["minutes"] / max(done["step"], 1)
        target = done["step"] + max(1, int(chunk * 60 / seconds_per_step))
        started = time.time()
        try:
            net, log = spec["train"](
                faces=faces,
                cfg="cpu",
                out_dir=run,
                device="cpu",
                progress=False,
                init=init,
                steps=target - before,
                **overrides,
            )
        except InterruptedError:  # SIGTERM: the checkpoint holds the last step
            stop["requested"] = True
            reached = load_checkpoint(run / "checkpoint.pt", "cpu")["log"]["step"]
            net, log = spec["train"](
                faces=faces,
                cfg="cpu",
                out_dir=run,
                device="cpu",
                progress=False,
                steps=reached - before,
                **overrides,
            )
        seconds_per_step = (time.time() - started) / max(log["step"] - done["step"], 1)  # this machine, now
        spec["save"](net, campaign, log, overwrite=True)
        point = curve_point(args.method, campaign, log)
        curve["points"].append(dict(point, overrides=overrides) if overrides else point)
        curve["machine"] = machine(torch.device("cpu"))
        atomic_write_json(curve_file, curve)
        print(json.dumps(curve["points"][-1]), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
