"""Training under accelerate: two CPU processes (`accelerate launch --multi_gpu --num_processes 2`) train like one process
with twice the batch: the micro priors, the gen2res album fine-tune (LoRA and full) and the Restoration Adapter."""
import json, subprocess, sys
import numpy as np
import pytest
import torch
from conftest import console, run_cli

# Two CPU processes: accelerate 1.15 starts them through torchrun with --multi_gpu (its --cpu --num_processes 2 needs MPI)
LAUNCH_2 = [console("accelerate"), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no",
            "--dynamo_backend", "no"]
TINY = ["micro-ddpm-faces64", "--preset", "test", "--faces", "16", "--channels", "8,8,16,16", "--steps", "6", "--quiet"]


def relative_distance(a: dict, b: dict) -> float:
    "||a - b|| / ||a|| over all the tensors of two state dicts with the same keys."
    assert a.keys() == b.keys()
    num = sum((a[k].float() - b[k].float()).square().sum() for k in a)
    return float((num / sum(v.float().square().sum() for v in a.values())).sqrt())


def checkpoint_of(run):
    return torch.load(run / "checkpoint.pt", map_location="cpu", weights_only=False)


def test_two_processes_train_like_one_with_twice_the_batch(tmp_path):
    one = run_cli("train-prior", *TINY, "-o", tmp_path / "one", "--batch-size", "8", "--device", "cpu")
    assert one.returncode == 0, one.stderr
    launch = [*LAUNCH_2, console("restoration-nb"), "train-prior", *TINY, "-o", str(tmp_path / "two"), "--batch-size", "4"]
    two = subprocess.run(launch, capture_output=True, text=True, timeout=600)
    assert two.returncode == 0, two.stderr[-3000:]
    assert two.stdout.count("step 6 of 6") == 1 and "(2 processes)" in two.stdout, two.stdout      # the main process reports, once
    a, b = checkpoint_of(tmp_path / "one"), checkpoint_of(tmp_path / "two")
    assert (a["log"]["processes"], b["log"]["processes"]) == (1, 2)
    la, lb = np.array(a["log"]["losses"]), np.array(b["log"]["losses"])
    assert len(la) == len(lb) == 6
    np.testing.assert_allclose(lb, la, rtol=1e-3, atol=1e-5)
    assert not np.allclose(la[0], la[-1]), "the loss must move, else the comparison says nothing"
    assert relative_distance(a["model"], b["model"]) < 1e-3      # Adam magnifies float-order noise in near-zero gradients, so per weight
    assert list((tmp_path / "two").iterdir()) == [tmp_path / "two" / "checkpoint.pt"], "one checkpoint, written by the main process"


def test_a_different_batch_gives_a_different_curve(tmp_path):
    "The check above can fail: one process with the per-process batch (4) trains differently from one with 8."
    small = run_cli("train-prior", *TINY, "-o", tmp_path / "small", "--batch-size", "4", "--device", "cpu")
    big = run_cli("train-prior", *TINY, "-o", tmp_path / "big", "--batch-size", "8", "--device", "cpu")
    assert small.returncode == big.returncode == 0, small.stderr + big.stderr
    la, lb = (np.array(checkpoint_of(tmp_path / k)["log"]["losses"]) for k in ("small", "big"))
    assert not np.allclose(la, lb, rtol=1e-3, atol=1e-5)


@pytest.mark.parametrize("flag, value, message", [("--grad-accum", "0", "grad_accum=0; expected an int >= 1"),
                                                  ("--batch-size", "0", "batch_size=0; expected an int >= 1")])
def test_bad_training_options_are_refused(tmp_path, flag, value, message):
    r = run_cli("train-prior", *TINY, "-o", tmp_path / "run", flag, value, "--device", "cpu")
    assert r.returncode == 2 and message in r.stderr, r.stderr


ALBUM_SCRIPT = '''
import json, sys, torch
from restoration_nb.backbones import build_model
from restoration_nb.priors import Prior, micro_ddpm_faces64_config, prior_scheduler
from restoration_nb.gen2res import constrain_prior
out, batch_size, method = sys.argv[1], int(sys.argv[2]), sys.argv[3]
prior = Prior(name="tiny", model=build_model(micro_ddpm_faces64_config((8, 8, 16, 16)), seed=0).eval(), scheduler=prior_scheduler())
album = torch.rand(6, 3, 64, 64, generator=torch.Generator().manual_seed(1)) * 2 - 1
constrained, log = constrain_prior(prior, album, "fast", method=method, steps=5, batch_size=batch_size, lr=1e-3, out_dir=out, progress=False)
print(json.dumps(dict(losses=log["losses"], processes=log.get("processes"))))
'''


@pytest.mark.parametrize("method", ["lora", "full"])
def test_album_fine_tune_under_two_processes_matches_one_with_twice_the_batch(tmp_path, method):
    "The same script runs plainly and under `accelerate launch --num_processes 2 --cpu` (the gen2res album fine-tune)."
    script = tmp_path / "constrain.py"; script.write_text(ALBUM_SCRIPT)
    one = subprocess.run([sys.executable, str(script), str(tmp_path / "one"), "4", method], capture_output=True, text=True, timeout=600)
    assert one.returncode == 0, one.stderr[-3000:]
    launch = [*LAUNCH_2, str(script), str(tmp_path / "two"), "2", method]
    two = subprocess.run(launch, capture_output=True, text=True, timeout=600)
    assert two.returncode == 0, two.stderr[-3000:]
    la = json.loads(one.stdout.strip().splitlines()[-1])["losses"]
    lbs = [json.loads(line)["losses"] for line in two.stdout.strip().splitlines() if line.startswith("{")]
    assert len(lbs) == 2 and lbs[0] == lbs[1], "both processes log the same (gathered) losses"
    np.testing.assert_allclose(lbs[0], la, rtol=1e-3, atol=1e-5)
    a, b = (torch.load(tmp_path / k / "checkpoint.pt", weights_only=False)["trainable"] for k in ("one", "two"))
    assert relative_distance(a, b) < 1e-3


ADAPTER_SCRIPT = '''
import json, sys, torch
from restoration_nb.restoration_adapter import train_restoration_adapter
out, batch_size = sys.argv[1], int(sys.argv[2])
faces = (torch.randint(0, 256, (8, 3, 64, 64), dtype=torch.uint8, generator=torch.Generator().manual_seed(2)),
         [f"{20 + i}_{i % 2}_0_2017011617104852{i}.jpg" for i in range(8)])
ap, log = train_restoration_adapter("micro-sd-faces64", faces=faces, cfg="test", steps=4, batch_size=batch_size, lr=1e-3,
                                    out_dir=out, progress=False)
print(json.dumps(dict(losses=log["losses"], processes=log["processes"])))
'''


def test_adapter_training_under_two_processes_matches_one_with_twice_the_batch(tmp_path):
    "The Restoration Adapter's loop (adapters and LoRA in one DDP module) under `accelerate launch`, against one process."
    script = tmp_path / "adapter.py"; script.write_text(ADAPTER_SCRIPT)
    one = subprocess.run([sys.executable, str(script), str(tmp_path / "one"), "4"], capture_output=True, text=True, timeout=600)
    assert one.returncode == 0, one.stderr[-3000:]
    two = subprocess.run([*LAUNCH_2, str(script), str(tmp_path / "two"), "2"], capture_output=True, text=True, timeout=600)
    assert two.returncode == 0, two.stderr[-3000:]
    la = json.loads(one.stdout.strip().splitlines()[-1])
    lbs = [json.loads(line) for line in two.stdout.strip().splitlines() if line.startswith("{")]
    assert la["processes"] == 1 and [r["processes"] for r in lbs] == [2, 2]
    np.testing.assert_allclose(lbs[0]["losses"], la["losses"], rtol=1e-3, atol=1e-5)
    a, b = (torch.load(tmp_path / k / "checkpoint.pt", weights_only=False)["trainable"] for k in ("one", "two"))
    for part in ("lora", "adapters"): assert relative_distance(a[part], b[part]) < 1e-3, part
