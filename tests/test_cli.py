"""The installed `restoration-nb` console script, end to end."""
import json
from conftest import run_cli
from restoration_nb.core import read_image


def test_help_lists_the_subcommands():
    r = run_cli("--help")
    assert r.returncode == 0
    for cmd in ("degrade", "evaluate", "sweep", "demo"): assert cmd in r.stdout


def test_degrade_then_evaluate(tmp_path, faces_dir):
    r = run_cli("degrade", faces_dir, "-o", tmp_path / "deg", "--mode", "second-order", "--seed", "3", "--quiet")
    assert r.returncode == 0, r.stderr
    rec = json.loads((tmp_path / "deg" / "degradations.json").read_text())
    assert [im["seed"] for im in rec["images"]] == [3, 4, 5, 6] and rec["mode"] == "second-order"
    clean, deg = read_image(faces_dir / "face0.png"), read_image(tmp_path / "deg" / "face0.png")
    assert clean.shape == deg.shape and (clean - deg).abs().mean() > 0.01
    r = run_cli("evaluate", "--restored", tmp_path / "deg", "--reference", faces_dir, "--metrics", "psnr,ssim",
                "-o", tmp_path / "t.json")
    assert r.returncode == 0, r.stderr
    rows = json.loads((tmp_path / "t.json").read_text())
    assert len(rows) == 4 and all(0 < row["psnr"] < 60 for row in rows)


def test_refuses_to_overwrite_and_never_touches_inputs(tmp_path, faces_dir):
    before = (faces_dir / "face1.png").read_bytes()
    r = run_cli("degrade", faces_dir / "face1.png", "-o", faces_dir, "--overwrite", "--quiet")
    assert r.returncode == 2 and "never writes over an input" in r.stderr
    assert (faces_dir / "face1.png").read_bytes() == before
    assert run_cli("degrade", faces_dir / "face1.png", "-o", tmp_path / "o", "--quiet").returncode == 0
    first = (tmp_path / "o" / "face1.png").read_bytes()
    r = run_cli("degrade", faces_dir / "face1.png", "-o", tmp_path / "o", "--quiet", "--sigma", "5")
    assert r.returncode == 2 and "exists; pass overwrite=True (--overwrite" in r.stderr
    assert (tmp_path / "o" / "face1.png").read_bytes() == first
    r = run_cli("degrade", faces_dir / "face1.png", "-o", tmp_path / "o", "--quiet", "--sigma", "5", "--overwrite")
    assert r.returncode == 0 and (tmp_path / "o" / "face1.png").read_bytes() != first


def test_demo_restores_with_a_prior_folder(tmp_path):
    from restoration_nb.backbones import build_model
    build_model("tiny-unet2d").save_pretrained(tmp_path / "prior")
    r = run_cli("demo", "-o", tmp_path / "demo", "--n", "2", "--prior", tmp_path / "prior", "--K", "50",
                "--num-steps", "2", "--metrics", "psnr,ssim", "--quiet")
    assert r.returncode == 0, r.stderr
    csv = (tmp_path / "demo" / "metrics.csv").read_text()
    assert "degraded" in csv and "restored (K=50)" in csv
    assert (tmp_path / "demo" / "demo.png").stat().st_size > 10_000


def test_demo_without_a_loadable_prior_says_so(tmp_path):
    r = run_cli("demo", "-o", tmp_path / "demo", "--n", "1", "--prior", tmp_path / "no-such-prior", "--metrics", "psnr", "--quiet")
    assert r.returncode == 0, r.stderr
    assert "restoration skipped: prior" in r.stdout and "no-such-prior" in r.stdout
    assert "restored" not in (tmp_path / "demo" / "metrics.csv").read_text()
