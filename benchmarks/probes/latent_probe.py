"""The latent recipe of prior_recipe.py (a probe, not a tool): a micro AutoencoderKL, 64 px RGB <-> 16x16x4,
trained with L1 + MS-SSIM + KL and, in its second half, a small hinge patch-adversarial term; then a latent
UNet2DConditionModel with the pixel prior's prompts, v-prediction with min-SNR 5 weights, bf16 autocast and
EMA. Both stages resume from their files in the run folder."""

from __future__ import annotations
import json, time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from restoration_nb.core import load_faces, make_generator
from restoration_nb.backbones import build_model, make_scheduler, sample_from_step
from restoration_nb.metrics import ms_ssim, psnr
from restoration_nb.priors import (
    PROMPT_DIM,
    PROMPT_VOCAB,
    GuidedDenoiser,
    PromptEmbedding,
    caption,
    face_labels,
    load_training_faces,
    tokenize,
)
from restoration_nb.training import PatchDiscriminator

VAE_CONFIG = dict(
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
UNET_CONFIG = dict(
    _class_name="UNet2DConditionModel",
    sample_size=16,
    in_channels=4,
    out_channels=4,
    norm_num_groups=32,
    block_out_channels=(64, 128, 192),
    layers_per_block=1,
    attention_head_dim=(2, 4, 6),
    down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
    up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
    cross_attention_dim=PROMPT_DIM,
    use_linear_projection=True,
)
BATCH, LR, KL, ADV, MIN_SNR = 16, 1e-3, 1e-6, 0.05, 5.0


def to_unit(images: torch.Tensor) -> torch.Tensor:
    return images.float().div(127.5).sub(1)


def train_vae(images: torch.Tensor, minutes: float, folder: Path) -> tuple[torch.nn.Module, dict]:
    "The autoencoder after `minutes` of training (resumed from folder/vae.pt), and its log."
    vae = build_model(VAE_CONFIG, seed=0, device="cpu", dtype=torch.float32).train()
    disc = PatchDiscriminator()
    opt = torch.optim.AdamW(vae.parameters(), lr=LR, weight_decay=0.0)
    opt_d = torch.optim.AdamW(disc.parameters(), lr=LR, betas=(0.5, 0.9))
    g, log = make_generator(0), dict(step=0, minutes=0.0, losses=[])
    path = folder / "vae.pt"
    if path.exists():
        state = torch.load(path, weights_only=False)
        vae.load_state_dict(state["vae"])
        disc.load_state_dict(state["disc"])
        log = state["log"]
        return vae.eval(), log
    start = time.time()
    while log["minutes"] < minutes:
        x = to_unit(images[torch.randint(len(images), (BATCH,), generator=g)])
        with torch.autocast("cpu", dtype=torch.bfloat16):
            post = vae.encode(x).latent_dist
            rec = vae.decode(post.sample(generator=g)).sample.float()
        loss = (rec - x).abs().mean() + (1 - ms_ssim(rec.clamp(-1, 1), x)).mean() + KL * post.kl().mean()
        adversarial = log["minutes"] >= minutes / 2
        if adversarial:
            with torch.autocast("cpu", dtype=torch.bfloat16):
                loss = loss - ADV * disc(rec).float().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if adversarial:
            with torch.autocast("cpu", dtype=torch.bfloat16):
                d_loss = F.relu(1 - disc(x).float()).mean() + F.relu(1 + disc(rec.detach()).float()).mean()
            opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            opt_d.step()
        log["step"] += 1
        log["losses"].append(round(loss.item(), 5))
        log["minutes"] = (time.time() - start) / 60
    torch.save(dict(vae=vae.state_dict(), disc=disc.state_dict(), log=log), path)
    return vae.eval(), log


@torch.no_grad()
def encode_all(vae, images: torch.Tensor) -> torch.Tensor:
    """Latent means of `images` (N, 4, 16, 16), encoded under bf16 autocast (no mirror images: a probe sees
    about one epoch)."""
    with torch.autocast("cpu", dtype=torch.bfloat16):
        return torch.cat(
            [vae.encode(to_unit(chunk)).latent_dist.mode().float() for chunk in images.split(256)]
        )


def train_unet(latents: torch.Tensor, names: list[str], minutes: float, folder: Path):
    "(EMA UNet, EMA prompts, log) after `minutes` of latent training."
    unet = build_model(UNET_CONFIG, seed=0, device="cpu", dtype=torch.float32).train()
    ema = build_model(UNET_CONFIG, seed=0, device="cpu", dtype=torch.float32).eval().requires_grad_(False)
    ema.load_state_dict(unet.state_dict())
    prompts, ema_prompts = PromptEmbedding(), PromptEmbedding().requires_grad_(False)
    ema_prompts.load_state_dict(prompts.state_dict())
    params = [*unet.parameters(), *prompts.parameters()]
    opt = torch.optim.AdamW(params, lr=8e-4, weight_decay=0.0)
    abar = make_scheduler("ddpm", beta_schedule="linear", prediction_type="v_prediction").alphas_cumprod
    ids_all = torch.tensor([tokenize(caption(face_labels(n))) for n in names])
    g, log, start = make_generator(0), dict(step=0, minutes=0.0, losses=[]), time.time()
    while log["minutes"] < minutes:
        for group in opt.param_groups:
            group["lr"] = 8e-4 * min(1.0, (log["step"] + 1) / 100)
        idx = torch.randint(len(latents), (BATCH,), generator=g)
        t = torch.randint(len(abar), (BATCH,), generator=g)
        eps = torch.randn((BATCH, 4, 16, 16), generator=g)
        ids = ids_all[idx].clone()
        u = torch.rand(BATCH, 3, generator=g)
        ids[:, 1:][u[:, 1:] < 0.2] = PROMPT_VOCAB.index("any")
        ids[u[:, 0] < 0.1] = 0
        a = abar[t].view(-1, 1, 1, 1)
        z_t = a.sqrt() * latents[idx] + (1 - a).sqrt() * eps
        v = a.sqrt() * eps - (1 - a).sqrt() * latents[idx]
        with torch.autocast("cpu", dtype=torch.bfloat16):
            err = (
                (unet(z_t, t, encoder_hidden_states=prompts(ids)).sample.float() - v).square().mean((1, 2, 3))
            )
        snr = abar[t] / (1 - abar[t])
        loss = (err * snr.clamp(max=MIN_SNR) / (snr + 1)).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        decay = min(0.9995, (1 + log["step"]) / (10 + log["step"]))
        with torch.no_grad():
            for e, m in ((ema, unet), (ema_prompts, prompts)):
                for pe, pm in zip(e.parameters(), m.parameters()):
                    pe.lerp_(pm, 1 - decay)
        log["step"] += 1
        log["losses"].append(round(loss.item(), 5))
        log["minutes"] = (time.time() - start) / 60
    return ema, ema_prompts, log


def probe(args, out: Path):
    """(report, draw) of the latent recipe: draw(n, prompts) samples n faces in [-1, 1] as prior_recipe.py's
    pixel priors do."""
    out.mkdir(parents=True, exist_ok=True)
    images, names = load_training_faces(progress=False)
    vae, vae_log = train_vae(images, args.vae_minutes, out)
    vae.requires_grad_(False)
    held = load_faces(256, start=512)
    with torch.no_grad():
        rec = torch.cat([vae.decode(vae.encode(c).latent_dist.mode()).sample for c in held.split(64)]).clamp(
            -1, 1
        )
    t0 = time.time()
    latents = encode_all(vae, images)
    encode_minutes = (time.time() - t0) / 60
    scale = 1 / latents.std().item()
    unet, prompts, log = train_unet(latents * scale, names, args.minutes, out)
    ddim = make_scheduler("ddim", beta_schedule="linear", prediction_type="v_prediction", clip_sample=False)

    def draw(n, caps):
        samples = []
        for b, begin in enumerate(range(0, n, 64)):
            k = min(64, n - begin)
            z = torch.randn((k, 4, 16, 16), generator=make_generator(b))
            denoiser = GuidedDenoiser(
                unet, prompts.encode(caps[begin : begin + k]), prompts.encode([""] * k), 2.0
            )
            z = sample_from_step(
                denoiser, z, 999, ddim, num_steps=50, generator=make_generator(b + 1), progress=False
            )
            with torch.no_grad():
                samples.append(vae.decode(z / scale).sample.clamp(-1, 1))
        return torch.cat(samples)

    report = dict(
        prior="latent micro-sd (probe)",
        vae=dict(
            config=VAE_CONFIG,
            steps=vae_log["step"],
            minutes=round(vae_log["minutes"], 2),
            params=sum(p.numel() for p in vae.parameters()),
            heldout_psnr_256=round(psnr(rec, held).mean().item(), 2),
            heldout_ms_ssim_256=round(ms_ssim(rec, held).mean().item(), 4),
            encode_minutes=round(encode_minutes, 2),
            latent_scale=round(scale, 4),
        ),
        config=dict(
            unet=UNET_CONFIG,
            batch_size=BATCH,
            lr=8e-4,
            min_snr=MIN_SNR,
            mixed_precision="bf16",
            prediction_type="v_prediction",
        ),
        steps=log["step"],
        train_minutes=round(log["minutes"], 2),
        samples_seen=log["step"] * BATCH,
        samples_per_s=round(log["step"] * BATCH / (log["minutes"] * 60), 2),
        loss_first_50=round(float(np.mean(log["losses"][:50])), 4),
        loss_last_50=round(float(np.mean(log["losses"][-50:])), 4),
        params=sum(p.numel() for p in unet.parameters()),
    )
    (out / "report.json").write_text(json.dumps(report, indent=1))
    return report, draw
