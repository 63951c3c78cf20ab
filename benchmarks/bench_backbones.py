"""Benchmark (not a test): forward time of each backbone, and the restore-from-K loop of the UNet2DModel
priors (DDIM, `--steps` steps from K=200), at random init; writes the numbers as JSON.

    python benchmarks/bench_backbones.py
        # CPU, tiny models -> results/backbones_cpu.json
    python benchmarks/bench_backbones.py --device cuda
        # GPU, full-size models in fp16 -> results/backbones_cuda.json

Full size: ddpm-celebahq-256 (UNet2DModel), the SD 2.1-base / SD-Turbo UNet and VAE, a small SD3 transformer.
Existing results are kept unless `--overwrite` is given.
"""

from __future__ import annotations
import argparse, sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, machine, timed
from restoration_nb.backbones import (
    MODEL_REGISTRY,
    build_model,
    dummy_inputs,
    make_scheduler,
    restore_from_step,
)
from restoration_nb.core import atomic_write_json, check_output_path, get_device, get_dtype, make_generator

TINY = ["tiny-unet2d", "tiny-unet2d-condition", "tiny-vae", "tiny-sd3"]
FULL = ["ddpm-celebahq-256", "sd21-base-unet", "sd-vae", "small-sd3"]


def restore_loop_time(model, steps: int, K: int, batch: int, device, warmup: int, runs: int) -> dict:
    "Seconds to noise a batch to step K and run `steps` DDIM steps back (the demo's restore)."
    size = model.config.sample_size
    y = (
        torch.rand(
            batch,
            model.config.in_channels,
            size,
            size,
            generator=make_generator(0, device),
            device=device,
            dtype=model.dtype,
        )
        * 2
        - 1
    )
    scheduler = make_scheduler("ddim")

    def run(i):
        restore_from_step(
            y,
            model,
            scheduler,
            K,
            num_steps=steps,
            generator=make_generator(max(i, 0), device),
            progress=False,
        )

    return dict(timed(run, device, warmup, runs), K=K, steps=steps, batch=batch)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N (default: auto)")
    ap.add_argument("--dtype", default="auto", help="auto (fp16 on cuda), float32, float16, bfloat16")
    ap.add_argument(
        "--models",
        default=None,
        help="comma-separated registry names (default: full size on cuda, tiny on cpu); known: "
        f"{', '.join(MODEL_REGISTRY)}",
    )
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument(
        "--steps", type=int, default=20, help="DDIM steps from K=200 for the UNet2DModel restore loop"
    )
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument(
        "--out", default=None, help="results JSON (default: benchmarks/results/backbones_<device type>.json)"
    )
    ap.add_argument("--overwrite", action="store_true", help="replace an existing results file")
    args = ap.parse_args(argv)
    device = get_device(args.device)
    dtype = get_dtype(args.dtype, device)
    names = args.models.split(",") if args.models else (FULL if device.type == "cuda" else TINY)
    unknown = [n for n in names if n not in MODEL_REGISTRY]
    if unknown:
        ap.error(f"unknown model(s) {unknown}; known: {', '.join(MODEL_REGISTRY)}")
    if args.batch < 1 or args.steps < 1 or args.runs < 1 or args.warmup < 0:
        ap.error(
            f"--batch {args.batch} --steps {args.steps} --runs {args.runs} --warmup {args.warmup}: expected "
            ">= 1 (warmup >= 0)"
        )
    try:
        out = check_output_path(
            Path(args.out) if args.out else RESULTS / f"backbones_{device.type}.json",
            overwrite=args.overwrite,
        )
    except FileExistsError as e:
        ap.error(str(e))

    rows = []
    for name in names:
        model = build_model(name, device=device, dtype=dtype)
        inputs = dummy_inputs(model, args.batch)
        with torch.inference_mode():
            row = dict(
                name=name,
                cls=type(model).__name__,
                params_M=round(sum(p.numel() for p in model.parameters()) / 1e6, 2),
                sample_size=model.config.sample_size,
                forward=timed(lambda i: model(**inputs), device, args.warmup, args.runs),
            )
        if type(model).__name__ == "UNet2DModel":
            row["restore_from_K"] = restore_loop_time(
                model, args.steps, 200, args.batch, device, args.warmup, args.runs
            )
        rows.append(row)
        print(
            f"{name}: {row['params_M']}M params, forward {row['forward']['median_s'] * 1000:.1f} ms"
            + (
                f", restore K=200 in {args.steps} steps {row['restore_from_K']['median_s']:.2f} s"
                if "restore_from_K" in row
                else ""
            )
        )
        del model
        if device.type == "cuda":
            torch.cuda.empty_cache()
    result = dict(
        **machine(device),
        dtype=str(dtype),
        batch=args.batch,
        warmup=args.warmup,
        runs=args.runs,
        models=rows,
        note="random-init weights: timing only",
    )
    atomic_write_json(out, result)
    print(f"written {out}")
    return result


if __name__ == "__main__":
    main()
