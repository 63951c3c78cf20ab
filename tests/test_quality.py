"""The quality protocol's benchmark script end to end on a few faces (the protocol itself is tested in
nbs/03b_quality)."""

import subprocess, sys
from pathlib import Path

import pytest

from restoration_nb.instant_restore import INSTANT_WEIGHTS
from restoration_nb.training import WEIGHTS_DIR
from restoration_nb.quality import QUALITY_FIELDS, protocol_faces, read_quality

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks" / "bench_quality.py"
sys.path.insert(0, str(BENCH.parent))


def bench(*args, cwd):
    return subprocess.run(
        [sys.executable, str(BENCH), *map(str, args)], cwd=cwd, capture_output=True, text=True
    )


def test_a_protocol_run_writes_rows_and_a_contact_sheet_and_reuses_its_outputs(tmp_path):
    out, runs = tmp_path / "quality_cpu.json", tmp_path / "runs"
    args = (
        "run",
        "--faces",
        "4",
        "--methods",
        "instant",
        "adapter",
        "--tiers",
        "x4",
        "--run-dir",
        runs,
        "--out",
        out,
    )
    first = bench(*args, cwd=ROOT)
    assert first.returncode == 0, first.stderr[-2000:]
    data = read_quality(out)
    assert [r["method"] for r in data["rows"]] == ["input", "clean", "instant", "adapter"]
    assert all(r["n"] == 4 and r["tier"] == "x4" for r in data["rows"])
    assert set(QUALITY_FIELDS) <= set(data["rows"][2])
    assert [b["method"] for b in data["bars_x4"]] == ["instant", "adapter"]
    assert data["methods"]["adapter"]["a"] == 0.8 and data["methods"]["instant"]["references"] == "own"
    assert (tmp_path / "quality_contact_cpu.jpg").stat().st_size > 1000
    assert sorted(p.name for p in (runs / "outputs" / "4-faces" / "x4").iterdir()) == [
        "adapter.safetensors",
        "instant.safetensors",
    ]
    refused = bench(*args, cwd=ROOT)
    assert refused.returncode != 0 and f"{out} exists; pass --overwrite to replace it" in refused.stderr
    again = bench(*args, "--overwrite", cwd=ROOT)
    assert again.returncode == 0, again.stderr[-2000:]
    assert read_quality(out)["rows"] == data["rows"]  # read back from the run folder, not re-run


def test_a_repeated_skip_keeps_every_pair(tmp_path):
    out = tmp_path / "quality_cpu.json"
    args = (
        "run",
        "--faces",
        "2",
        "--methods",
        "instant",
        "--tiers",
        "x4",
        "x8",
        "--run-dir",
        tmp_path / "runs",
    )
    r = bench(*args, "--skip", "x4:instant", "--skip", "x8:instant", "--out", out, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-2000:]
    data = read_quality(out)
    assert data["skipped"] == ["instant at x4", "instant at x8"]
    assert {r["method"] for r in data["rows"]} == {"input", "clean"}


def test_a_campaign_measures_weights_against_the_input_on_the_same_faces():
    from bench_quality import measure_restorer

    point = measure_restorer("instant", WEIGHTS_DIR / INSTANT_WEIGHTS, faces=protocol_faces(4))
    assert point["x4"]["n"] == point["input_x4"]["n"] == 4
    assert point["x4"]["identity_n"] <= point["input_x4"]["identity_n"]
    assert set(point["bars"]) == {"detection", "rank1", "fd", "psnr", "passes"}
    with pytest.raises(ValueError, match="method='gfpgan'; expected one of"):
        measure_restorer("gfpgan", WEIGHTS_DIR / INSTANT_WEIGHTS, faces=protocol_faces(4))


def test_a_campaign_reads_each_restorers_loss_log():
    """The adapter logs floats, InstantRestore dicts with a loss, FLIPNET such dicts per stage (the last
    counts)."""
    from restorer_campaign import recent_loss

    assert recent_loss(dict(losses=[0.5, 0.3])) == 0.4
    assert recent_loss(dict(losses=[dict(loss=0.2, l1=9.0), dict(loss=0.4, l1=9.0)])) == 0.3
    assert recent_loss(dict(losses=dict(reconstruction=[dict(loss=5.0)], flipnet=[dict(loss=0.1)]))) == 0.1
    assert recent_loss(dict(losses=[])) is None and recent_loss({}) is None


def test_instant_restore_own_references_beat_another_persons():
    "InstantRestore's claim on the micro model: a person's own photos as references keep the identity better."
    from restoration_nb.compare import paper_restorer
    from restoration_nb.metrics import identity_similarity
    from restoration_nb.quality import protocol_inputs

    faces = protocol_faces(8)
    lq = protocol_inputs(faces.clean, "x4")
    restored = {}
    for refs in ("own", "other"):
        restored[refs] = paper_restorer("instant", references=refs)[0](lq, faces, "x4")
    own, other = (identity_similarity(restored[refs], faces.clean)["cosine"] for refs in ("own", "other"))
    both = own.isfinite() & other.isfinite()
    assert int(both.sum()) >= 6, "dlib should find most of the restored faces"
    assert own[both].mean() > other[both].mean() + 0.005, (own, other)


def test_adapter_a_longer_rss_pull_costs_fidelity():
    "On the micro model a lower threshold a (RSS pulls toward the LQ latent for longer) loses fidelity."
    from restoration_nb.compare import paper_restorer
    from restoration_nb.metrics import psnr
    from restoration_nb.quality import protocol_inputs

    faces = protocol_faces(8)
    lq = protocol_inputs(faces.clean, "x4")
    high, low = (psnr(paper_restorer("adapter", a=a)[0](lq, faces, "x4"), faces.clean) for a in (0.8, 0.2))
    assert high.mean() > low.mean() + 0.5, (high, low)


def test_flipnet_more_phi_keeps_more_of_the_person():
    "FLIPNET's claim on the micro model: phi = 2 lets the LQ face in and keeps the person nearer than 0."
    from restoration_nb.compare import paper_restorer
    from restoration_nb.metrics import identity_similarity
    from restoration_nb.quality import protocol_inputs

    faces = protocol_faces(8)
    lq = protocol_inputs(faces.clean, "x4")
    restored = {phi: paper_restorer("flipnet", phi=phi)[0](lq, faces, "x4") for phi in (2.0, 0.0)}
    much, none = (identity_similarity(restored[phi], faces.clean)["cosine"] for phi in (2.0, 0.0))
    both = much.isfinite() & none.isfinite()
    assert int(both.sum()) >= 5, "dlib should find most of the restored faces"
    assert much[both].mean() > none[both].mean() + 0.01, (much, none)


def test_the_demo_restores_with_the_best_method_of_the_committed_results(tmp_path):
    "The lab's `demo_method` is the method that passes the most bars in the committed results file."
    from conftest import run_cli
    from restoration_nb.core import DEFAULT_SETTINGS, setting
    from restoration_nb.quality import best_method

    best = best_method(read_quality(ROOT / "benchmarks" / "results" / "quality_cpu.json")["rows"])
    assert setting("demo_method") == DEFAULT_SETTINGS["demo_method"] == best
    r = run_cli("demo", "-o", tmp_path / "demo", "--n", "3", "--quiet")
    assert r.returncode == 0, r.stderr
    assert f"method {best}, tier x4, seed 0" in r.stdout
    people = protocol_faces(3).people
    per_face = [line for line in r.stdout.splitlines() if line.startswith(("| 0 |", "| 1 |", "| 2 |"))]
    assert [line.split(" | ")[1] for line in per_face] == people, r.stdout
