"""The notebooks in a real JupyterLab, driven by headless Chromium (pytest + Playwright's sync API).

One JupyterLab server (127.0.0.1, a free port, a random token) serves a TEMPORARY folder holding copies of the
notebooks under test and the repository's settings.ini (the library finds its settings upward from the
kernel's working directory); the repository is never the server's root, so nothing JupyterLab writes lands in
`nbs/`. The kernels inherit this process's environment, with RESTORATION_NB_DATA set from settings.ini's
data_dir when it is not set already.

The copies are what `nbdev-test` runs, made with nbformat: code cells flagged with a skipped test flag
(`#| slow`, `#| gpu`: pyproject's `[tool.nbdev] tst_flags`), `#| eval: false` cells, nbclient's
`skip-execution` cells and the `nbdev_export()` call are removed, as are saved outputs and widget state (so
what the checks read is what this run drew). Each lesson runs at its own defaults, as a student runs it.
`test_copy_runs_the_cells_nbdev_test_runs` checks the selection against nbdev's own; so where this suite runs
a notebook, `tests/test_notebooks.py` does not run it again (each notebook is executed once per suite).

For each notebook (one test class each, run in order, one browser tab and kernel per class): open it,
Run > Run All Cells, wait until the kernel is idle and every cell has run, and assert that no cell has an
error output. JupyterLab 4.6 renders an error output with the same DOM as stderr (`data-mime-type=
"application/vnd.jupyter.stderr"`, as tqdm's bars are), so errors are read from the notebook model that
JupyterLab renders (`output_type == "error"`), through `window.jupyterapp` (`--LabApp.expose_app_in_browser`);
the harness test `test_an_error_output_is_detected_and_stderr_is_not` runs a notebook that raises to prove the
check can fail. For each widget of a paper notebook, found by its control's label (K, n, lam, phi, a, w,
references, AdaIN): move the slider one step with the keyboard on its noUiSlider handle (or click the
checkbox) and assert that the image the widget's output shows changed. Screenshots go to $BROWSER_ARTIFACTS,
else tests/artifacts/browser/ (git-ignored).

Needs Chromium at /usr/bin/chromium (apt-get install -y chromium), playwright (pip install playwright; no
`playwright install`) and jupyterlab; without them every browser test is skipped with the reason. Select the
suite with `pytest -m browser`.
"""

import os, shutil, time
from pathlib import Path
import pytest
from browser_support import (
    CHROMIUM,
    CHROMIUM_ARGS,
    FIRST_LAB,
    ROOT,
    UNDER_TEST,
    JupyterLab,
    artifacts_dir,
    browser_copy,
    cell_directives,
    error_outputs,
    cell_times,
    find_widget,
    format_errors,
    missing_browser_tools,
    move_control,
    open_notebook,
    run_all_cells,
    tst_flags,
    wait_for_redraw,
    widget_output,
)

pytestmark = pytest.mark.browser

NBS = ROOT / "nbs"
# A guard against a hung run, not a timing check: how long one notebook's Run All may take. On a 2-core
# machine that is busy with other work the paper notebooks run several times slower than on an idle one.
RUN_TIMEOUT = float(os.environ.get("BROWSER_RUN_TIMEOUT", 1800))


@pytest.fixture(scope="session")
def browser_tools():
    reason = missing_browser_tools()
    if reason:
        pytest.skip(reason)


@pytest.fixture(scope="session")
def lab(browser_tools, tmp_path_factory):
    """A JupyterLab serving a temporary folder laid out like the project: the browser copies of the notebooks
    under test, settings.ini, and the committed results files the lessons read (`../benchmarks/results`)."""
    base = tmp_path_factory.mktemp("jupyterlab")
    root, state = base / "root", base / "state"
    state.mkdir()
    for rel in UNDER_TEST:
        browser_copy(NBS / rel, root / "nbs" / rel)
    shutil.copy(ROOT / "settings.ini", root / "settings.ini")
    shutil.copytree(ROOT / "benchmarks" / "results", root / "benchmarks" / "results")
    server = JupyterLab(root, state)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def browser(browser_tools):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


# --- the harness itself -------------------------------------------------------------------------------------


def test_an_error_output_is_detected_and_stderr_is_not(lab, browser):
    """The error check can fail: a notebook whose second cell raises shows one error, and stderr output is not
    one."""
    import nbformat

    nb = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell("import sys; print('10%|#   | a progress bar', file=sys.stderr)"),
            nbformat.v4.new_code_cell("1 / 0"),
            nbformat.v4.new_code_cell("print('never runs')"),
        ]
    )
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, lab.root_dir / "harness_error.ipynb")
    page = browser.new_page()
    try:
        open_notebook(page, lab, "harness_error.ipynb")
        progress = run_all_cells(page, timeout=120)
        errors = error_outputs(page)
        stderr_shown = page.locator(
            '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]'
        ).count()
    finally:
        page.close()
        lab.shutdown_kernels_of("harness_error.ipynb")
    assert [(e["cell"], e["ename"]) for e in errors] == [(1, "ZeroDivisionError")], errors
    assert progress["executed"] == 2 and progress["code_cells"] == 3, progress  # the run stopped at the error
    assert stderr_shown == 2, stderr_shown  # the stderr bar and the traceback look alike in the DOM


@pytest.mark.parametrize("rel", UNDER_TEST)
def test_copy_runs_the_cells_nbdev_test_runs(rel, tmp_path):
    """The browser copy keeps exactly the code cells `nbdev-test` runs (nbdev's own selection, with
    pyproject's flags)."""
    import nbformat

    nb_test_cells = pytest.importorskip(
        "nbdev.test", reason="nbdev is not installed (pip install -e '.[dev]')"
    ).nb_test_cells
    done = browser_copy(NBS / rel, tmp_path / Path(rel).name)
    theirs = [
        c.get("id")
        for c in nb_test_cells(NBS / rel, sorted(tst_flags()))
        if c.cell_type == "code" and c.source.strip()
    ]
    assert done["kept_code"] == theirs, sorted(set(done["kept_code"]) ^ set(theirs))
    copy = nbformat.read(tmp_path / Path(rel).name, as_version=4)
    flagged = [
        c.id for c in copy.cells if c.cell_type == "code" and {"slow", "gpu"} & cell_directives(c).keys()
    ]
    assert not flagged, f"{rel}: the copy kept slow or gpu cells {flagged}"
    assert not any(c.get("outputs") for c in copy.cells), f"{rel}: the copy kept saved outputs"


# --- the notebooks ------------------------------------------------------------------------------------------


class NotebookRun:
    """A notebook opened in its own tab, all its cells run once; the tab closed and its kernel shut down at
    the end."""

    def __init__(self, lab, browser, rel: str):
        self.lab, self.rel, self.name = lab, rel, Path(rel).stem
        self.page = browser.new_page(viewport={"width": 1600, "height": 1000})
        self.page.set_default_timeout(60_000)
        try:
            t0 = time.monotonic()
            open_notebook(self.page, lab, f"nbs/{rel}")
            self.progress = run_all_cells(self.page, timeout=RUN_TIMEOUT)
            self.seconds = time.monotonic() - t0
            self.errors = error_outputs(self.page)
            widget = self.page.locator(".widget-vbox").first
            if widget.count():
                widget.scroll_into_view_if_needed()  # the page screenshot shows the first widget
            self.page.screenshot(path=str(artifacts_dir() / f"{self.name}.png"))
        except BaseException:
            self.close()
            raise
        slowest = ", ".join(f"{c['seconds']:.0f} s {c['source']!r}" for c in cell_times(self.page)[:3])
        print(
            f"\n{rel}: opened and ran in {self.seconds:.0f} s "
            f"({self.progress['executed']}/{self.progress['code_cells']} "
            f"code cells; slowest: {slowest})"
        )

    def close(self):
        "Close the tab and shut down its kernel (which stops a cell still running)."
        try:
            self.page.close()
        finally:
            self.lab.shutdown_kernels_of(f"nbs/{self.rel}")


@pytest.fixture(scope="class")
def run(request, lab, browser):
    rel = request.cls.notebook
    if rel is None:
        pytest.skip("no lab notebook in nbs/labs/ yet")
    r = NotebookRun(lab, browser, rel)
    try:
        yield r
    finally:
        r.close()


class RunsInJupyterLab:
    notebook: str | None = None

    def test_runs_all_cells_with_no_error(self, run):
        assert not run.errors, (
            f"{run.rel}: {len(run.errors)} cell(s) with an error output in "
            f"JupyterLab:\n{format_errors(run.errors)}"
        )
        p = run.progress
        assert p["executed"] == p["code_cells"] > 0, (
            f"{run.rel}: only {p['executed']} of {p['code_cells']} code cells ran"
        )


class WidgetsInJupyterLab(RunsInJupyterLab):
    controls: tuple = ()

    def test_control_redraws_its_output(self, run, control):
        assert not run.errors, f"{run.rel} did not run cleanly:\n{format_errors(run.errors)}"
        ctl, box = find_widget(run.page, control)
        box.scroll_into_view_if_needed()
        before = widget_output(box)
        assert before["images"], (
            f"{control!r}: the widget's output shows no image before the move: {before['text']!r}"
        )
        was, now = move_control(ctl)
        assert was != now, f"{control!r}: the control did not move (still {was!r})"
        after = wait_for_redraw(box, before)
        box.screenshot(path=str(artifacts_dir() / f"{run.name}-{control}.png"))
        changed = bool(after["images"]) and after["images"] != before["images"]
        assert changed, (
            f"{control!r} moved from {was!r} to {now!r} but the widget's image did not change "
            f"({len(after['images'])} image(s) shown); its output text: {after['text']!r}"
        )


def pytest_generate_tests(metafunc):
    if "control" in metafunc.fixturenames:
        metafunc.parametrize("control", metafunc.cls.controls)


class TestGen2res(WidgetsInJupyterLab):
    notebook, controls = "07_gen2res.ipynb", ("K", "n", "lam")


class TestFlipnet(WidgetsInJupyterLab):
    notebook, controls = "08_flipnet.ipynb", ("phi",)


class TestRestorationAdapter(WidgetsInJupyterLab):
    notebook, controls = "09_restoration_adapter.ipynb", ("a", "w")


class TestInstantRestore(WidgetsInJupyterLab):
    notebook, controls = "10_instant_restore.ipynb", ("references", "AdaIN")


class TestCompare(WidgetsInJupyterLab):
    notebook, controls = "12_compare.ipynb", ("face",)


class TestLabNotebook(RunsInJupyterLab):
    notebook = FIRST_LAB
