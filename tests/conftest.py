"""Shared fixtures: small real faces written to disk, and a way to call the installed console script."""

import os, shutil, subprocess, sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def console(name: str) -> str:
    "Path of a console script installed beside this Python (falls back to PATH)."
    return shutil.which(name, path=str(BIN)) or shutil.which(name) or name


def run_cli(*argv, cwd=None, env=None, timeout=600):
    "Run the installed `restoration-nb` console script; returns the CompletedProcess."
    return subprocess.run(
        [console("restoration-nb"), *map(str, argv)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


@pytest.fixture(scope="session")
def faces_dir(tmp_path_factory):
    "Four held-out faces saved as PNG files."
    from restoration_nb.core import load_faces, save_image

    d = tmp_path_factory.mktemp("faces")
    for i, face in enumerate(load_faces(4)):
        save_image(face, d / f"face{i}.png")
    return d


def run_example(notebook: Path, tmp_path: Path, name: str, **params) -> dict:
    """Run an example notebook under papermill with `params` (plus a metrics_path) and return the metrics it
    recorded."""
    import json
    import papermill as pm

    metrics = tmp_path / f"{name}.json"
    pm.execute_notebook(
        str(notebook),
        str(tmp_path / f"{name}.ipynb"),
        parameters=dict(params, metrics_path=str(metrics)),
        execution_timeout=600,
        start_timeout=120,
        progress_bar=False,
        cwd=str(notebook.parent),
    )
    return json.loads(metrics.read_text())
