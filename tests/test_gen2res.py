"""gen2res as a job: the sweep notebook under papermill (metrics written, fine-tunes reused across K) and the
sweep spec."""

import json
import papermill as pm
import pytest
from conftest import ROOT
from restoration_nb.sweeps import expand_grid, load_sweep_spec, notebook_parameters

EXAMPLE = ROOT / "nbs" / "examples" / "gen2res_sweep.ipynb"
TINY = dict(n_faces=1, album_size=2, album_steps=5, finetune_steps=3, n=2)


def _run(tmp_path, name, **params):
    metrics = tmp_path / f"{name}.json"
    pm.execute_notebook(
        str(EXAMPLE),
        str(tmp_path / f"{name}.ipynb"),
        parameters=dict(TINY, metrics_path=str(metrics), **params),
        execution_timeout=600,
        start_timeout=120,
        progress_bar=False,
        cwd=str(EXAMPLE.parent),
    )
    return json.loads(metrics.read_text())


@pytest.mark.runs_notebook("examples/gen2res_sweep.ipynb")
def test_sweep_point_writes_metrics_and_reuses_the_fine_tune_across_K(tmp_path):
    cache = tmp_path / "cache"
    m50 = _run(tmp_path, "k50", K=50, cache_dir=str(cache))
    assert set(m50) >= {"psnr", "ssim", "ms_ssim", "id_cosine", "psnr_prior", "psnr_degraded", "n_faces"}, m50
    assert 10 < m50["psnr"] < 50 and 0 < m50["ssim"] <= 1, m50
    ckpts = sorted(cache.rglob("checkpoint.pt"))
    assert len(ckpts) == 1, ckpts
    stamp, log = ckpts[0].stat().st_mtime_ns, json.loads((ckpts[0].parent / "constrain.json").read_text())
    m200 = _run(tmp_path, "k200", K=200, cache_dir=str(cache))
    assert ckpts[0].stat().st_mtime_ns == stamp, (
        "the K=200 point resumes the finished fine-tune instead of training again"
    )
    assert json.loads((ckpts[0].parent / "constrain.json").read_text())["losses"] == log["losses"]
    assert m200["psnr"] != m50["psnr"], "a different K restores differently"


def test_the_committed_sweep_spec_names_real_parameters():
    spec = load_sweep_spec(ROOT / "nbs" / "examples" / "gen2res_sweep.json")
    params = notebook_parameters(spec["notebook"])
    assert set(spec["grid"]) | set(spec["fixed"]) <= set(params), (spec, params)
    assert len(expand_grid(spec["grid"])) == 9
