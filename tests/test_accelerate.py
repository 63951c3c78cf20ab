"""Training under accelerate: two CPU processes (`accelerate launch --multi_gpu --num_processes 2`) train like
one process with twice the batch: the micro priors, the gen2res album fine-tune (LoRA and full), the
Restoration Adapter, FLIPNET and InstantRestore."""

import json, os, subprocess, sys
import numpy as np
import pytest
import torch
from conftest import console, run_cli

# Two CPU processes: accelerate 1.15 starts them through torchrun with --multi_gpu
# (its --cpu --num_processes 2 needs MPI)
LAUNCH_2 = [
    console("accelerate"),
    "launch",
    "--multi_gpu",
    "--num_processes",
    "2",
    "--num_machines",
    "1",
    "--mixed_precision",
    "no",
    "--dynamo_backend",
    "no",
]
TINY = [
    "micro-ddpm-faces64",
    "--preset",
    "test",
    "--faces",
    "16",
    "--channels",
    "8,8,16,16",
    "--steps",
    "6",
    "--quiet",
]


# Each process of a script writes its gathered log to <out>.rank<R>.json:
# two processes printing to one pipe can interleave lines
REPORT = '''
import json, os
def report(out, log):
    with open(f"{out}.rank{os.environ.get('RANK', '0')}.json", "w") as f:
        json.dump(dict(losses=log["losses"], processes=log.get("processes")), f)
'''


def process_logs(out) -> list:
    "The logs the processes of a run that wrote to `out` reported, in rank order."
    files = sorted(out.parent.glob(f"{out.name}.rank*.json"))
    return [json.loads(f.read_text()) for f in files]


def relative_distance(a: dict, b: dict) -> float:
    "||a - b|| / ||a|| over all the tensors of two state dicts with the same keys."
    assert a.keys() == b.keys()
    num = sum((a[k].detach().float() - b[k].detach().float()).square().sum() for k in a)
    return float((num / sum(v.detach().float().square().sum() for v in a.values())).sqrt())


def checkpoint_of(run):
    return torch.load(run / "checkpoint.pt", map_location="cpu", weights_only=False)


@pytest.fixture(scope="module")
def one_process_batch_8(tmp_path_factory):
    "The checkpoint of TINY trained in one process with batch 8 (two tests compare with it)."
    out = tmp_path_factory.mktemp("runs") / "one"
    one = run_cli("train-prior", *TINY, "-o", out, "--batch-size", "8", "--device", "cpu")
    assert one.returncode == 0, one.stderr
    return checkpoint_of(out)


def test_two_processes_train_like_one_with_twice_the_batch(tmp_path, one_process_batch_8):
    launch = [
        *LAUNCH_2,
        console("restoration-nb"),
        "train-prior",
        *TINY,
        "-o",
        str(tmp_path / "two"),
        "--batch-size",
        "4",
    ]
    two = subprocess.run(launch, capture_output=True, text=True, timeout=600)
    assert two.returncode == 0, two.stderr[-3000:]
    assert two.stdout.count("step 6 of 6") == 1 and "(2 processes)" in two.stdout, (
        two.stdout
    )  # the main process reports, once
    a, b = one_process_batch_8, checkpoint_of(tmp_path / "two")
    assert (a["log"]["processes"], b["log"]["processes"]) == (1, 2)
    la, lb = np.array(a["log"]["losses"]), np.array(b["log"]["losses"])
    assert len(la) == len(lb) == 6
    np.testing.assert_allclose(lb, la, rtol=1e-3, atol=1e-5)
    assert not np.allclose(la[0], la[-1]), "the loss must move, else the comparison says nothing"
    assert (
        relative_distance(a["model"], b["model"]) < 1e-3
    )  # Adam magnifies float-order noise in near-zero gradients, so per weight
    assert list((tmp_path / "two").iterdir()) == [tmp_path / "two" / "checkpoint.pt"], (
        "one checkpoint, written by the main process"
    )


def test_a_different_batch_gives_a_different_curve(tmp_path, one_process_batch_8):
    "The check above can fail: one process with the per-process batch (4) trains differently from one with 8."
    small = run_cli("train-prior", *TINY, "-o", tmp_path / "small", "--batch-size", "4", "--device", "cpu")
    assert small.returncode == 0, small.stderr
    la = np.array(checkpoint_of(tmp_path / "small")["log"]["losses"])
    lb = np.array(one_process_batch_8["log"]["losses"])
    assert len(la) == len(lb) == 6 and not np.allclose(la, lb, rtol=1e-3, atol=1e-5)


@pytest.mark.parametrize(
    "flag, value, message",
    [
        ("--grad-accum", "0", "grad_accum=0; expected an integer >= 1"),
        ("--batch-size", "0", "batch_size=0; expected an integer >= 1"),
    ],
)
def test_bad_training_options_are_refused(tmp_path, flag, value, message):
    r = run_cli("train-prior", *TINY, "-o", tmp_path / "run", flag, value, "--device", "cpu")
    assert r.returncode == 2 and message in r.stderr, r.stderr


ALBUM_SCRIPT = (
    REPORT
    + '''
import json, sys, torch
from restoration_nb.backbones import build_model
from restoration_nb.priors import Prior, micro_ddpm_faces64_config, prior_scheduler
from restoration_nb.gen2res_experiments import constrain_prior
out, batch_size, methods = sys.argv[1], int(sys.argv[2]), sys.argv[3].split(",")
prior = Prior(name="tiny", model=build_model(micro_ddpm_faces64_config((8, 8, 16, 16)), seed=0).eval(),
              scheduler=prior_scheduler())
album = torch.rand(6, 3, 64, 64, generator=torch.Generator().manual_seed(1)) * 2 - 1
for method in methods:
    constrained, log = constrain_prior(prior, album, "fast", method=method, steps=5, batch_size=batch_size,
                                       lr=1e-3, out_dir=f"{out}-{method}", progress=False)
    report(f"{out}-{method}", log)
'''
)


def test_album_fine_tune_under_two_processes_matches_one_with_twice_the_batch(tmp_path):
    """The same script runs plainly and under `accelerate launch --num_processes 2 --cpu` (the gen2res album
    fine-tune, LoRA and full, one after the other in each run)."""
    script = tmp_path / "constrain.py"
    script.write_text(ALBUM_SCRIPT)
    one = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "one"), "4", "lora,full"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert one.returncode == 0, one.stderr[-3000:]
    launch = [*LAUNCH_2, str(script), str(tmp_path / "two"), "2", "lora,full"]
    two = subprocess.run(launch, capture_output=True, text=True, timeout=600)
    assert two.returncode == 0, two.stderr[-3000:]
    for method in ("lora", "full"):
        la = process_logs(tmp_path / f"one-{method}")[0]["losses"]
        lbs = [log["losses"] for log in process_logs(tmp_path / f"two-{method}")]
        assert len(lbs) == 2 and lbs[0] == lbs[1], f"{method}: both processes log the same (gathered) losses"
        np.testing.assert_allclose(lbs[0], la, rtol=1e-3, atol=1e-5, err_msg=method)
        a, b = (
            torch.load(tmp_path / f"{k}-{method}" / "checkpoint.pt", weights_only=False)["trainable"]
            for k in ("one", "two")
        )
        assert relative_distance(a, b) < 1e-3, method


ADAPTER_SCRIPT = (
    REPORT
    + '''
import json, sys, torch
from restoration_nb.restoration_adapter_experiments import train_restoration_adapter
out, batch_size = sys.argv[1], int(sys.argv[2])
faces = (torch.randint(0, 256, (8, 3, 64, 64), dtype=torch.uint8, generator=torch.Generator().manual_seed(2)),
         [f"{20 + i}_{i % 2}_0_2017011617104852{i}.jpg" for i in range(8)])
ap, log = train_restoration_adapter("micro-sd-faces64", faces=faces, cfg="test", steps=4,
                                    batch_size=batch_size, lr=1e-3, out_dir=out, progress=False)
report(out, log)
'''
)


def test_adapter_training_under_two_processes_matches_one_with_twice_the_batch(tmp_path):
    """The Restoration Adapter's loop (adapters and LoRA in one DDP module) under `accelerate launch`, against
    one process."""
    script = tmp_path / "adapter.py"
    script.write_text(ADAPTER_SCRIPT)
    one = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "one"), "4"], capture_output=True, text=True, timeout=600
    )
    assert one.returncode == 0, one.stderr[-3000:]
    two = subprocess.run(
        [*LAUNCH_2, str(script), str(tmp_path / "two"), "2"], capture_output=True, text=True, timeout=600
    )
    assert two.returncode == 0, two.stderr[-3000:]
    la = process_logs(tmp_path / "one")[0]
    lbs = process_logs(tmp_path / "two")
    assert la["processes"] == 1 and [r["processes"] for r in lbs] == [2, 2]
    np.testing.assert_allclose(lbs[0]["losses"], la["losses"], rtol=1e-3, atol=1e-5)
    a, b = (
        torch.load(tmp_path / k / "checkpoint.pt", weights_only=False)["trainable"] for k in ("one", "two")
    )
    for part in ("lora", "adapters"):
        assert relative_distance(a[part], b[part]) < 1e-3, part


# FLIPNET and InstantRestore: several optimizers, a discriminator, gradients averaged per optimizer (not DDP)
TWO_OPTIMIZER_SCRIPT = (
    REPORT
    + '''
import json, sys, torch
from restoration_nb.priors import load_training_faces
which, out, batch_size, accum = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
images, names = load_training_faces("train", limit=16, progress=False)
# no face found: the faces of a batch differ in how many landmarks the loss counts
images[::3] = torch.randint(0, 256, images[::3].shape, dtype=torch.uint8,
                            generator=torch.Generator().manual_seed(0))
faces = (images, names)
if which == "flipnet":
    from restoration_nb.flipnet_experiments import train_flipnet
    net, log = train_flipnet("micro-sd-faces64", faces=faces, cfg="test", ae_steps=3, assoc_steps=2, steps=4,
                             batch_size=batch_size, grad_accum=accum, seed=1, out_dir=out, progress=False)
else:
    from restoration_nb.instant_restore_experiments import train_instant_restore
    ir, log = train_instant_restore("micro-sd-faces64", faces=faces, cfg="test", steps=4,
                                    batch_size=batch_size, grad_accum=accum, out_dir=out, progress=False)
report(out, log)
'''
)


def entries(losses) -> list:
    "Every logged entry of a run, in order (FLIPNET logs per stage)."
    return [e for stage in losses.values() for e in stage] if isinstance(losses, dict) else losses


def numbers(rows) -> np.ndarray:
    "Every number of every entry, in one flat array (entries may differ in their parts)."
    return np.array([v for e in rows for k, v in sorted(e.items()) if not isinstance(v, str)], dtype=float)


def run_two_optimizer_loop(tmp_path, which, name, batch_size, accum=1, processes=1):
    "Train `which` in a fresh process (or two, under accelerate launch); its gathered log and checkpoint."
    script = tmp_path / "train.py"
    script.write_text(TWO_OPTIMIZER_SCRIPT)
    args = [str(script), which, str(tmp_path / name), str(batch_size), str(accum)]
    cmd = [*LAUNCH_2, *args] if processes == 2 else [sys.executable, *args]
    # torchrun runs each process on one thread; so do the one-process runs,
    # so that the float order is the same
    r = subprocess.run(
        cmd, capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"}
    )
    assert r.returncode == 0, r.stderr[-3000:]
    logs = process_logs(tmp_path / name)
    assert len(logs) == processes and all(log == logs[0] for log in logs), (
        "every process logs the same (gathered) losses"
    )
    assert logs[0]["processes"] == processes
    return logs[0], torch.load(tmp_path / name / "checkpoint.pt", weights_only=False)


@pytest.mark.parametrize("which, batch_size", [("flipnet", 4), ("instant", 2)])
def test_two_optimizer_training_under_two_processes_matches_one_with_twice_the_batch(
    tmp_path, which, batch_size
):
    """FLIPNET (autoencoders + discriminator, then LoRA/BoostHub/adapter) and InstantRestore (LoRA +
    discriminator) under `accelerate launch`: the same losses as one process with twice the batch, and exactly
    those of one process that accumulates the two halves (the same float order), so the split into slices is
    right and not merely close."""
    one, ckpt_one = run_two_optimizer_loop(tmp_path, which, "one", 2 * batch_size)
    halves, ckpt_halves = run_two_optimizer_loop(tmp_path, which, "halves", batch_size, accum=2)
    two, ckpt_two = run_two_optimizer_loop(tmp_path, which, "two", batch_size, processes=2)
    rows_one, rows_two = entries(one["losses"]), entries(two["losses"])
    assert len(rows_one) == len(rows_two) == (9 if which == "flipnet" else 4)
    assert [e.keys() for e in rows_two] == [e.keys() for e in rows_one]
    assert [e.get("mode", e.get("refs")) for e in rows_two] == [
        e.get("mode", e.get("refs")) for e in rows_one
    ]
    np.testing.assert_allclose(
        numbers(rows_two), numbers(rows_one), rtol=2e-3, atol=2e-4
    )  # GAN + Adam magnify float-order noise
    np.testing.assert_allclose(numbers(rows_two), numbers(entries(halves["losses"])), rtol=1e-6, atol=1e-5)
    assert not np.allclose(rows_one[0]["loss"], rows_one[-1]["loss"]), (
        "the loss must move, else the comparison says nothing"
    )
    if which == "flipnet":
        assert {e["mode"] for e in two["losses"]["flipnet"]} == {"r", "d"}, (
            "both modes, so the identity adapter trains too"
        )
    else:
        assert any(e["las"] > 0 for e in rows_two), (
            "real faces, so the landmark loss (normalised by the whole batch's pairs) counts"
        )
    for part in ckpt_one["trainable"]:
        assert relative_distance(ckpt_one["trainable"][part], ckpt_two["trainable"][part]) < 2e-3, part
        assert relative_distance(ckpt_halves["trainable"][part], ckpt_two["trainable"][part]) < 1e-6, part
    assert relative_distance(ckpt_halves["disc"], ckpt_two["disc"]) < 1e-6
