"""The installed `restoration-nb` console script, end to end."""

import json
from conftest import run_cli
from restoration_nb.core import read_image


def test_help_lists_the_subcommands():
    r = run_cli("--help")
    assert r.returncode == 0
    for cmd in ("degrade", "evaluate", "sweep", "demo"):
        assert cmd in r.stdout


def test_degrade_then_evaluate(tmp_path, faces_dir):
    r = run_cli(
        "degrade", faces_dir, "-o", tmp_path / "deg", "--mode", "second-order", "--seed", "3", "--quiet"
    )
    assert r.returncode == 0, r.stderr
    rec = json.loads((tmp_path / "deg" / "degradations.json").read_text())
    assert [im["seed"] for im in rec["images"]] == [3, 4, 5, 6] and rec["mode"] == "second-order"
    assert rec["ranges"] == "paper, scaled to the image size"
    assert all(
        0.1 <= r["sigma"][0] <= 15 / 8 for im in rec["images"] for r in im["params"]
    )  # scaled to 64 px
    clean, deg = read_image(faces_dir / "face0.png"), read_image(tmp_path / "deg" / "face0.png")
    assert clean.shape == deg.shape and (clean - deg).abs().mean() > 0.01
    r = run_cli(
        "evaluate",
        "--restored",
        tmp_path / "deg",
        "--reference",
        faces_dir,
        "--metrics",
        "psnr,ssim",
        "-o",
        tmp_path / "t.json",
    )
    assert r.returncode == 0, r.stderr
    rows = json.loads((tmp_path / "t.json").read_text())
    assert len(rows) == 4 and all(12 < row["psnr"] < 40 and 0 < row["ssim"] < 1 for row in rows)
    # the paper's 512 px ranges applied to 64 px faces destroy far more
    r = run_cli(
        "degrade",
        faces_dir,
        "-o",
        tmp_path / "paper",
        "--mode",
        "second-order",
        "--seed",
        "3",
        "--paper-ranges",
        "--quiet",
    )
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "paper" / "degradations.json").read_text())["ranges"] == "paper"
    r = run_cli(
        "evaluate",
        "--restored",
        tmp_path / "paper",
        "--reference",
        faces_dir,
        "--metrics",
        "psnr",
        "-o",
        tmp_path / "p.json",
    )
    paper = json.loads((tmp_path / "p.json").read_text())
    assert sum(r["psnr"] for r in paper) < sum(r["psnr"] for r in rows)


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
    r = run_cli(
        "degrade", faces_dir / "face1.png", "-o", tmp_path / "o", "--quiet", "--sigma", "5", "--overwrite"
    )
    assert r.returncode == 0 and (tmp_path / "o" / "face1.png").read_bytes() != first


def test_demo_restores_with_a_prior_folder(tmp_path):
    from restoration_nb.backbones import build_model

    build_model("tiny-unet2d").save_pretrained(tmp_path / "prior")
    r = run_cli(
        "demo",
        "-o",
        tmp_path / "demo",
        "--n",
        "2",
        "--method",
        "gen2res",
        "--prior",
        tmp_path / "prior",
        "--K",
        "50",
        "--num-steps",
        "2",
        "--metrics",
        "psnr,ssim",
        "--quiet",
    )
    assert r.returncode == 0, r.stderr
    csv = (tmp_path / "demo" / "metrics.csv").read_text()
    assert csv.count("\ndegraded,") == 2 and csv.count("\ngen2res,") == 2
    assert (tmp_path / "demo" / "demo.png").stat().st_size > 10_000
    restored = sorted((tmp_path / "demo" / "restored").iterdir())
    assert [p.name for p in restored] == ["face0.png", "face1.png"]
    assert (
        read_image(restored[0]) - read_image(tmp_path / "demo" / "degraded" / "face0.png")
    ).abs().max() > 0


def test_demo_without_a_loadable_prior_refuses_before_any_work(tmp_path):
    r = run_cli(
        "demo",
        "-o",
        tmp_path / "demo",
        "--n",
        "1",
        "--method",
        "gen2res",
        "--prior",
        tmp_path / "no-such-prior",
        "--metrics",
        "psnr",
        "--quiet",
    )
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert (
        "no-such-prior" in r.stderr
        and "could not be loaded" in r.stderr
        and "expected a micro prior name" in r.stderr
    )
    assert not (tmp_path / "demo").exists()


def test_demo_on_an_install_without_dlib_refuses_before_any_work(tmp_path):
    "A plain `pip install` has no dlib, which aligns the demo's album photos: the demo says so and stops."
    hidden = tmp_path / "hide" / "dlib"
    hidden.mkdir(parents=True)
    (hidden / "__init__.py").write_text("raise ImportError(\"No module named 'dlib'\")\n")
    env = {"PYTHONPATH": str(hidden.parent)}
    r = run_cli("demo", "-o", tmp_path / "demo", "--n", "1", "--metrics", "psnr", "--quiet", env=env)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "the demo's faces are album photos that dlib aligns, and dlib cannot run here" in r.stderr
    assert "pip install 'restoration-nb[faces]'" in r.stderr
    assert not (tmp_path / "demo").exists()
