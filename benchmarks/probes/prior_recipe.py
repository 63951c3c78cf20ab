"""Probe (not a benchmark): which recipe makes the best face prior in the same CPU minutes?
Each recipe trains from scratch, seed 0, on the UTKFace train split, for --minutes of training on --threads
threads (two probes run side by side, one thread each), then samples 256 faces with 50 DDIM steps (held-out
captions and guidance 2 for a conditional prior, as benchmarks/prior_report.py does) and measures dlib
detection and the Frechet distance of their embeddings to 256 held-out faces. Pixel recipes train with
`train_prior`; the latent recipe first trains a micro AutoencoderKL (64 px -> 16x16x4; L1 + MS-SSIM + a small
patch adversarial term) for --vae-minutes, then a latent UNet2DConditionModel for --minutes, and counts both.
  python benchmarks/probes/prior_recipe.py RECIPE [--minutes 20] [--vae-minutes 20] [--threads 1]
writes benchmarks/results/probes/prior_<RECIPE>_cpu.json (and a 16-face grid .png); the run folder is
runs/probes/<RECIPE>."""

from __future__ import annotations
import argparse, json, sys, time
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from common import RESULTS, machine  # noqa: E402
from prior_report import sample_batches  # noqa: E402

from restoration_nb.core import load_faces, face_names, show_images, atomic_write_json  # noqa: E402
from restoration_nb.backbones import build_model, scheduler_class  # noqa: E402
from restoration_nb.metrics import FaceEmbedder  # noqa: E402
from restoration_nb.training import CHECKPOINT  # noqa: E402
from restoration_nb.priors import (
    Prior,
    PromptEmbedding,
    caption,
    face_labels,  # noqa: E402
    load_training_faces,
    prior_quality,
    prior_scheduler,
    train_prior,
)

PIXEL_RECIPES = {
    # the shipped recipe: epsilon, min-SNR 5, batch 16, lr 8e-4, fp32
    "ddpm-eps-fp32": ("micro-ddpm-faces64", dict()),
    "ddpm-eps-bf16": ("micro-ddpm-faces64", dict(mixed_precision="bf16")),
    "ddpm-v-bf16": ("micro-ddpm-faces64", dict(mixed_precision="bf16", prediction_type="v_prediction")),
    "ddpm-eps-bf16-b32": ("micro-ddpm-faces64", dict(mixed_precision="bf16", batch_size=32, lr=1e-3)),
    "sd-v-bf16": ("micro-sd-faces64", dict(mixed_precision="bf16", prediction_type="v_prediction")),
}
RECIPES = (*PIXEL_RECIPES, "sd-latent-v-bf16")


def evaluate(draw, conditional: bool, embedder: FaceEmbedder, n: int) -> tuple[dict, torch.Tensor, float]:
    """(quality, samples, seconds) of `n` samples `draw(n, prompts)` against held-out faces 0..n-1 (floor:
    n..2n-1); a conditional prior draws with the captions of held-out faces 2n..3n-1."""
    reference, floor = load_faces(n, start=0), load_faces(n, start=n)
    prompts = [caption(face_labels(x)) for x in face_names("heldout")[2 * n : 3 * n]] if conditional else None
    start = time.time()
    samples = draw(n, prompts)
    seconds = time.time() - start
    return prior_quality(samples, reference, floor, embedder), samples, seconds


def pixel_probe(recipe: str, args, out: Path) -> dict:
    name, overrides = PIXEL_RECIPES[recipe]
    faces = load_training_faces(progress=False)
    log = train_prior(
        name,
        out,
        "cpu",
        faces=faces,
        device="cpu",
        progress=False,
        steps=10**6,
        max_minutes=args.minutes,
        checkpoint_every=500,
        **overrides,
    )
    state = torch.load(out / CHECKPOINT, map_location="cpu", weights_only=False)  # our own probe's file
    model = build_model(log["model_config"], device="cpu", dtype=torch.float32)
    model.load_state_dict(state["ema"])
    prompts = None
    if state["ema_prompts"] is not None:
        prompts = PromptEmbedding()
        prompts.load_state_dict(state["ema_prompts"])
    cfg = log["config"]
    ddim = scheduler_class("ddim").from_config(prior_scheduler(cfg["prediction_type"]).config)
    prior = Prior(name=name, model=model.eval(), scheduler=ddim, prompt_embedding=prompts)
    return dict(
        prior=name,
        overrides=overrides,
        config=cfg,
        steps=log["step"],
        train_minutes=round(log["minutes"], 2),
        samples_seen=log["step"] * cfg["batch_size"],
        samples_per_s=round(log["step"] * cfg["batch_size"] / (log["minutes"] * 60), 2),
        loss_first_50=round(float(np.mean(log["losses"][:50])), 4),
        loss_last_50=round(float(np.mean(log["losses"][-50:])), 4),
        params=sum(p.numel() for p in model.parameters()),
    ), prior


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("recipe", choices=RECIPES)
    ap.add_argument("--minutes", type=float, default=20.0)
    ap.add_argument("--vae-minutes", type=float, default=20.0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--n", type=int, default=256)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    out = Path("runs/probes") / args.recipe
    if args.recipe in PIXEL_RECIPES:
        report, prior = pixel_probe(args.recipe, args, out)
        conditional = prior.conditional

        def draw(n, prompts):
            return sample_batches(prior, n, prompts, seed=0, batch=64)
    else:
        import latent_probe

        report, draw = latent_probe.probe(args, out)
        conditional = True
    report = dict(
        recipe=args.recipe,
        command=" ".join(["python", *sys.argv]),
        machine=machine(torch.device("cpu")),
        **report,
    )
    quality, samples, seconds = evaluate(draw, conditional, FaceEmbedder(), args.n)
    report.update(
        quality={k: round(v, 4) if isinstance(v, float) else v for k, v in quality.items()},
        sample_seconds=round(seconds, 1),
    )
    png = RESULTS / "probes" / f"prior_{args.recipe}_cpu.png"
    show_images(samples[:16], ncols=8, scale=0.8, suptitle=f"{args.recipe}: {report['steps']} steps").savefig(
        png, dpi=64
    )
    atomic_write_json(RESULTS / "probes" / f"prior_{args.recipe}_cpu.json", report)
    print(json.dumps(report["quality"]), report["steps"], "steps", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
