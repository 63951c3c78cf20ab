"""Distil dlib's face descriptor into `IdentityNet` (restoration_nb.priors) and ship it.

    python benchmarks/train_identity_net.py [--steps 6000] [--threads 1]

1. dlib's descriptors of every training face (the slow part: about 20 minutes on one core), cached chunk by
   chunk in runs/identity/ (ignored), so that a stopped run goes on where it stopped;
2. the same for the held-out split, the faces the agreement is measured on;
3. `train_identity_net` from the shipped attribute classifier's trunk, then its agreement with dlib on the
   held-out faces;
4. the weights to restoration_nb/weights/identity-utkface64 (or --weights) and the numbers to
   benchmarks/results/identity_net_cpu.json."""

import argparse, sys, time
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine  # noqa: E402

from restoration_nb.core import atomic_write_json  # noqa: E402
from restoration_nb.metrics import FaceEmbedder  # noqa: E402
from restoration_nb.priors import (  # noqa: E402
    IDENTITY_NAME,
    identity_agreement,
    load_training_faces,
    save_identity_net,
    train_identity_net,
)
from restoration_nb.training import WEIGHTS_DIR  # noqa: E402

CACHE = Path("runs/identity")
RESULTS = Path(__file__).resolve().parent / "results" / "identity_net_cpu.json"
CHUNK = 1000


def descriptors(split: str, images: torch.Tensor) -> torch.Tensor:
    "dlib's descriptors of `images` (uint8), NaN where no face was found; cached in chunks under runs/."
    CACHE.mkdir(parents=True, exist_ok=True)
    embedder, parts = FaceEmbedder(cache_size=1), []
    for start in range(0, len(images), CHUNK):
        path = CACHE / f"{split}_{start:05d}.safetensors"
        if not path.exists():
            found = embedder(images[start : start + CHUNK].float().div(127.5).sub(1)).embeddings
            save_file(dict(embeddings=found.contiguous()), str(path))
            print(f"{split}: dlib descriptors of faces {start}..{start + len(found) - 1}", flush=True)
        parts.append(load_file(str(path))["embeddings"])
    return torch.cat(parts)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=6000)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--weights", type=Path, default=WEIGHTS_DIR / IDENTITY_NAME)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    train = load_training_faces(progress=False)
    heldout = load_training_faces("heldout", progress=False)
    train_targets, heldout_targets = descriptors("train", train[0]), descriptors("heldout", heldout[0])
    start = time.time()
    net = train_identity_net(train, train_targets, steps=args.steps)
    minutes = (time.time() - start) / 60
    agreement = identity_agreement(net, heldout[0].float().div(127.5).sub(1), heldout_targets)
    print(agreement)
    save_identity_net(net, args.weights, agreement, args.steps, overwrite=True)
    atomic_write_json(
        RESULTS,
        dict(
            machine=machine(torch.device("cpu")),
            command="python benchmarks/train_identity_net.py " + " ".join(argv or sys.argv[1:]),
            steps=args.steps,
            train_minutes=round(minutes, 1),
            train_faces=len(train[1]),
            train_faces_found=int((~train_targets.isnan().any(1)).sum()),
            heldout_faces=len(heldout[1]),
            heldout_agreement=agreement,
        ),
    )


if __name__ == "__main__":
    main()
