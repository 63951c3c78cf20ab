"""Probe (not a benchmark): does the distilled identity net (priors.IdentityNet) follow dlib on the protocol's
album faces, which it never saw, clean, degraded (x4) and restored by InstantRestore?

    python benchmarks/probes/identity_net_restored.py [WEIGHTS [NAME]]
        (InstantRestore weights; default: shipped)

For each set, on the faces dlib finds both there and in the clean photo: the centred cosine of each face's
descriptor to its clean face's, by dlib and by the net, and how well the two follow each other face by face
(their correlation); and the centred cosine between the net's descriptor and dlib's of the same image.
Writes benchmarks/results/probes/identity_net_restored[_NAME]_cpu.json."""

import json, sys
from pathlib import Path

import torch

from restoration_nb.compare import paper_restorer
from restoration_nb.core import atomic_write_json
from restoration_nb.metrics import FaceEmbedder
from restoration_nb.priors import load_identity_net
from restoration_nb.quality import protocol_faces, protocol_inputs

torch.set_num_threads(1)
weights = sys.argv[1] if len(sys.argv) > 1 else None
faces = protocol_faces(64)
lq = protocol_inputs(faces.clean, "x4")
restore, _ = paper_restorer("instant", weights)
net, embedder = load_identity_net(), FaceEmbedder()
cos = lambda a, b: torch.nn.functional.cosine_similarity(a - net.mean, b - net.mean)
dlib_clean = embedder(faces.clean).embeddings
with torch.no_grad():
    net_clean = net.descriptor(faces.clean.float())
rows = {}
for name, x in (("clean", faces.clean), ("input_x4", lq), ("instant_x4", restore(lq, faces, "x4"))):
    dlib_x = embedder(x).embeddings
    with torch.no_grad():
        net_x = net.descriptor(x.float())
    ok = ~dlib_x.isnan().any(1) & ~dlib_clean.isnan().any(1)
    by_dlib, by_net = cos(dlib_x[ok], dlib_clean[ok]), cos(net_x[ok], net_clean[ok])
    follow = torch.corrcoef(torch.stack([by_dlib, by_net]))[0, 1].item() if name != "clean" else None
    rows[name] = dict(
        n=int(ok.sum()),
        dlib_cosine_to_clean=round(by_dlib.mean().item(), 3),
        net_cosine_to_clean=round(by_net.mean().item(), 3),
        per_face_correlation=None if follow is None else round(follow, 3),
        net_to_dlib_same_image=round(cos(net_x[ok], dlib_x[ok]).mean().item(), 3),
    )
name = f"_{sys.argv[2]}" if len(sys.argv) > 2 else ""
out = Path(__file__).resolve().parents[1] / "results" / "probes" / f"identity_net_restored{name}_cpu.json"
atomic_write_json(out, dict(weights=str(weights or "shipped"), faces=64, sets=rows))
print(json.dumps(rows, indent=1))
