"""Probe: a micro *latent* prior (small AutoencoderKL 64 px -> 16x16x4, UNet2DConditionModel with attention
at the latent's 16 and 8) -- does InstantRestore's one-step network take what its references hold when
attention sits at the latent's full side?
Probe, not a benchmark: a throwaway prior to test one explanation, not a shipped one.
  python benchmarks/probes/instant_references_latent.py vae MINUTES | prior MINUTES | ir GRID STEPS LAS
  (GRID 0: the second-order degradation; each stage saves to runs/latent_probe/ and the next loads it)"""

import sys, time, statistics as st, torch
import torch.nn.functional as F
from pathlib import Path
from restoration_nb.backbones import build_model, make_scheduler, noise_to_step
from restoration_nb.core import load_faces, make_generator
from restoration_nb.metrics import psnr, ms_ssim
from restoration_nb.priors import Prior, load_training_faces

OUT = Path("runs/latent_probe")
OUT.mkdir(parents=True, exist_ok=True)
stage = sys.argv[1]
minutes = float(sys.argv[2]) if stage in ("vae", "prior") else None
torch.manual_seed(0)
VAE = dict(
    _class_name="AutoencoderKL",
    in_channels=3,
    out_channels=3,
    sample_size=64,
    latent_channels=4,
    layers_per_block=1,
    down_block_types=("DownEncoderBlock2D",) * 3,
    up_block_types=("UpDecoderBlock2D",) * 3,
    block_out_channels=(32, 64, 64),
    norm_num_groups=16,
)
UNET = dict(
    _class_name="UNet2DConditionModel",
    sample_size=16,
    in_channels=4,
    out_channels=4,
    layers_per_block=1,
    cross_attention_dim=64,
    block_out_channels=(64, 128, 128),
    down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
    up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
    attention_head_dim=(2, 4, 4),
    norm_num_groups=16,
    use_linear_projection=True,
)
images, names = load_training_faces(limit=8000, progress=False)
batch = lambda g, b: images[torch.randint(len(images), (b,), generator=g)].float().div(127.5).sub(1)
held = load_faces(32, "heldout", size=64)


def load_vae():
    vae = build_model(VAE)
    vae.load_state_dict(torch.load(OUT / "vae.pt"))
    vae.register_to_config(scaling_factor=torch.load(OUT / "scale.pt"))
    return vae.eval().requires_grad_(False)


CTX = torch.zeros(1, 1, 64)
if stage == "vae":
    vae = build_model(VAE).train()
    opt = torch.optim.Adam(vae.parameters(), lr=1e-3)
    g = make_generator(0)
    t0, hist, step = time.time(), [], 0
    while time.time() - t0 < minutes * 60:
        x = batch(g, 32)
        post = vae.encode(x).latent_dist
        z = post.sample(generator=g)
        rec = vae.decode(z).sample
        loss = (
            (rec - x).abs().mean() + 0.2 * (1 - ms_ssim(rec.clamp(-1, 1), x)).mean() + 1e-6 * post.kl().mean()
        )
        opt.zero_grad()
        loss.backward()
        opt.step()
        hist.append(loss.item())
        step += 1
        if step % 100 == 0:
            print("vae", step, round(st.mean(hist[-100:]), 4), "%.0fs" % (time.time() - t0), flush=True)
    vae.eval()
    with torch.no_grad():
        z = vae.encode(held).latent_dist.mode()
        rec = vae.decode(z).sample.clamp(-1, 1)
        zs = torch.cat([vae.encode(batch(g, 64)).latent_dist.mode() for _ in range(4)])
    print(
        "vae steps", step, "held-out recon psnr %.2f" % psnr(rec, held).mean(), "latent std %.3f" % zs.std()
    )
    torch.save(vae.state_dict(), OUT / "vae.pt")
    torch.save(1 / zs.std().item(), OUT / "scale.pt")
elif stage == "prior":
    vae = load_vae()
    sf = vae.config.scaling_factor
    with torch.no_grad():
        Z = (
            torch.cat(
                [
                    vae.encode(images[i : i + 256].float().div(127.5).sub(1)).latent_dist.mode()
                    for i in range(0, len(images), 256)
                ]
            )
            * sf
        )
    print("latents", tuple(Z.shape), "std %.3f" % Z.std(), flush=True)
    unet = build_model(UNET).train()
    sched = make_scheduler("ddim", beta_schedule="scaled_linear")
    opt = torch.optim.AdamW(unet.parameters(), lr=5e-4)
    g = make_generator(0)
    t0, hist, step = time.time(), [], 0
    ema = build_model(UNET)
    ema.load_state_dict(unet.state_dict())
    ema.requires_grad_(False)
    while time.time() - t0 < minutes * 60:
        z = Z[torch.randint(len(Z), (32,), generator=g)]
        t = torch.randint(1000, (32,), generator=g)
        n = torch.randn(z.shape, generator=g)
        loss = F.mse_loss(
            unet(noise_to_step(z, t, sched, noise=n), t, encoder_hidden_states=CTX.expand(32, -1, -1)).sample,
            n,
        )
        opt.zero_grad()
        loss.backward()
        opt.step()
        hist.append(loss.item())
        step += 1
        with torch.no_grad():
            for p, q in zip(ema.parameters(), unet.parameters()):
                p.lerp_(q, 1 - min(0.999, (1 + step) / (10 + step)))
        if step % 100 == 0:
            print("prior", step, round(st.mean(hist[-100:]), 4), "%.0fs" % (time.time() - t0), flush=True)
    torch.save(ema.state_dict(), OUT / "unet.pt")
    sched.save_pretrained(OUT / "sched")
    print("prior steps", step)
elif stage == "ir":
    import restoration_nb.instant_restore as I
    from restoration_nb.instant_restore_experiments import cached_landmarks

    grid, steps, las = int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
    vae = load_vae()
    unet = build_model(UNET)
    unet.load_state_dict(torch.load(OUT / "unet.pt"))
    from diffusers import DDIMScheduler

    prior = Prior("micro-ldm-probe", unet.eval(), DDIMScheduler.from_pretrained(OUT / "sched"))
    print("decoder self-attention layers:", list(I.decoder_self_attention_layers(unet)))
    heavy = (
        (
            lambda x: F.interpolate(
                F.adaptive_avg_pool2d(x, grid), size=64, mode="bilinear", align_corners=False
            )
        )
        if grid
        else None
    )
    from restoration_nb.degradations import second_order_degrade

    degrade = heavy or (lambda x, g=None: second_order_degrade(x, generator=g)[0])
    ir = I.build_instant_restorer(prior, 8, vae=vae, context=CTX)
    params = ir.trainable()
    opt = torch.optim.AdamW(params, lr=1e-3, weight_decay=0)
    g = make_generator(0)
    t0, hist = time.time(), []
    lm = {}
    for step in range(steps):
        idx = torch.randint(len(images), (8,), generator=g)
        hq = images[idx].float().div(127.5).sub(1)
        refs, theta = I.reference_views(hq, 4, g)
        cache = I.encode_references(ir, refs)
        out = I.one_step(
            ir, degrade(hq) if heavy else degrade(hq, g), cache, 249, generator=g, keep_attention=las > 0
        )
        loss = (out - hq).abs().mean() + (1 - ms_ssim(out.clamp(-1, 1), hq)).mean()
        if las > 0:
            pts = cached_landmarks(lm, idx.tolist(), hq)
            loss = loss + las * I.landmark_attention_loss(
                ir.bank.attention, pts, I.warp_points(pts, theta, 64), 64
            )
        ir.bank.attention = {}
        opt.zero_grad()
        loss.backward()
        opt.step()
        hist.append((out - hq).abs().mean().item())
        if (step + 1) % 25 == 0:
            print("ir", step + 1, "l1 %.4f" % st.mean(hist[-25:]), "%.0fs" % (time.time() - t0), flush=True)
    torch.set_grad_enabled(False)
    lq = heavy(held) if heavy else second_order_degrade(held, generator=make_generator(1))[0]
    own, _ = I.reference_views(held, 4, make_generator(2))
    other = own.roll(1, 0)
    for name, refs in (("own", own), ("other", other)):
        print(name, "psnr %.2f" % psnr(I.instant_restore(ir, lq, refs, seed=0, progress=False), held).mean())
    x = I.one_step(ir, lq, None, generator=make_generator(0)).clamp(-1, 1)
    print("none %.2f LQ %.2f" % (psnr(x, held).mean(), psnr(lq, held).mean()))
