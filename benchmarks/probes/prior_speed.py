r"""Probe (not a benchmark): how fast does one training step of a micro prior run on this CPU, by numeric
format and layout?
For each architecture (the pixel priors, a latent UNet on 16x16x4, the micro autoencoder) it times a forward
+ backward + AdamW step at batch 16 (median of 5 after 2 warm-ups) in fp32, under bf16 autocast, in
channels_last memory, and after torch.compile, and one sampling forward at batch 1 (50 of them are one face
with 50 DDIM steps).
  python benchmarks/probes/prior_speed.py [--threads 1] [--only pixel-ddpm,latent-unet] \
      > benchmarks/results/probes/prior_speed_cpu.txt"""

import argparse, statistics, time
import torch
from restoration_nb.backbones import build_model
from restoration_nb.priors import micro_ddpm_faces64_config, micro_sd_faces64_config, PROMPT_DIM


def latent_unet_config(channels=(64, 128, 256)) -> dict:
    "A latent UNet2DConditionModel on 16x16x4: three levels, cross-attention at 8 and 4 px."
    return dict(
        _class_name="UNet2DConditionModel",
        sample_size=16,
        in_channels=4,
        out_channels=4,
        norm_num_groups=32,
        block_out_channels=channels,
        layers_per_block=2,
        attention_head_dim=tuple(c // 32 for c in channels),
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=PROMPT_DIM,
        use_linear_projection=True,
    )


def autoencoder_config() -> dict:
    "A micro AutoencoderKL: 64 px RGB to 16x16x4 (three levels, one layer a block)."
    return dict(
        _class_name="AutoencoderKL",
        in_channels=3,
        out_channels=3,
        latent_channels=4,
        sample_size=64,
        block_out_channels=(32, 64, 128),
        layers_per_block=1,
        norm_num_groups=32,
        down_block_types=("DownEncoderBlock2D",) * 3,
        up_block_types=("UpDecoderBlock2D",) * 3,
    )


ARCHS = {
    "pixel-ddpm (16,32,64,128)": (micro_ddpm_faces64_config((16, 32, 64, 128)), 3, 64),
    "pixel-ddpm (32,64,128,128)": (micro_ddpm_faces64_config((32, 64, 128, 128)), 3, 64),
    "pixel-ddpm (16,64,128,256)": (micro_ddpm_faces64_config((16, 64, 128, 256)), 3, 64),
    "pixel-sd (16,32,64,128)": (micro_sd_faces64_config((16, 32, 64, 128)), 3, 64),
    "latent-unet (64,128,256)": (latent_unet_config(), 4, 16),
    "autoencoder (32,64,128)": (autoencoder_config(), 3, 64),
}


def step_fn(model, kind, x, bf16):
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    t = torch.randint(1000, (len(x),))
    ctx = torch.randn(len(x), 3, PROMPT_DIM)

    def run():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            if kind == "AutoencoderKL":
                out = model(x).sample
            elif kind == "UNet2DConditionModel":
                out = model(x, t, encoder_hidden_states=ctx).sample
            else:
                out = model(x, t).sample
        loss = out.float().square().mean()
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    return run


def infer_fn(model, kind, x1, bf16):
    t = torch.tensor([500])
    ctx = torch.randn(1, 3, PROMPT_DIM)

    def run():
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            if kind == "AutoencoderKL":
                model.decode(model.encode(x1).latent_dist.mode())
            elif kind == "UNet2DConditionModel":
                model(x1, t, encoder_hidden_states=ctx)
            else:
                model(x1, t)

    return run


def median_time(fn, warmup=2, runs=5) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--only", default="")
    ap.add_argument("--variants", default="fp32,bf16,channels_last,bf16+channels_last,compile")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch}; seconds (median "
        "of 5)"
    )
    print(
        f"{'architecture':30s} {'params':>7s} {'variant':>14s} {'train step':>10s} {'samples/s':>9s} "
        f"{'fwd b1':>7s}"
    )
    for name, (config, channels, size) in ARCHS.items():
        if args.only and not any(o in name for o in args.only.split(",")):
            continue
        kind = config["_class_name"]
        for variant in args.variants.split(","):
            model = build_model(config, seed=0, device="cpu", dtype=torch.float32).train()
            x = torch.randn(args.batch, channels, size, size)
            x1 = torch.randn(1, channels, size, size)
            if "channels_last" in variant:
                model = model.to(memory_format=torch.channels_last)
                x, x1 = (
                    x.contiguous(memory_format=torch.channels_last),
                    x1.contiguous(memory_format=torch.channels_last),
                )
            if "compile" in variant:
                model.forward = torch.compile(model.forward)
            bf16 = "bf16" in variant
            try:
                train = median_time(step_fn(model, kind, x, bf16))
                model.eval()
                fwd = median_time(infer_fn(model, kind, x1, bf16), warmup=3, runs=10)
            except Exception as e:  # noqa: BLE001 (a probe: report and go on)
                print(f"{name:30s} {variant:>22s} failed: {type(e).__name__}: {str(e)[:80]}", flush=True)
                continue
            params = sum(p.numel() for p in model.parameters()) / 1e6
            print(
                f"{name:30s} {params:6.2f}M {variant:>14s} {train:10.3f} {args.batch / train:9.1f} "
                f"{fwd * 1000:5.0f}ms",
                flush=True,
            )


if __name__ == "__main__":
    main()
