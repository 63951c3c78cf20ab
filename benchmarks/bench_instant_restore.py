r"""InstantRestore (Zhang et al., SIGGRAPH 2025): training run, the reference cache's speed, and the references
evaluation on real albums.

  train:  train the one-step network's LoRA on the micro conditional prior with a preset (cpu, gpu) and save
          the weights; writes benchmarks/results/instant_train_<preset>_<device>.json (steps, minutes, loss
          curve summary).
  speed:  time per image of one-step restoration with 4 references, with the reference cache (keys/values
          computed once) and without it (references through the frozen copy every call); `--config sd-turbo`
          is SD-Turbo's UNet + VAE at 512 px (random weights), `micro` the micro prior. Writes
          instant_speed_<config>_<device>.json (paper: 471 ms; goal <= 60 ms with the cache, on the H100).
  eval:   `--faces` held-out UTKFace faces, degraded three ways (second-order, x8 and x16 super-resolution
          inputs; seed 0), restored with 4 views of each face and of the next face (the control) and with
          none; the aligned albums (albums256, aligned like the training faces): per person, its first
          `--targets` held-aside photos degraded by each tier (x4, x8, second-order), restored with 0 (no
          references), 1, 2, 3, 4 of its aligned reference photos, AdaIN on and off, and with 4 of another
          person's (the control); PSNR and identity cosine to the clean held-aside photo beside the input's.
          Writes instant_eval_micro_<device>.json.

  python benchmarks/bench_instant_restore.py train --preset cpu \
      --weights restoration_nb/weights/instant-restore-micro-sd-faces64
  python benchmarks/bench_instant_restore.py speed --config micro
  python benchmarks/bench_instant_restore.py eval
  bash benchmarks/gpu_instant_restore.sh
      # on the H100: speed at SD-Turbo size, the gpu preset, its evaluation
Each result file is refused if it exists, unless --overwrite.
"""

from __future__ import annotations
import argparse

import torch

from common import machine, result_path
from restoration_nb.core import album_people, atomic_write_json, get_device, load_faces, make_generator
from restoration_nb.degradations import TIERS
from restoration_nb.instant_restore import (
    build_instant_restorer,
    encode_references,
    load_instant_restore,
    one_step,
    save_instant_restore,
    time_per_image,
)
from restoration_nb.instant_restore_experiments import (
    INSTANT_PRESETS,
    evaluate_references,
    evaluate_views,
    sd_turbo_restorer,
    summarize_references,
    train_instant_restore,
)
from restoration_nb.metrics import FaceEmbedder


def train(args, device) -> dict:
    path = result_path(f"instant_train_{args.preset}_{device.type}.json", args.overwrite)
    ir, log = train_instant_restore("micro-sd-faces64", cfg=args.preset, out_dir=args.run_dir, device=device)
    if args.weights:
        save_instant_restore(ir, args.weights, log, overwrite=True)
    losses = log["losses"]
    chunk = lambda key: [
        round(sum(r.get(key, 0) for r in losses[i : i + 100]) / len(losses[i : i + 100]), 5)
        for i in range(0, len(losses), 100)
    ]
    out = dict(
        mode="train",
        preset=args.preset,
        config=log["config"],
        steps=log["step"],
        minutes=round(log["minutes"], 2),
        faces=log["faces"],
        trainable_params=sum(p.numel() for p in ir.trainable()),
        left_out=log["left_out"],
        discriminator=log["discriminator"],
        loss_mean_per_100_steps={k: chunk(k) for k in ("loss", "ms_ssim", "l1", "las", "gan", "disc")},
        weights=args.weights,
        machine=machine(device),
    )
    atomic_write_json(path, out)
    return out


def speed(args, device) -> dict:
    path = result_path(f"instant_speed_{args.config}_{device.type}.json", args.overwrite)
    dtype = torch.float16 if device.type == "cuda" else torch.float32
    if args.config == "sd-turbo":
        ir = sd_turbo_restorer(lora_rank=32)
    else:
        ir = build_instant_restorer("micro-sd-faces64", lora_rank=8)
    ir.to(device, dtype)
    for m in ir.modules().values():
        m.eval().requires_grad_(False)
    g = make_generator(0)
    lq = (torch.rand(args.batch, 3, ir.size, ir.size, generator=g) * 2 - 1).to(device, dtype)
    refs = (torch.rand(args.refs, 3, ir.size, ir.size, generator=g) * 2 - 1).to(device, dtype)
    for _ in range(args.warmup):
        with torch.no_grad():
            one_step(ir, lq, encode_references(ir, refs))
    cached = time_per_image(ir, lq, refs, True, repeats=args.runs)
    uncached = time_per_image(ir, lq, refs, False, repeats=args.runs)
    cache = encode_references(ir, refs)
    out = dict(
        mode="speed",
        config=args.config,
        size_px=ir.size,
        refs=args.refs,
        dtype=str(dtype),
        lora_rank=ir.config["lora_rank"],
        vae=ir.vae is not None,
        unet_params=sum(p.numel() for p in ir.unet.parameters()),
        ms_per_image_with_cache=round(1000 * cached, 2),
        ms_per_image_without_cache=round(1000 * uncached, 2),
        cache_mib=round(cache.nbytes() / 2**20, 2),
        paper_ms=471,
        goal_ms_with_cache=60,
        machine=machine(device),
    )
    atomic_write_json(path, out)
    print(out)
    return out


def evaluate(args, device) -> dict:
    path = result_path(f"instant_eval_micro_{device.type}.json", args.overwrite)
    ir = load_instant_restore(args.weights, device=device)
    embedder = FaceEmbedder()
    albums, views, heldout = {}, {}, load_faces(args.faces, "heldout", size=ir.size)
    for name, scale in (("second-order", None), ("x8", 8), ("x16", 16)):
        table = evaluate_views(ir, heldout, scale=scale, embedder=embedder)
        views[name] = dict(summary=summarize_references(table).rows, rows=table.rows)
        print(name, "views")
        print(summarize_references(table))
    for tier in TIERS:
        table, _ = evaluate_references(ir, embedder=embedder, targets=args.targets, tier=tier)
        albums[tier] = dict(summary=summarize_references(table).rows, rows=table.rows)
        print(tier, "albums")
        print(summarize_references(table))
    out = dict(
        mode="eval",
        weights=args.weights or "shipped",
        people=len(album_people()),
        targets_per_person=args.targets,
        heldout_views=dict(
            faces=args.faces,
            note="held-out UTKFace faces; references: 4 views of each face, or of the next face",
            **views,
        ),
        albums=dict(
            note="aligned albums: held-aside photos degraded by the tier, references the person's aligned "
            "reference "
            "photos (or the next person's: the control); PSNR and identity to the clean held-aside photo",
            **albums,
        ),
        machine=machine(device),
    )
    atomic_write_json(path, out)
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("mode", choices=("train", "speed", "eval"))
    p.add_argument("--device", default=None)
    p.add_argument("--preset", default="cpu", choices=[k for k in INSTANT_PRESETS if k != "test"])
    p.add_argument("--run-dir", default="runs/instant", help="checkpoints (train resumes from here)")
    p.add_argument(
        "--weights",
        default=None,
        help="train: where to save the weights; eval: which weights (default: shipped)",
    )
    p.add_argument("--config", default="micro", choices=("micro", "sd-turbo"))
    p.add_argument("--batch", type=int, default=1, help="speed: images per call")
    p.add_argument("--refs", type=int, default=4)
    p.add_argument("--targets", type=int, default=3, help="eval: held-out photos per album person")
    p.add_argument(
        "--faces", type=int, default=32, help="eval: held-out UTKFace faces restored with views as references"
    )
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--overwrite", action="store_true")
    args = p.parse_args()
    device = get_device(args.device)
    {"train": train, "speed": speed, "eval": evaluate}[args.mode](args, device)


if __name__ == "__main__":
    main()
