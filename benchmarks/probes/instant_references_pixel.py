"""Probe (not a benchmark): with an LQ that keeps only a GRID x GRID layout, (GRID 0: the second-order
degradation) does InstantRestore's one-step network, on the shipped pixel-space micro prior, learn to use its
references? Trains LoRA (L1 + MS-SSIM, plus the landmark loss at weight LAS) for STEPS, then prints held-out
PSNR with the face's own views, another face's, none, and the LQ.
  python benchmarks/probes/instant_references_pixel.py GRID STEPS LR LAS T     e.g. 4 800 1e-3 0 249"""

import sys, time, torch, statistics as st
import torch.nn.functional as F
from restoration_nb.instant_restore import *
from restoration_nb.instant_restore_experiments import cached_landmarks
from restoration_nb.core import load_faces, make_generator
from restoration_nb.metrics import psnr, ms_ssim
from restoration_nb.priors import load_training_faces

grid, steps, lr, las, T = (
    int(sys.argv[1]),
    int(sys.argv[2]),
    float(sys.argv[3]),
    float(sys.argv[4]),
    int(sys.argv[5]),
)
torch.manual_seed(0)
from restoration_nb.degradations import second_order_degrade


def heavy(x, g=None):
    "The LQ: a GRID x GRID layout, upsampled; GRID 0: the second-order degradation (drawn from `g`)."
    if grid == 0:
        return second_order_degrade(x, generator=g)[0]
    return F.interpolate(
        F.adaptive_avg_pool2d(x, grid), size=x.shape[-1], mode="bilinear", align_corners=False
    )


images, names = load_training_faces(limit=3000, progress=False)
ir = build_instant_restorer("micro-sd-faces64", 8, seed=0)
params = ir.trainable()
opt = torch.optim.AdamW(params, lr=lr, weight_decay=0)
g = make_generator(0)
t0 = time.time()
hist = []
lm_cache = {}
for step in range(steps):
    idx = torch.randint(len(images), (8,), generator=g)
    hq = images[idx].float().div(127.5).sub(1)
    refs, theta = reference_views(hq, 4, g)
    cache = encode_references(ir, refs)
    out = one_step(ir, heavy(hq, g), cache, T, generator=g, keep_attention=las > 0)
    loss = (out - hq).abs().mean() + (1 - ms_ssim(out.clamp(-1, 1), hq)).mean()
    if las > 0:
        pts = cached_landmarks(lm_cache, idx.tolist(), hq)
        rp = warp_points(pts, theta, 64)
        loss = loss + las * landmark_attention_loss(ir.bank.attention, pts, rp, 64, 1.0)
    ir.bank.attention = {}
    opt.zero_grad()
    loss.backward()
    opt.step()
    hist.append((out - hq).abs().mean().item())
    if (step + 1) % 25 == 0:
        print("step", step + 1, "l1 %.4f" % st.mean(hist[-25:]), "%.0fs" % (time.time() - t0), flush=True)
torch.set_grad_enabled(False)
hq = load_faces(32, "heldout", size=64)
lq = heavy(hq, make_generator(1))
own, _ = reference_views(hq, 4, make_generator(2))
other = own.roll(1, 0)
for name, refs in (("own", own), ("other", other)):
    print(name, "psnr %.2f" % psnr(instant_restore(ir, lq, refs, t=T, seed=0, progress=False), hq).mean())
x = one_step(ir, lq, None, T, generator=make_generator(0)).clamp(-1, 1)
print("none %.2f LQ %.2f" % (psnr(x, hq).mean(), psnr(lq, hq).mean()))
