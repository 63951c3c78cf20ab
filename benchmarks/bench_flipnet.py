r"""FLIPNET (paper 001): training run, step-time overhead of BoostHub, and the phi evaluation.

  train:   train FLIPNET on the micro conditional prior with a preset (cpu, gpu) and save its weights;
           writes benchmarks/results/flipnet_train_<preset>_<device>.json (steps, minutes, last losses).
  speed:   one training step (forward + backward) and one sampling step (forward) of the dual-stream batch
           through the UNet with BoostHub and LoRA, against the bare UNet with the same LoRA on the same
           batch; `--config sd21` is the full SD 2.1-base UNet (random weights, 64x64 latents = 512 px),
           `micro` the micro prior's. Writes flipnet_speed_<config>_<device>.json.
  phi:     held-out faces, second-order degraded (seed 0), restored at each phi: PSNR, SSIM, identity against
           the LQ input; writes flipnet_phi_micro_<device>.json.

  python benchmarks/bench_flipnet.py train --preset cpu \
      --weights restoration_nb/weights/flipnet-micro-sd-faces64
  python benchmarks/bench_flipnet.py speed --config micro
  python benchmarks/bench_flipnet.py phi --faces 16
  bash benchmarks/gpu_flipnet.sh  # on the H100: speed at SD 2.1 size, and the 10-minute gpu training preset
Each result file is refused if it exists, unless --overwrite.
"""

from __future__ import annotations
import argparse

import torch

from common import machine, result_path, timed
from restoration_nb.backbones import build_model, sd21_base_unet_config
from restoration_nb.core import atomic_write_json, get_device, load_faces, make_generator
from restoration_nb.degradations import second_order_degrade
from restoration_nb.flipnet import add_attention_lora, add_boost_hub, dual_stream, load_flipnet, save_flipnet
from restoration_nb.flipnet_experiments import FLIP_PRESETS, PHI_GRID, evaluate_over_phi, train_flipnet
from restoration_nb.metrics import summarize
from restoration_nb.priors import load_prior, micro_sd_faces64_config


def train(args, device) -> dict:
    path = result_path(f"flipnet_train_{args.preset}_{device.type}.json", args.overwrite)
    net, log = train_flipnet("micro-sd-faces64", cfg=args.preset, out_dir=args.run_dir, device=device)
    if args.weights:
        save_flipnet(net, args.weights, log, overwrite=True)
    last = {stage: losses[-20:] for stage, losses in log["losses"].items()}
    out = dict(
        mode="train",
        preset=args.preset,
        config=log["config"],
        steps=log["step"],
        minutes=round(log["minutes"], 2),
        perceptual=log["perceptual"],
        faces=log["faces"],
        weights=args.weights,
        last_losses=last,
        machine=machine(device),
    )
    atomic_write_json(path, out)
    return out


def speed(args, device) -> dict:
    path = result_path(f"flipnet_speed_{args.config}_{device.type}.json", args.overwrite)
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    big = args.config == "sd21"
    config = sd21_base_unet_config() if big else micro_sd_faces64_config()
    channels, size, ctx_len = (4, 64, 77) if big else (3, 64, 3)
    n = args.batch  # per stream: the dual-stream batch is 2n
    g = make_generator(0)
    x = torch.randn(2 * n, channels, size, size, generator=g).to(device, dtype)
    t = torch.randint(1000, (2 * n,), generator=g).to(device)
    ctx = torch.randn(2 * n, ctx_len, config["cross_attention_dim"], generator=g).to(device, dtype)
    runs = {}
    rank = 64 if big else 8
    for name in (
        "bare UNet + LoRA",
        "BoostHub + LoRA",
    ):  # the same trainable LoRA in both: the difference is BoostHub
        model = build_model(config, seed=0, device=device, dtype=dtype)
        model.requires_grad_(False)
        boosted = name == "BoostHub + LoRA"
        if boosted:
            add_boost_hub(model)
        add_attention_lora(model, rank=rank)
        if dtype != torch.float32:
            model.to(device, dtype)
        params = [p for p in model.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=1e-5)

        def call():
            if boosted:
                with dual_stream(model):
                    return model(x, t, encoder_hidden_states=ctx).sample
            return model(x, t, encoder_hidden_states=ctx).sample

        def train_step(_):
            model.train()
            opt.zero_grad(set_to_none=True)
            call().float().square().mean().backward()
            opt.step()

        def sample_step(_):
            model.eval()
            with torch.no_grad():
                call()

        runs[name] = dict(
            trainable_params=sum(p.numel() for p in params),
            train_step=timed(train_step, device, args.warmup, args.runs),
            sample_step=timed(sample_step, device, args.warmup, args.runs),
        )
        print(name, runs[name]["train_step"]["median_s"], runs[name]["sample_step"]["median_s"], flush=True)
        del model, opt
    bare, hub = runs["bare UNet + LoRA"], runs["BoostHub + LoRA"]
    overhead = {
        k: round(100 * (hub[k]["median_s"] / bare[k]["median_s"] - 1), 1)
        for k in ("train_step", "sample_step")
    }
    out = dict(
        mode="speed",
        config=args.config,
        dtype=str(dtype),
        lora_rank=rank,
        dual_stream_batch=2 * n,
        input=[2 * n, channels, size, size],
        runs=runs,
        overhead_percent=overhead,
        goal="overhead <= 35%",
        machine=machine(device),
    )
    atomic_write_json(path, out)
    return out


def phi(args, device) -> dict:
    path = result_path(f"flipnet_phi_micro_{device.type}.json", args.overwrite)
    net = load_flipnet(args.weights, load_prior("micro-sd-faces64", sampler="ddim"), device=device)
    hq = load_faces(args.faces, split="heldout", start=args.start)
    lq, _ = second_order_degrade(hq, generator=make_generator(0))
    table, _ = evaluate_over_phi(net, hq, lq, phis=args.phis, num_steps=args.steps, seed=0)
    summary = summarize(table, by="phi")
    print(summary.to_markdown())
    out = dict(
        mode="phi",
        weights=args.weights or "shipped",
        faces=dict(n=args.faces, split="heldout", start=args.start),
        degradation="second_order_degrade, generator seed 0, ranges scaled to 64 px",
        num_steps=args.steps,
        guidance_scale=1.5,
        summary=summary.rows,
        per_face=table.rows,
        machine=machine(device),
    )
    atomic_write_json(path, out)
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("mode", choices=("train", "speed", "phi"))
    p.add_argument("--device", default=None)
    p.add_argument("--preset", default="cpu", choices=[k for k in FLIP_PRESETS if k != "paper"])
    p.add_argument("--run-dir", default="runs/flipnet", help="checkpoints (train resumes from here)")
    p.add_argument(
        "--weights",
        default=None,
        help="train: where to save the weights; phi: which weights (default: shipped)",
    )
    p.add_argument("--config", default="micro", choices=("micro", "sd21"))
    p.add_argument("--batch", type=int, default=2, help="speed: samples per stream")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--faces", type=int, default=16)
    p.add_argument("--start", type=int, default=0)
    p.add_argument("--steps", type=int, default=25, help="phi: DDIM steps")
    p.add_argument("--phis", type=float, nargs="+", default=list(PHI_GRID))
    p.add_argument("--overwrite", action="store_true")
    args = p.parse_args()
    device = get_device(args.device)
    {"train": train, "speed": speed, "phi": phi}[args.mode](args, device)


if __name__ == "__main__":
    main()
