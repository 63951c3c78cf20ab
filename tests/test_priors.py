"""The shipped micro priors: the demo's gen2res uses them by default, a built wheel carries them, and training
checkpoints survive a full disk."""

import subprocess, sys, zipfile
import pytest
from pathlib import Path
from conftest import ROOT, run_cli


def test_demo_restores_with_the_shipped_micro_prior(tmp_path):
    r = run_cli(
        "demo",
        "-o",
        tmp_path / "demo",
        "--n",
        "2",
        "--method",
        "gen2res",
        "--metrics",
        "psnr,ssim",
        "--quiet",
    )
    assert r.returncode == 0, r.stderr
    assert "prior micro-ddpm-faces64, recipe none, K 200" in r.stdout, r.stdout
    assert (tmp_path / "demo" / "metrics.csv").read_text().count("\ngen2res,") == 2


def test_sample_is_seeded_and_never_overwrites(tmp_path):
    for out in ("a", "b"):
        assert (
            run_cli(
                "sample", "-o", tmp_path / out, "--n", "2", "--num-steps", "4", "--seed", "7", "--quiet"
            ).returncode
            == 0
        )
    assert (tmp_path / "a" / "sample1.png").read_bytes() == (tmp_path / "b" / "sample1.png").read_bytes()
    before = (tmp_path / "a" / "sample0.png").read_bytes()
    r = run_cli("sample", "-o", tmp_path / "a", "--n", "2", "--num-steps", "4", "--seed", "8", "--quiet")
    assert r.returncode == 2 and "exists; pass overwrite=True" in r.stderr
    assert (tmp_path / "a" / "sample0.png").read_bytes() == before


def test_wheel_ships_the_weights(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    wheel = next(tmp_path.glob("restoration_nb-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = [
        p.relative_to(ROOT).as_posix()
        for p in (ROOT / "restoration_nb" / "weights").rglob("*")
        if p.is_file()
    ]
    needed = [
        f"restoration_nb/weights/{name}/{f}"
        for name in ("micro-ddpm-faces64", "micro-sd-faces64")
        for f in (
            "unet/config.json",
            "unet/diffusion_pytorch_model.safetensors",
            "scheduler/scheduler_config.json",
            "MODEL_CARD.md",
            "training.json",
        )
    ]
    needed.append("restoration_nb/weights/micro-sd-faces64/prompt_embedding.safetensors")
    assert not [p for p in needed if p not in shipped], "files missing from the package folder"
    assert not [p for p in shipped if p not in names], "files missing from the wheel"
    total = sum((ROOT / p).stat().st_size for p in shipped if p.endswith(".safetensors"))
    assert total <= 40 * 2**20, f"shipped weights are {total / 2**20:.1f} MiB; the limit is 40 MiB"


def test_a_full_disk_during_a_checkpoint_keeps_the_last_one_and_says_where(tmp_path, monkeypatch):
    """torch.save fails half-way (ENOSPC): the error names the checkpoint, no .tmp is left, the last
    checkpoint still loads."""
    import errno
    import torch
    from restoration_nb.training import CHECKPOINT, save_checkpoint, load_checkpoint

    save_checkpoint(tmp_path, dict(log=dict(step=3), weights=torch.ones(2)))

    def full_disk(obj, f):
        Path(f).write_bytes(b"half a checkpoint")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(
        OSError, match=f"could not write the checkpoint '{tmp_path / CHECKPOINT}'.*No space left on device"
    ):
        save_checkpoint(tmp_path, dict(log=dict(step=4)))
    assert sorted(p.name for p in tmp_path.iterdir()) == [CHECKPOINT]
    assert load_checkpoint(tmp_path / CHECKPOINT)["log"]["step"] == 3
