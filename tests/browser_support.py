"""Helpers for tests/test_browser.py: the notebook copies, a JupyterLab server in a temporary folder, and what
a test reads from and does to a notebook page in headless Chromium (Playwright's sync API).

What the checks read, as verified on JupyterLab 4.6 (see the module docstring of test_browser.py):
- errors: JupyterLab 4.6 renders an error output with the SAME DOM as stderr (a `.jp-OutputArea-output` with
  `data-mime-type="application/vnd.jupyter.stderr"`; there is no `application/vnd.jupyter.error` element), so
  the DOM cannot tell a traceback from a tqdm bar. Errors are read from the notebook model JupyterLab renders
  from (`output_type == "error"` in each code cell's outputs), through `window.jupyterapp`, which the server
  exposes with `--LabApp.expose_app_in_browser=True`. The page is only observed that way; it is driven by
  mouse and keys.
- a widget: the `.widget-slider` whose `label.widget-label` reads exactly the knob's name (K, n, lam, ...),
  and the innermost `.widget-vbox` around it; its output is that box's `.widget-output` (an ipywidgets
  Output), whose figure is an `<img>` with a `data:image/png;base64,...` src.
"""

import configparser, importlib.util, json, os, re, secrets, socket, subprocess, sys, time
import urllib.error, urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
LABS = sorted((ROOT / "nbs" / "labs").glob("*.ipynb"))
FIRST_LAB = LABS[0].relative_to(ROOT / "nbs").as_posix() if LABS else None
PAPER_NOTEBOOKS = [
    "07_gen2res.ipynb",
    "08_flipnet.ipynb",
    "09_restoration_adapter.ipynb",
    "10_instant_restore.ipynb",
    "12_compare.ipynb",
]
UNDER_TEST = PAPER_NOTEBOOKS + (
    [FIRST_LAB] if FIRST_LAB else []
)  # the notebooks the browser suite runs (under nbs/)
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def missing_browser_tools() -> str | None:
    "Why the browser suite cannot run here (what is missing and how to install it), or None when it can."
    missing = []
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        missing.append(f"Chromium is not at {CHROMIUM} (install it: apt-get install -y chromium)")
    if importlib.util.find_spec("playwright") is None:
        missing.append(
            "the playwright package is not installed (pip install playwright, or pip install -e '.[dev]'; "
            "no `playwright install` needed, the suite drives the system Chromium)"
        )
    if importlib.util.find_spec("jupyterlab") is None:
        missing.append("jupyterlab is not installed (pip install jupyterlab, or pip install -e '.[dev]')")
    return "browser tests skipped: " + "; ".join(missing) if missing else None


def artifacts_dir() -> Path:
    "Where screenshots go: $BROWSER_ARTIFACTS, else tests/artifacts/browser (ignored by git)."
    d = Path(os.environ.get("BROWSER_ARTIFACTS") or ROOT / "tests" / "artifacts" / "browser")
    d.mkdir(parents=True, exist_ok=True)
    return d


# ------------------------------------------------------------------------------------------------------------
# The browser copy of a notebook: the cells nbdev-test runs, without their saved outputs.


def tst_flags() -> set[str]:
    "The flags `nbdev-test` skips by default: `[tool.nbdev] tst_flags` in pyproject.toml."
    try:
        import tomllib
    except ImportError:
        import tomli as tomllib  # Python 3.10
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text()).get("tool", {}).get("nbdev", {})
    return set(str(cfg.get("tst_flags", "notest")).split())


_DIRECTIVE = re.compile(r"^\s*#\s*\|")


def cell_directives(cell) -> dict:
    """nbdev directives of a code cell, as nbdev reads them: leading `#| name[: value]` lines, then the
    `nbdev` metadata."""
    found = {}
    for line in cell.source.splitlines():
        if _DIRECTIVE.match(line):
            m = re.match(r"([^\s:]+)\s*:?\s?(.*?)\s*$", _DIRECTIVE.sub("", line, count=1).strip())
            if m:
                found[m.group(1)] = "" if m.group(2) == "true" else m.group(2)
        elif line.strip() and not re.match(r"^\s*%%\w+", line):
            break
    meta = {k: ("" if v == "true" else v) for k, v in cell.get("metadata", {}).get("nbdev", {}).items()}
    return {**meta, **found}


def skipped_by_nbdev_test(cell, flags: set[str]) -> bool:
    """Would `nbdev-test` leave this code cell out? (a flag of `flags`, `eval: false`, nbclient's skip tag, or
    an export call)"""
    if "skip-execution" in cell.get("metadata", {}).get("tags", []) or "nbdev_export(" in cell.source:
        return True
    d = cell_directives(cell)
    return d.get("eval") in ("false", "False") or bool(flags & d.keys())


def browser_copy(src: Path, dst: Path, flags: set[str] | None = None) -> dict:
    """Write the copy of notebook `src` that the browser runs to `dst`: code cells `nbdev-test` skips (`#|
    slow`, `#| gpu`, `#| eval: false`, ...) removed, blank code cells removed (JupyterLab gives them no
    execution count), saved outputs and widget state cleared, a python3 kernelspec added when there is none
    (else JupyterLab asks for a kernel in a dialog). The lesson runs at its own defaults, as a student runs
    it. Returns what was done, for messages."""
    import nbformat

    flags = tst_flags() if flags is None else flags
    nb = nbformat.read(src, as_version=4)
    kept, removed = [], []
    for cell in nb.cells:
        if cell.cell_type == "code":
            if skipped_by_nbdev_test(cell, flags) or not cell.source.strip():
                removed.append(cell.get("id"))
                continue
            cell.outputs, cell.execution_count = [], None
        kept.append(cell)
    nb.cells = kept
    nb.metadata.pop("widgets", None)
    added_kernelspec = "kernelspec" not in nb.metadata
    if added_kernelspec:
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    kept_code = [c.get("id") for c in nb.cells if c.cell_type == "code"]
    dst.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, dst)
    return {"removed": removed, "kept_code": kept_code, "added_kernelspec": added_kernelspec}


# ------------------------------------------------------------------------------------------------------------
# JupyterLab in a temporary folder.


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def data_dir_default() -> str | None:
    """The face data folder the repository's settings.ini names (relative to that file), for kernels run
    elsewhere."""
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "settings.ini")
    d = cfg.get("restoration_nb", "data_dir", fallback=None)
    return str((ROOT / d).resolve()) if d else None


# JupyterLab settings for the run: every cell in the DOM, each cell's run times kept in its metadata, no
# autosave, no news or update checks, no toasts.
LAB_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {
        "windowingMode": "none",
        "recordTiming": True,
    },
    "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
        "doNotDisturbMode": True,
    },
}


class JupyterLab:
    """A JupyterLab server for `root_dir` on 127.0.0.1 (free port, random token); its state lives in
    `state_dir`."""

    def __init__(self, root_dir: Path, state_dir: Path):
        self.root_dir, self.state_dir = Path(root_dir), Path(state_dir)
        self.proc, self.port, self.token = None, None, secrets.token_hex(24)
        self.log_path = self.state_dir / "jupyterlab.log"

    def env(self) -> dict:
        env = dict(os.environ)  # the kernels inherit it: RESTORATION_NB_DATA and all
        if not env.get("RESTORATION_NB_DATA") and data_dir_default():
            env["RESTORATION_NB_DATA"] = data_dir_default()
        # OpenMP's wait policy is left as it is: on an idle 2-core machine the whole suite took 419 s with its
        # default (spinning) and 546 s with OMP_WAIT_POLICY=PASSIVE; passive only helps when other work shares
        # the cores.
        env.update(
            JUPYTER_CONFIG_DIR=str(self.state_dir / "config"),
            JUPYTER_RUNTIME_DIR=str(self.state_dir / "runtime"),
            JUPYTER_PLATFORM_DIRS="1",
            PYDEVD_DISABLE_FILE_VALIDATION="1",
        )
        return env

    def url(self, path: str = "") -> str:
        return f"http://127.0.0.1:{self.port}/{path.lstrip('/')}"

    def api(self, path: str, method: str = "GET", timeout: float = 10):
        req = urllib.request.Request(
            self.url(path), method=method, headers={"Authorization": f"token {self.token}"}
        )
        with urllib.request.urlopen(req, timeout=timeout) as r:
            body = r.read()
        return json.loads(body) if body else None

    def log_tail(self, n: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-n:] if self.log_path.exists() else ""

    def start(self, timeout: float = 120):
        settings = self.state_dir / "user-settings"
        for rel, value in LAB_SETTINGS.items():
            (settings / rel).parent.mkdir(parents=True, exist_ok=True)
            (settings / rel).write_text(json.dumps(value))
        (self.state_dir / "workspaces").mkdir(parents=True, exist_ok=True)
        for attempt in range(3):  # a free port can be taken between the check and the bind
            self.port = _free_port()
            cmd = [
                sys.executable,
                "-m",
                "jupyterlab",
                "--no-browser",
                "--ServerApp.ip=127.0.0.1",
                f"--ServerApp.port={self.port}",
                "--ServerApp.port_retries=0",
                f"--IdentityProvider.token={self.token}",
                f"--ServerApp.root_dir={self.root_dir}",
                "--LabApp.expose_app_in_browser=True",
                f"--LabApp.user_settings_dir={settings}",
                f"--LabApp.workspaces_dir={self.state_dir / 'workspaces'}",
            ]
            if hasattr(os, "geteuid") and os.geteuid() == 0:
                cmd.append("--allow-root")
            with open(self.log_path, "ab") as log:
                self.proc = subprocess.Popen(
                    cmd, cwd=self.root_dir, env=self.env(), stdout=log, stderr=subprocess.STDOUT
                )
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and self.proc.poll() is None:
                try:
                    self.api("api/status", timeout=2)
                    return self
                except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                    time.sleep(0.5)
            if self.proc.poll() is None:
                self.stop()
                raise RuntimeError(
                    f"JupyterLab did not answer within {timeout:.0f} s; its log:\n{self.log_tail()}"
                )
        raise RuntimeError(
            f"JupyterLab exited (code {self.proc.returncode}) three times at start; its "
            f"log:\n{self.log_tail()}"
        )

    def shutdown_kernels_of(self, path: str):
        "Shut down the kernel of each session open on notebook `path` (relative to root_dir)."
        for s in self.api("api/sessions"):
            if s.get("path") == path:
                self.api(f"api/sessions/{s['id']}", method="DELETE", timeout=30)

    def stop(self):
        "Shut the server down (it shuts down its kernels); terminate, then kill, if it does not exit."
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            self.api("api/shutdown", method="POST", timeout=10)
        except Exception:
            pass
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


# ------------------------------------------------------------------------------------------------------------
# A notebook page.

_NB = "window.jupyterapp.shell.currentWidget"

JS_KERNEL_STATUS = f"""() => {{
  const w = {_NB};
  const k = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
  return k ? (k.connectionStatus === 'connected' ? k.status : k.connectionStatus) : 'none';
}}"""

JS_PROGRESS = f"""() => {{
  const cells = {_NB}.content.widgets.filter(c => c.model.type === 'code');
  const prompt = c => {{
    const p = c.node.querySelector('.jp-InputArea-prompt');
    return p ? p.textContent.trim() : '';
  }};
  return {{
    code_cells: cells.length,
    executed: cells.filter(c => c.model.executionCount !== null).length,
    queued: cells.filter(c => prompt(c) === '[*]:')
      .map(c => c.model.sharedModel.getSource().split('\\n').slice(0, 2).join(' / ')),
    errors: cells.filter(c => c.model.outputs.toJSON().some(o => o.output_type === 'error')).length,
    dialog: (document.querySelector('.jp-Dialog') || {{}}).innerText || null,
  }};
}}"""

JS_ERRORS = f"""() => {{
  const out = [];
  {_NB}.content.widgets.forEach((c, i) => {{
    if (c.model.type !== 'code') return;
    for (const o of c.model.outputs.toJSON()) if (o.output_type === 'error')
      out.push({{cell: i, source: c.model.sharedModel.getSource().slice(0, 400),
                 ename: o.ename, evalue: o.evalue, traceback: (o.traceback || []).join('\\n')}});
  }});
  return out;
}}"""

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def format_errors(errors: list) -> str:
    return "\n\n".join(
        f"cell {e['cell']}: {e['ename']}: {e['evalue']}\n--- source ---\n{e['source']}\n--- traceback (end) "
        "---\n" + _ANSI.sub("", e["traceback"])[-2500:]
        for e in errors
    )


def kernel_status(page) -> str:
    return page.evaluate(JS_KERNEL_STATUS)


def open_notebook(page, lab: JupyterLab, rel: str, timeout: float = 180):
    """Open notebook `rel` (relative to the server's root) in a workspace of its own (else JupyterLab restores
    the notebooks an earlier tab opened) and wait until its kernel is connected and idle."""
    workspace = f"{re.sub(r'[^A-Za-z0-9]+', '-', rel)}-{secrets.token_hex(4)}"
    page.goto(lab.url(f"lab/workspaces/{workspace}/tree/{rel}?token={lab.token}"))
    page.wait_for_selector(".jp-NotebookPanel .jp-Notebook .jp-Cell", timeout=timeout * 1000)
    page.wait_for_function(
        f"() => !!({_NB} && {_NB}.content && {_NB}.sessionContext)", timeout=timeout * 1000
    )
    deadline = time.monotonic() + timeout
    while (status := kernel_status(page)) != "idle":
        dialog = page.evaluate(JS_PROGRESS)["dialog"]
        if dialog:
            raise AssertionError(f"JupyterLab opened a dialog instead of the kernel: {dialog!r}")
        if time.monotonic() > deadline:
            raise AssertionError(f"the kernel of {rel} is not idle after {timeout:.0f} s: {status}")
        time.sleep(0.5)


def run_all_cells(page, timeout: float = 1800, poll: float = 1.0) -> dict:
    """Run > Run All Cells, then wait until the run is over: the kernel idle, no cell queued or running
    (`[*]`), and every code cell executed, or an error output (the kernel then drops the queued cells).
    Returns the progress."""
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()
    deadline, settled, last = time.monotonic() + timeout, 0, None
    while True:
        last = page.evaluate(JS_PROGRESS)
        if last["dialog"]:
            raise AssertionError(f"JupyterLab opened a dialog during the run: {last['dialog']!r}")
        over = (
            kernel_status(page) == "idle"
            and not last["queued"]
            and (last["executed"] == last["code_cells"] or last["errors"] > 0)
        )
        settled = settled + 1 if over else 0
        if settled >= 3:
            return last
        if time.monotonic() > deadline:
            slowest = ", ".join(f"{c['source']!r} {c['seconds']:.0f} s" for c in cell_times(page)[:5])
            raise AssertionError(
                f"the run did not finish within {timeout:.0f} s: {last['executed']}/{last['code_cells']} "
                "code "
                f"cells executed; still queued or running: {last['queued'][:2]}; slowest cells done: "
                f"{slowest}"
            )
        time.sleep(poll)


JS_CELL_TIMES = f"""() => {_NB}.content.widgets.filter(c => c.model.type === 'code').map(c => {{
  const e = c.model.getMetadata('execution') || {{}};
  const start = Date.parse(e['shell.execute_reply.started'] || e['iopub.execute_input']),
    end = Date.parse(e['shell.execute_reply']);
  return {{source: c.model.sharedModel.getSource().split('\\n')[0].slice(0, 60),
           seconds: (end - start) / 1000}};
}}).filter(c => c.seconds >= 0)"""


def cell_times(page) -> list:
    "The run time of each code cell that finished, slowest first (JupyterLab's recordTiming metadata)."
    return sorted(page.evaluate(JS_CELL_TIMES), key=lambda c: -c["seconds"])


def error_outputs(page) -> list:
    "The error outputs (tracebacks) of the notebook on `page`, from JupyterLab's notebook model."
    return page.evaluate(JS_ERRORS)


def _xpath_class(name: str) -> str:
    return f"contains(concat(' ', normalize-space(@class), ' '), ' {name} ')"


def find_widget(page, label: str):
    "The widget box (innermost `.widget-vbox`) holding the slider or checkbox whose description is `label`."
    slider = page.locator(
        f"xpath=//div[{_xpath_class('widget-slider')}][label[{_xpath_class('widget-label')} and "
        f"normalize-space(.)='{label}']]"
    )
    checkbox = page.locator(
        f"xpath=//div[{_xpath_class('widget-checkbox')}][.//span[normalize-space(.)='{label}']]"
    )
    control = slider if slider.count() else checkbox
    n = control.count()
    assert n == 1, f"expected one slider or checkbox labelled {label!r} on the page, found {n}"
    box = control.locator(f"xpath=ancestor::div[{_xpath_class('widget-vbox')}][1]")
    assert box.count() == 1, f"the control {label!r} is in no widget box (.widget-vbox)"
    return control, box


JS_OUTPUT = """box => {
  const out = box.querySelector('.widget-output');
  return out ? {images: [...out.querySelectorAll('img')].map(i => i.getAttribute('src') || ''),
                text: out.innerText.trim()}
             : {images: [], text: null};
}"""


def widget_output(box) -> dict:
    "What a widget box's output shows: the src of each image and the text."
    return box.evaluate(JS_OUTPUT)


def move_control(control) -> tuple:
    """Move a slider one step with the keyboard (focus its noUiSlider handle, press the arrow toward the side
    with room) or click a checkbox; returns (before, after) as the page shows them."""
    handle = control.locator(".noUi-handle")
    if handle.count():
        now, hi = float(handle.get_attribute("aria-valuenow")), float(handle.get_attribute("aria-valuemax"))
        before = handle.get_attribute("aria-valuetext")
        handle.focus()
        handle.press("ArrowRight" if now < hi else "ArrowLeft")
        return before, handle.get_attribute("aria-valuetext")
    box = control.locator("input[type=checkbox]")
    before = box.is_checked()
    box.click()
    return before, box.is_checked()


def wait_for_redraw(box, before: dict, timeout: float = 240, settle: float = 2.0) -> dict:
    """Wait until the widget's output shows an image other than `before`'s and has then stayed the same for
    `settle` s (a redraw may print its text before its figure); give up after `timeout` s. Returns what the
    output shows. (The kernel's busy/idle status is no guide here: ipykernel 7 reported `idle` while a widget
    cell still ran.)"""
    deadline, last, since = time.monotonic() + timeout, None, time.monotonic()
    while time.monotonic() < deadline:
        now = widget_output(box)
        if now != last:
            last, since = now, time.monotonic()
        elif now["images"] and now["images"] != before["images"] and time.monotonic() - since >= settle:
            box.evaluate(
                "b => Promise.all([...b.querySelectorAll('img')].map(i => i.decode().catch(() => null)))"
            )  # drawn, for the screenshot
            return now
        time.sleep(0.25)
    return last
