"""The quality protocol's benchmark script end to end on a few faces (the protocol itself is tested in
nbs/03b_quality)."""
import subprocess, sys
from pathlib import Path

import pytest

from restoration_nb.instant_restore import INSTANT_WEIGHTS
from restoration_nb.priors import WEIGHTS_DIR
from restoration_nb.quality import QUALITY_FIELDS, protocol_faces, read_quality

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks" / "bench_quality.py"
sys.path.insert(0, str(BENCH.parent))


def bench(*args, cwd):
    return subprocess.run([sys.executable, str(BENCH), *map(str, args)], cwd=cwd, capture_output=True,
                          text=True)


def test_a_protocol_run_writes_rows_and_a_contact_sheet_and_reuses_its_outputs(tmp_path):
    out, runs = tmp_path / "quality_cpu.json", tmp_path / "runs"
    args = ("run", "--faces", "4", "--methods", "instant", "adapter", "--tiers", "x4", "--run-dir", runs,
            "--out", out)
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
        "adapter.safetensors", "instant.safetensors"]
    refused = bench(*args, cwd=ROOT)
    assert refused.returncode != 0 and f"{out} exists; pass --overwrite to replace it" in refused.stderr
    again = bench(*args, "--overwrite", cwd=ROOT)
    assert again.returncode == 0, again.stderr[-2000:]
    assert read_quality(out)["rows"] == data["rows"]  # read back from the run folder, not re-run


def test_a_campaign_measures_weights_against_the_input_on_the_same_faces():
    from bench_quality import measure_restorer
    point = measure_restorer("instant", WEIGHTS_DIR / INSTANT_WEIGHTS, faces=protocol_faces(4))
    assert point["x4"]["n"] == point["input_x4"]["n"] == 4
    assert point["x4"]["identity_n"] <= point["input_x4"]["identity_n"]
    assert set(point["bars"]) == {"detection", "rank1", "fd", "psnr", "passes"}
    with pytest.raises(ValueError, match="method='gfpgan'; expected one of"):
        measure_restorer("gfpgan", WEIGHTS_DIR / INSTANT_WEIGHTS, faces=protocol_faces(4))


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
