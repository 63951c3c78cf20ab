"""Restoration by generation (gen2res): the published recipe against the fast one.

  speed:   seconds per image of each recipe, end to end (album, fine-tune, restore), on a prior with random
           weights (`--config ddpm-celebahq-256`, the full 256 px DDPM model the issue names, or `micro` for
           the micro prior's size).
  personal: for each person of albums256, aligned like the training faces, the prior constrained on the
           reference photos (fast recipe), and the held-aside photos, degraded by each `--tiers` tier,
           restored: PSNR and identity to the clean held-aside photos and identity to the album, against the
           degraded input and the unconstrained prior.
  quality: on the shipped micro prior, both recipes on held-out faces with second-order degradations: PSNR,
           SSIM, MS-SSIM and identity against the degraded input and the unconstrained prior, and the
           fast-minus-published gap.

  python benchmarks/bench_gen2res.py speed --device cuda --config ddpm-celebahq-256
      # on the H100 (benchmarks/gpu_gen2res.sh)
  python benchmarks/bench_gen2res.py quality --faces 4
      # CPU is fine: about 12 min per face
  python benchmarks/bench_gen2res.py personal
      # personal albums, x4 and x8: CPU ~20 min
Each writes benchmarks/results/gen2res_<mode>_<config>_<device>.json
(refused if it exists, unless --overwrite).
"""

from __future__ import annotations
import argparse, time
from dataclasses import asdict, replace

import torch

from common import RESULTS, machine
from restoration_nb.backbones import build_model, ddpm_celebahq_256_config, make_scheduler
from restoration_nb.core import album_people, atomic_write_json, get_device, load_faces, make_generator
from restoration_nb.faces import aligned_album
from restoration_nb.degradations import second_order_degrade
from restoration_nb.gen2res import restore_by_generation
from restoration_nb.gen2res_experiments import (
    CONSTRAIN_PRESETS,
    RECIPES,
    album_identity,
    compare_restorations,
    restore_with_album,
)
from restoration_nb.metrics import FaceEmbedder, evaluate, summarize
from restoration_nb.priors import Prior, load_prior, micro_ddpm_faces64_config

# The paper's recipe at 256 px (Table S1): album 16 from K=600 with n=20, 3000 fine-tune steps at batch 4,
# restore at K=200.
PAPER_256 = dict(album_K=600, n=20, restore_K=200)
FAST_256 = dict(album_K=600, restore_K=200)


def random_prior(config: str, device, dtype) -> Prior:
    cfg = (
        ddpm_celebahq_256_config()
        if config == "ddpm-celebahq-256"
        else micro_ddpm_faces64_config((16, 32, 64, 128))
    )
    model = build_model(cfg, seed=0, device=device, dtype=dtype).eval()
    return Prior(name=f"{config} (random weights)", model=model, scheduler=make_scheduler("ddpm"))


def speed(args, device) -> dict:
    dtype = torch.bfloat16 if device.type == "cuda" and not args.fp32 else torch.float32
    size = 256 if args.config == "ddpm-celebahq-256" else 64
    y = torch.rand(1, 3, size, size, generator=make_generator(0)) * 2 - 1
    runs = {}
    for name in args.recipes:
        overrides = dict(
            (PAPER_256 if name == "published" else FAST_256) if args.config == "ddpm-celebahq-256" else {}
        )
        if args.finetune_steps:  # a shorter fine-tune: a quick trial (benchmarks/gpu_all.sh --dry-run)
            preset = CONSTRAIN_PRESETS[RECIPES[name].constrain]
            overrides["constrain"] = replace(preset, steps=args.finetune_steps)
        prior = random_prior(args.config, device, torch.float32 if name == "published" else dtype)
        times = []
        for run in range(args.runs if name == "fast" else 1):  # the published recipe runs minutes: once
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            out = restore_with_album(prior, y, name, seed=run, progress=False, **overrides)
            if device.type == "cuda":
                torch.cuda.synchronize()
            times.append(round(time.perf_counter() - start, 2))
            print(f"{name}: run {run}: {times[-1]} s", flush=True)
        runs[name] = dict(
            recipe=out["recipe"],
            constrain=constrain_settings(out["recipe"]["constrain"]),
            model_dtype=str(prior.model.dtype),
            seconds_per_image=times,
            last_run_s=times[-1],
        )
    return dict(mode="speed", config=args.config, image_size=size, recipes=runs)


def constrain_settings(constrain) -> dict:
    "The fine-tune settings of a recipe: a preset's, spelt out."
    return asdict(CONSTRAIN_PRESETS[constrain]) if isinstance(constrain, str) else constrain


def quality(args, device) -> dict:
    prior = load_prior("micro-ddpm-faces64", device=device, dtype=torch.float32)
    clean = load_faces(args.faces, start=args.start)
    degraded, _ = second_order_degrade(clean, make_generator(args.seed))
    outputs, seconds, finetune_minutes = {"degraded": degraded}, {}, {}
    recipe = RECIPES["published"]
    outputs["unconstrained prior"] = restore_by_generation(
        prior,
        degraded,
        recipe.restore_K,
        recipe.restore_steps,
        recipe.restore_sampler,
        seed=args.seed,
        progress=False,
    ).cpu()
    for name in args.recipes:
        start = time.perf_counter()
        run_dir = None if args.run_dir is None else f"{args.run_dir}/{name}"
        out = restore_with_album(prior, degraded, name, seed=args.seed, out_dir=run_dir, progress=True)
        seconds[name] = round((time.perf_counter() - start) / args.faces, 1)
        finetune_minutes[name] = [
            round(log["minutes"], 2) for log in out["logs"]
        ]  # training time, across resumed runs too
        outputs[f"{name} recipe"] = out["restored"]
        print(f"{name}: {seconds[name]} s per face", flush=True)
    table = compare_restorations(clean, outputs)
    summary = summarize(table, by="method")
    means = {r["method"]: r for r in summary.rows}
    gap = {}
    if {"published recipe", "fast recipe"} <= set(means):
        for key in ("psnr", "ssim", "ms_ssim", "id_cosine"):
            gap[key] = round(means["fast recipe"][key] - means["published recipe"][key], 4)
    print(summary.to_markdown())
    return dict(
        mode="quality",
        config="micro-ddpm-faces64",
        faces=dict(split="heldout", start=args.start, n=args.faces),
        degradation=f"second_order_degrade, generator seed {args.seed}, ranges scaled to 64 px",
        recipes={k: asdict(RECIPES[k]) for k in args.recipes},
        seconds_per_face=seconds,
        seconds_per_face_note="wall time of this run; a resumed run skips finished fine-tunes, see "
        "finetune_minutes",
        finetune_minutes=finetune_minutes,
        summary=summary.rows,
        fast_minus_published=gap,
        per_face=table.rows,
    )


def personal(args, device) -> dict:
    from dataclasses import replace
    from restoration_nb.core import Table

    prior = load_prior("micro-ddpm-faces64", device=device, dtype=torch.float32)
    embedder, recipe, rows = FaceEmbedder(), RECIPES["fast"], []
    constrain = replace(
        CONSTRAIN_PRESETS[recipe.constrain],
        steps=args.finetune_steps or CONSTRAIN_PRESETS[recipe.constrain].steps,
    )
    for person in album_people():
        for tier in args.tiers:
            album = aligned_album(person, tier=tier, size=prior.size, seed=args.seed)
            lq, clean, refs = album["lq"].to(device), album["clean"], album["refs"]
            plain = restore_by_generation(
                prior,
                lq,
                recipe.restore_K,
                recipe.restore_steps,
                recipe.restore_sampler,
                seed=args.seed,
                progress=False,
            )
            out = restore_with_album(
                prior,
                lq,
                recipe,
                album=refs.to(device),
                seed=args.seed,
                progress=False,
                constrain=constrain,
                out_dir=f"{args.run_dir}-personal/{person}",
            )  # the fine-tune is shared by the tiers
            outputs = {
                "degraded input": lq,
                f"prior, K={recipe.restore_K}": plain,
                "constrained on the personal album": out["restored"],
            }
            for method, x in outputs.items():
                to_album = album_identity(x.cpu(), refs, embedder)
                for r in evaluate(x.cpu(), clean, ("psnr", "identity"), embedder=embedder).rows:
                    rows.append(
                        dict(
                            r,
                            person=person,
                            tier=tier,
                            method=method,
                            id_to_album=to_album[int(r["name"])].item(),
                        )
                    )
            print(person, tier, album["missed"], flush=True)
    summary = {
        tier: summarize(Table([r for r in rows if r["tier"] == tier]), by="method").rows
        for tier in args.tiers
    }
    for tier, table in summary.items():
        print(tier)
        print(Table(table).to_markdown())
    return dict(
        mode="personal",
        config="micro-ddpm-faces64",
        recipe=asdict(replace(recipe, constrain=constrain)),
        tiers=args.tiers,
        album="aligned_album: the reference photos are the album; the held-aside photos, degraded by the "
        "tier, are restored and "
        "scored against their clean versions",
        summary=summary,
        per_face=rows,
    )


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("mode", choices=("speed", "quality", "personal"))
    p.add_argument("--device", default=None)
    p.add_argument(
        "--config",
        default="ddpm-celebahq-256",
        choices=("ddpm-celebahq-256", "micro"),
        help="speed: model size",
    )
    p.add_argument("--recipes", nargs="+", default=["published", "fast"], choices=list(RECIPES))
    p.add_argument(
        "--runs", type=int, default=2, help="speed: end-to-end runs of the fast recipe (the first warms up)"
    )
    p.add_argument("--fp32", action="store_true", help="speed: keep the fast recipe in float32 on cuda")
    p.add_argument("--faces", type=int, default=4, help="quality: held-out faces")
    p.add_argument("--start", type=int, default=0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--finetune-steps",
        type=int,
        default=None,
        help="personal, speed: fine-tune steps (default: the recipe's preset's)",
    )
    p.add_argument(
        "--tiers",
        nargs="+",
        default=["x4", "x8"],
        help="personal: degradation tiers of the held-aside photos",
    )
    p.add_argument(
        "--run-dir",
        default="runs/gen2res_quality",
        help="quality: fine-tune checkpoints, so a killed run resumes",
    )
    p.add_argument("--out", default=None)
    p.add_argument("--overwrite", action="store_true")
    args = p.parse_args()
    device = get_device(args.device)
    name = args.config if args.mode == "speed" else "micro"
    out = RESULTS / (args.out or f"gen2res_{args.mode}_{name}_{device.type}.json")
    if out.exists() and not args.overwrite:
        raise SystemExit(f"{out} exists; pass --overwrite to replace it")
    result = dict(speed=speed, quality=quality, personal=personal)[args.mode](args, device)
    atomic_write_json(out, dict(result, machine=machine(device)))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
