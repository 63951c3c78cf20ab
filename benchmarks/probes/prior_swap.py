"""What swapping the conditional prior does to the restorers built on it, before and after retraining them.

The campaign's micro-sd-faces64 (benchmarks/campaign/micro-sd-faces64/prior) is compared with the shipped one
(or the folder --old names): each restorer at its defaults restores the same 16 held-out faces degraded by
tier x4 (seed 0), on each prior; the retrained restorers in benchmarks/campaign/ are run on the campaign
prior. Mean PSNR (dB) to the clean faces goes to benchmarks/results/prior_swap_cpu.json.
It decided which restorers to retrain before the swap. The swap has since shipped those weights and removed
them from benchmarks/campaign/, so to run it again check out the commit before the swap (b117cb5~1).

    python benchmarks/probes/prior_swap.py [--old FOLDER]
"""

import argparse
import json
from pathlib import Path

import torch

from restoration_nb.core import atomic_write_json, load_faces, make_generator
from restoration_nb.degradations import degrade_tier
from restoration_nb.flipnet import flipnet_restore, load_flipnet
from restoration_nb.instant_restore import instant_restore, load_instant_restore
from restoration_nb.metrics import psnr
from restoration_nb.priors import load_prior
from restoration_nb.restoration_adapter import adapter_restore, load_restoration_adapter

ROOT = Path(__file__).resolve().parents[2]
CAMPAIGN = ROOT / "benchmarks" / "campaign"


def restorers(weights: dict, prior_folder) -> dict:
    """Each restorer as a function of the degraded faces, loaded on the prior in `prior_folder` (a fresh copy
    each)."""
    references = load_faces(20, "heldout", size=64)[16:20]  # InstantRestore's: four other held-out faces

    def flipnet(lq):
        net = load_flipnet(weights.get("flipnet"), prior=load_prior(prior_folder))
        return flipnet_restore(net, lq, seed=0, progress=False)

    def adapter(lq):
        adapted = load_restoration_adapter(weights.get("adapter"), prior=load_prior(prior_folder))
        return adapter_restore(adapted, lq, seed=0, progress=False)

    def instant(lq):
        ir = load_instant_restore(weights.get("instant"), prior=load_prior(prior_folder))
        return instant_restore(ir, lq, references, seed=0, progress=False)

    return dict(flipnet=flipnet, adapter=adapter, instant=instant)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--old", default="micro-sd-faces64", help="the prior the shipped restorers were trained on"
    )
    args = ap.parse_args()
    torch.set_num_threads(1)
    clean = load_faces(16, "heldout", size=64)
    lq = degrade_tier(clean, "x4", generator=make_generator(0))
    rows = [dict(restorer="degraded input", prior=None, psnr=round(psnr(lq, clean).mean().item(), 2))]
    names = dict(flipnet="flipnet-micro-sd-faces64", adapter="restoration-adapter-micro-sd-faces64")
    retrained = {k: CAMPAIGN / name for k, name in names.items() if (CAMPAIGN / name).is_dir()}
    runs = [
        ("shipped", {}, args.old),
        ("shipped", {}, CAMPAIGN / "micro-sd-faces64" / "prior"),
        ("retrained", retrained, CAMPAIGN / "micro-sd-faces64" / "prior"),
    ]
    for weights_tag, weights, prior in runs:
        for name, restore in restorers(weights, prior).items():
            if weights_tag == "retrained" and name not in retrained:
                continue
            score = round(psnr(restore(lq), clean).mean().item(), 2)
            where = Path(prior).resolve().relative_to(ROOT) if Path(prior).exists() else prior
            rows.append(dict(restorer=f"{weights_tag} {name}", prior=str(where), psnr=score))
            print(json.dumps(rows[-1]), flush=True)
    out = ROOT / "benchmarks" / "results" / "prior_swap_cpu.json"
    atomic_write_json(out, dict(faces=16, tier="x4", seed=0, rows=rows))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
