"""Calibration of the skip-guidance scale lambda (squared norm) for the micro prior,
as run on 2026-11-23 (CPU).
Two held-out faces (0 and 3 of the first 8, second-order degraded with seed 1),
four ancestral samples each from K=350;
prints the album's PSNR to the clean face and to the degraded input, dlib identity cosine and detection rate.
The run was stopped after the lambda = 0.02 rows
(benchmarks/results/gen2res_skip_calibration_cpu.log), which fixed
SKIP_GUIDANCE_LAM = 0.02: n = 1 copies the input (35.9 dB to it), n = 20 follows it loosely (25.6 dB).
  python benchmarks/gen2res_skip_calibration.py"""

import torch, time
from restoration_nb.core import load_faces, make_generator
from restoration_nb.degradations import second_order_degrade
from restoration_nb.priors import load_prior
from restoration_nb.gen2res import generative_album
from restoration_nb.metrics import psnr, identity_similarity, FaceEmbedder

torch.set_num_threads(1)
prior = load_prior()
prior.model.float()
clean = load_faces(8, start=0)[[0, 3]]
y, _ = second_order_degrade(load_faces(8, start=0), make_generator(1))
y = y[[0, 3]]
emb = FaceEmbedder()
S = 4


def report(name, x):
    c = clean.repeat_interleave(S, 0)
    yy = y.repeat_interleave(S, 0)
    s = identity_similarity(x, c, emb)
    print(
        f"{name:34s} psnr(clean) {psnr(x, c).mean():.2f} psnr(y0) {psnr(x, yy).mean():.2f} id "
        f"{s['cosine'].nanmean():.3f} det {s['x_detected'].float().mean():.2f}",
        flush=True,
    )


for norm, lams in (("squared", [0.02, 0.1, 0.3]), ("l2", [1.0, 3.0])):
    for lam in lams:
        for n in (1, 5, 20, None):
            if n is None and lam != lams[0]:
                continue
            t0 = time.time()
            x = torch.cat(
                [
                    generative_album(
                        prior,
                        y[i],
                        size=S,
                        K=350,
                        n=n,
                        lam=lam,
                        norm=norm,
                        sampler="ddpm",
                        seed=0,
                        progress=False,
                    )
                    for i in range(2)
                ]
            )
            report(f"{norm} lam={lam} n={n} ({time.time() - t0:.0f}s)", x)
