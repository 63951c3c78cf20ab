"""papermill runs: the example notebook as a parameterised job, and a sweep through the CLI."""

import json
import papermill as pm
import pytest
from conftest import ROOT, run_cli

EXAMPLE = ROOT / "nbs" / "examples" / "degradation_sweep.ipynb"


@pytest.mark.runs_notebook("examples/degradation_sweep.ipynb")
def test_papermill_runs_the_example_with_parameters(tmp_path):
    metrics = tmp_path / "m.json"
    pm.execute_notebook(
        str(EXAMPLE),
        str(tmp_path / "out.ipynb"),
        parameters=dict(sigma=2.0, n_faces=2, metrics_path=str(metrics)),
        execution_timeout=300,
        start_timeout=120,
        progress_bar=False,
        cwd=str(EXAMPLE.parent),
    )
    m = json.loads(metrics.read_text())
    assert 10 < m["psnr"] < 50 and 0 < m["ssim"] < 1, m


def test_cli_sweep_runs_collects_and_resumes(tmp_path):
    spec = tmp_path / "spec.json"
    spec.write_text(
        json.dumps(
            {"notebook": str(EXAMPLE), "grid": {"sigma": [0.5, 3.0]}, "fixed": {"n_faces": 2}, "timeout": 300}
        )
    )
    r = run_cli("sweep", spec, "-o", tmp_path / "sweep", "--quiet")
    assert r.returncode == 0, r.stderr
    metrics = sorted((tmp_path / "sweep").glob("*/metrics.json"))
    assert len(metrics) == 2
    psnr = {json.loads(p.read_text())["psnr"] for p in metrics}
    assert len(psnr) == 2, "the two blur strengths must give different PSNR"
    stamps = [p.stat().st_mtime_ns for p in metrics]
    r = run_cli("sweep", spec, "-o", tmp_path / "sweep", "--quiet")
    assert r.returncode == 0, r.stderr
    assert [p.stat().st_mtime_ns for p in metrics] == stamps, "a re-run must skip finished points"
    assert not list((tmp_path / "sweep").rglob("*.tmp"))


def test_a_sweep_whose_points_fail_exits_non_zero_and_still_prints_its_table(tmp_path):
    spec = tmp_path / "spec.json"
    spec.write_text(
        json.dumps(
            {
                "notebook": str(EXAMPLE),
                "grid": {"sigma": [-1.0, -2.0]},
                "fixed": {"n_faces": 1},
                "timeout": 300,
            }
        )
    )
    r = run_cli("sweep", spec, "-o", tmp_path / "sweep", "--quiet")
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert "2 of 2 sweep points failed" in r.stderr, r.stderr
    assert r.stdout.count("failed: ") == 2 and "sigma must be > 0" in r.stdout, r.stdout
    records = [json.loads(p.read_text()) for p in (tmp_path / "sweep").glob("*/point.json")]
    assert len(records) == 2 and all(rec["status"].startswith("failed") for rec in records), records


def test_a_second_sweep_on_a_busy_folder_is_refused(tmp_path):
    from restoration_nb.sweeps import sweep_lock

    spec = tmp_path / "spec.json"
    spec.write_text(
        json.dumps(
            {"notebook": str(EXAMPLE), "grid": {"sigma": [1.0]}, "fixed": {"n_faces": 1}, "timeout": 300}
        )
    )
    out = tmp_path / "sweep"
    out.mkdir()
    with sweep_lock(out):  # this test process plays the running sweep
        r = run_cli("sweep", spec, "-o", out, "--quiet")
    assert r.returncode == 2 and "is being swept by process" in r.stderr, r.stderr
    assert list(out.iterdir()) == []  # nothing written, lock released
