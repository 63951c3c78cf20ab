"""Every notebook runs as a test (its cells hold the library's tests), one pytest case per notebook.
Cells flagged `#| gpu` or `#| slow` are skipped here, as in `nbdev-test` (pyproject tst_flags).
Each notebook is executed once per suite: one that this session's browser suite runs (tests/test_browser.py,
the same cells at the same defaults, in JupyterLab) is skipped here, and so is an example notebook that a
selected test marked `runs_notebook` executes whole under papermill (with smaller parameters); without
Chromium and playwright, or with those tests deselected, it runs here."""

import filecmp, shutil, subprocess
import pytest
from browser_support import missing_browser_tools
from conftest import ROOT, console

NOTEBOOKS = sorted(p for p in (ROOT / "nbs").rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)


def test_there_are_notebooks():
    names = {p.stem for p in NOTEBOOKS}
    assert {"00_core", "01_degradations", "02_backbones", "03_metrics", "04_sweeps", "05_cli"} <= names, names


# Guards against a hung notebook, not timing checks: on a busy 2-core machine the heaviest lesson runs several
# times slower than alone.
CELL_TIMEOUT, NOTEBOOK_TIMEOUT = 1200, 2400


def run_elsewhere(session) -> dict[str, str]:
    """The notebooks (paths under nbs/) that another selected test of this session executes whole, each with
    that test's id: the browser suite's Run All (where its tools are here) and the tests marked
    `runs_notebook`."""
    found = {}
    for item in session.items:
        for mark in item.iter_markers("runs_notebook"):
            found[mark.args[0]] = item.nodeid
    if not missing_browser_tools():
        for item in session.items:
            if item.name == "test_runs_all_cells_with_no_error" and item.path.name == "test_browser.py":
                found[item.cls.notebook] = item.nodeid
    return found


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT / "nbs")))
def test_notebook(nb, request):
    rel = nb.relative_to(ROOT / "nbs").as_posix()
    elsewhere = run_elsewhere(request.session)
    if rel in elsewhere:
        pytest.skip(f"{rel} runs once, in {elsewhere[rel]}")
    r = subprocess.run(
        [console("nbdev-test"), str(nb), "--cell-timeout", str(CELL_TIMEOUT)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=NOTEBOOK_TIMEOUT,
    )
    assert r.returncode == 0 and "Success" in r.stdout, r.stdout[-3000:] + "\n" + r.stderr[-12000:]


def test_export_changes_nothing(tmp_path):
    "nbdev-export on a copy of the notebooks reproduces the committed package exactly."
    for name in ("nbs", "restoration_nb"):
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    r = subprocess.run([console("nbdev-export")], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    cmp = filecmp.dircmp(ROOT / "restoration_nb", tmp_path / "restoration_nb", ignore=["__pycache__"])
    assert not cmp.diff_files and not cmp.left_only and not cmp.right_only, (
        cmp.diff_files,
        cmp.left_only,
        cmp.right_only,
    )


def test_clean_changes_nothing(tmp_path):
    "nbdev-clean on a copy of the notebooks leaves each as committed: no stray outputs, metadata, key order."
    shutil.copytree(ROOT / "nbs", tmp_path / "nbs", ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    r = subprocess.run([console("nbdev-clean")], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    changed = [
        p.relative_to(tmp_path).as_posix()
        for p in sorted((tmp_path / "nbs").rglob("*.ipynb"))
        if p.read_bytes() != (ROOT / p.relative_to(tmp_path)).read_bytes()
    ]
    assert not changed, f"run nbdev-clean on: {changed}"
