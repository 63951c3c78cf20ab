r"""Diffusion Restoration Adapter (paper 003): training run, RSS and adapter overheads, and the a x w
evaluation.

  train:  train adapters + LoRA on the micro conditional prior with a preset (cpu, gpu) and save the weights;
          writes benchmarks/results/adapter_train_<preset>_<device>.json (steps, minutes, loss curve summary).
  speed:  per sampling step, the RSS-wrapped scheduler step against the bare scheduler step (each beside the
          UNet forward that a sampling step also costs), and the UNet forward with adapters + LoRA against the
          bare UNet, same batch; `--config sd21` is the full SD 2.1 UNet (random weights, 64x64 latents =
          512 px), `micro` the micro prior's.
          Writes adapter_speed_<config>_<device>.json (goals: RSS overhead < 2 % of a step).
  grid:   held-out faces, second-order degraded (seed 0), restored on the a x w grid: PSNR, SSIM, identity,
          beside the LQ input's; writes adapter_grid_micro_<device>.json.

  python benchmarks/bench_restoration_adapter.py train --preset cpu \
      --weights restoration_nb/weights/restoration-adapter-micro-sd-faces64
  python benchmarks/bench_restoration_adapter.py speed --config micro
  python benchmarks/bench_restoration_adapter.py grid --faces 32
  bash benchmarks/gpu_restoration_adapter.sh  # on the H100: speed at SD 2.1 size, the gpu preset, its grid
Each result file is refused if it exists, unless --overwrite.
"""

from __future__ import annotations
import argparse

import torch

from common import machine, result_path, timed
from restoration_nb.backbones import build_model, make_scheduler, sd21_base_unet_config
from restoration_nb.core import atomic_write_json, get_device, load_faces, make_generator
from restoration_nb.degradations import second_order_degrade
from restoration_nb.metrics import summarize
from restoration_nb.priors import load_prior, micro_sd_faces64_config
from restoration_nb.restoration_adapter import (
    add_diffusion_adapter,
    add_restoration_adapters,
    load_restoration_adapter,
    make_sampler,
    restoration_sampling_strategy,
    save_restoration_adapter,
)
from restoration_nb.restoration_adapter_experiments import (
    A_GRID,
    ADAPTER_PRESETS,
    W_GRID,
    evaluate_rss_grid,
    train_restoration_adapter,
)


def train(args, device) -> dict:
    path = result_path(f"adapter_train_{args.preset}_{device.type}.json", args.overwrite)
    ap, log = train_restoration_adapter(
        "micro-sd-faces64", cfg=args.preset, out_dir=args.run_dir, device=device
    )
    if args.weights:
        save_restoration_adapter(ap, args.weights, log, overwrite=True)
    losses = log["losses"]
    chunks = [
        round(sum(losses[i : i + 100]) / len(losses[i : i + 100]), 5) for i in range(0, len(losses), 100)
    ]
    out = dict(
        mode="train",
        preset=args.preset,
        config=log["config"],
        blocks=log["blocks"],
        steps=log["step"],
        minutes=round(log["minutes"], 2),
        faces=log["faces"],
        trainable_params=sum(p.numel() for p in ap.trainable()),
        loss_mean_per_100_steps=chunks,
        weights=args.weights,
        machine=machine(device),
    )
    atomic_write_json(path, out)
    return out


def speed(args, device) -> dict:
    path = result_path(f"adapter_speed_{args.config}_{device.type}.json", args.overwrite)
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    big = args.config == "sd21"
    config = sd21_base_unet_config() if big else micro_sd_faces64_config()
    channels, size, ctx_len = (4, 64, 77) if big else (3, 64, 3)
    n, g = args.batch, make_generator(0)
    x = torch.randn(n, channels, size, size, generator=g).to(device, dtype)
    c_lq = torch.randn(n, channels, size, size, generator=g).to(device, dtype)
    ctx = torch.randn(n, ctx_len, config["cross_attention_dim"], generator=g).to(device, dtype)
    t = torch.full((n,), 900, device=device)
    model = build_model(config, seed=0, device=device, dtype=dtype).eval()
    model.requires_grad_(False)

    def forward(_):
        with torch.no_grad():
            return model(x, t, encoder_hidden_states=ctx).sample

    bare = timed(forward, device, args.warmup, args.runs)
    eps = forward(0)
    add_diffusion_adapter(model, rank=32)
    adapters = add_restoration_adapters(model).to(device, dtype)

    def adapted_forward(_):
        with adapters.condition(c_lq), torch.no_grad():
            return model(x, t, encoder_hidden_states=ctx).sample

    adapted = timed(adapted_forward, device, args.warmup, args.runs)
    sched, N = {}, args.sampling_steps
    for name in ("ddim", "dpm++"):

        def loop_of(make):
            def run(_):  # N scheduler steps with a fixed model output: the scheduler's own cost
                s = make()
                s.set_timesteps(N, device=device)
                z = x
                for step_t in s.timesteps:
                    z = s.step(eps, step_t, z).prev_sample
                return z

            return run

        plain = loop_of(lambda: make_sampler(name, make_scheduler("ddpm").config))
        rss = loop_of(
            lambda: restoration_sampling_strategy(
                make_sampler(name, make_scheduler("ddpm").config), c_lq, w=0.05, a=0.5
            )
        )
        sched[name] = dict(
            bare_loop=timed(plain, device, args.warmup, args.runs),
            rss_loop=timed(rss, device, args.warmup, args.runs),
            steps=N,
        )
        extra = (sched[name]["rss_loop"]["median_s"] - sched[name]["bare_loop"]["median_s"]) / N
        step = (
            bare["median_s"] + sched[name]["bare_loop"]["median_s"] / N
        )  # one sampling step: UNet forward + scheduler step
        sched[name]["rss_extra_s_per_step"] = round(extra, 7)
        sched[name]["rss_overhead_percent_of_sampling_step"] = round(100 * extra / step, 3)
    out = dict(
        mode="speed",
        config=args.config,
        dtype=str(dtype),
        batch=n,
        input=[n, channels, size, size],
        lora_rank=32,
        adapters=adapters.blocks,
        adapter_params=sum(p.numel() for p in adapters.parameters()),
        unet_forward=bare,
        unet_with_adapters_and_lora_forward=adapted,
        adapter_forward_overhead_percent=round(100 * (adapted["median_s"] / bare["median_s"] - 1), 1),
        schedulers=sched,
        goal="RSS overhead < 2 % per sampling step",
        machine=machine(device),
    )
    print(
        {k: out[k] for k in ("adapter_forward_overhead_percent",)},
        {k: v["rss_overhead_percent_of_sampling_step"] for k, v in sched.items()},
    )
    atomic_write_json(path, out)
    return out


def grid(args, device) -> dict:
    path = result_path(f"adapter_grid_micro_{device.type}.json", args.overwrite)
    ap = load_restoration_adapter(args.weights, load_prior("micro-sd-faces64", sampler="ddim"), device=device)
    hq = load_faces(args.faces, split="heldout", start=args.start)
    lq, _ = second_order_degrade(hq, generator=make_generator(0))
    table, _ = evaluate_rss_grid(ap, hq, lq, args.a, args.w, num_steps=args.steps, seed=0)
    rows = [dict(r, aw=f"a={r['a']}, w={r['w']}") for r in table.rows]
    from restoration_nb.core import Table

    summary = summarize(Table(rows), by="aw")
    print(summary.to_markdown())
    out = dict(
        mode="grid",
        weights=args.weights or "shipped",
        faces=dict(n=args.faces, split="heldout", start=args.start),
        degradation="second_order_degrade, generator seed 0",
        sampler="ddim",
        num_steps=args.steps,
        guidance_scale=1.0,
        summary=summary.rows,
        per_face=table.rows,
        machine=machine(device),
    )
    atomic_write_json(path, out)
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("mode", choices=("train", "speed", "grid"))
    p.add_argument("--device", default=None)
    p.add_argument("--preset", default="cpu", choices=[k for k in ADAPTER_PRESETS if k != "test"])
    p.add_argument("--run-dir", default="runs/adapter", help="checkpoints (train resumes from here)")
    p.add_argument(
        "--weights",
        default=None,
        help="train: where to save the weights; grid: which weights (default: shipped)",
    )
    p.add_argument("--config", default="micro", choices=("micro", "sd21"))
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--sampling-steps", type=int, default=25)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--faces", type=int, default=32)
    p.add_argument("--start", type=int, default=0)
    p.add_argument("--steps", type=int, default=20, help="grid: DDIM steps")
    p.add_argument("--a", type=float, nargs="+", default=list(A_GRID))
    p.add_argument("--w", type=float, nargs="+", default=list(W_GRID))
    p.add_argument("--overwrite", action="store_true")
    args = p.parse_args()
    device = get_device(args.device)
    {"train": train, "speed": speed, "grid": grid}[args.mode](args, device)


if __name__ == "__main__":
    main()
