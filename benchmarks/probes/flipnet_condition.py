"""Probe (not a benchmark): does FLIPNET read its LQ condition, and which part of the restoration-mode recipe
keeps the micro prior from it?
  train: a fresh FLIPNET's LoRA + BoostHub + identity adapter (the shipped LQ face encoder, frozen) trained in
         restoration mode only for STEPS at batch 8, x0-MSE weight MSE, condition steps from [0, TC), lr LR
         (BoostHub and adapter at HUB_LR, default LR);
  checkpoint: the FLIPNET saved in a train_flipnet run folder.
Then prints, on 16 held-out faces (second-order LQ, seed 1): x0 MSE at t = 600 with the own LQ / another
face's LQ / phi = 0, and (train, or checkpoint with --sample) PSNR of a 10-step CFG 1.5 restoration at
phi 0, 1 and 2.
  python benchmarks/probes/flipnet_condition.py train STEPS MSE TC LR [HUB_LR]     e.g. train 400 1 1000 1e-3
  python benchmarks/probes/flipnet_condition.py checkpoint RUN_DIR [--sample]"""

import sys, time, statistics as st
import torch
from restoration_nb.core import load_faces, make_generator
from restoration_nb.degradations import second_order_degrade
from restoration_nb.flipnet import (
    FlipConfig,
    build_flipnet,
    dual_stream,
    flipnet_loss,
    flipnet_restore,
    load_flipnet,
    load_flipnet_state,
    set_phi,
)
from restoration_nb.backbones import noise_to_step, predict_x0
from restoration_nb.metrics import psnr
from restoration_nb.priors import caption, face_labels, load_training_faces
from restoration_nb.training import CHECKPOINT, load_checkpoint

t0 = time.time()
net = build_flipnet("micro-sd-faces64", 1.0, 8, 0)
if sys.argv[1] == "checkpoint":
    state = load_checkpoint(f"{sys.argv[2]}/{CHECKPOINT}", "cpu")
    load_flipnet_state(net, state["trainable"])
    print("checkpoint at step", state["log"]["step"])
    sample = "--sample" in sys.argv
else:
    steps, mse, tc, lr = int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
    hub_lr = float(sys.argv[6]) if len(sys.argv) > 6 else lr
    cfg, sample = FlipConfig(mse_weight=mse, lr=lr, degradation_share=0.0, condition_steps=tc), True
    net.autoencoders.load_state_dict(load_flipnet().autoencoders.state_dict())
    net.autoencoders.requires_grad_(False)
    images, names = load_training_faces(limit=6000, progress=False)
    captions = [caption(face_labels(n)) for n in names]
    hub = [p for n, p in net.model.named_parameters() if p.requires_grad and ".processor." in n] + list(
        net.adapter.parameters()
    )
    lora = [p for n, p in net.model.named_parameters() if p.requires_grad and ".processor." not in n]
    opt = torch.optim.AdamW([dict(params=lora, lr=lr), dict(params=hub, lr=hub_lr)], weight_decay=1e-2)
    g, hist = make_generator(0), []
    net.model.train()
    net.adapter.train()
    for step in range(steps):
        idx = torch.randint(len(images), (8,), generator=g)
        hq = images[idx].float().div(127.5).sub(1)
        lq, _ = second_order_degrade(hq, generator=g)
        loss, parts = flipnet_loss(net, hq, lq, "restoration", [captions[j] for j in idx.tolist()], g, cfg)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(lora + hub, 1.0)
        opt.step()
        hist.append(parts["diffusion"])
        if (step + 1) % 50 == 0:
            print(
                "step",
                step + 1,
                "diffusion %.4f" % st.mean(hist[-50:]),
                "%.0fs" % (time.time() - t0),
                flush=True,
            )
net.model.eval()
net.adapter.eval()
torch.set_grad_enabled(False)
hq = load_faces(16, "heldout", size=64)
lq, _ = second_order_degrade(hq, generator=make_generator(1))


def x0_mse(cond, phi, t=600):
    set_phi(net.model, phi)
    x_t = noise_to_step(hq, t, net.prior.scheduler, generator=make_generator(2))
    ctx = net.context(["face"] * len(hq), cond)
    with dual_stream(net.model):
        eps = net.model(
            torch.cat([x_t, cond]),
            torch.tensor([t] * len(hq) + [0] * len(hq)),
            encoder_hidden_states=torch.cat([ctx, ctx]),
        ).sample
    return (predict_x0(eps[: len(hq)], x_t, t, net.prior.scheduler) - hq).square().mean().item()


print(
    "x0 mse t=600: own %.4f other %.4f phi0 %.4f (LQ %.4f)"
    % (x0_mse(lq, 1.0), x0_mse(lq.roll(1, 0), 1.0), x0_mse(lq, 0.0), (lq - hq).square().mean())
)
if sample:
    for phi in (0.0, 1.0, 2.0):
        out = flipnet_restore(net, lq, phi=phi, num_steps=10, seed=0, progress=False)
        print("phi %g psnr %.2f" % (phi, psnr(out, hq).mean()), flush=True)
print("LQ psnr %.2f; %.1f min" % (psnr(lq, hq).mean(), (time.time() - t0) / 60))
