"""benchmarks/gpu_all.sh, the one call that makes every GPU figure, rehearsed here with --dry-run: every step
runs on this CPU at tiny sizes and writes its results file into a temporary folder, never benchmarks/results.
The carried folder is a stand-in made here: the real one (benchmarks/gpu_wheels.sh) needs the registry. Its
wheels are empty ones with the names and versions the real folder holds, which the wheels step resolves as the
GPU machine would (CPython 3.12, manylinux); its old loop for the accelerate overhead is a copy of today's
package; without carried faces the steps read the lab's. The dry run is made once and every test reads it."""

import importlib.metadata, json, os, shutil, subprocess, sys, tarfile, zipfile
import pytest
from conftest import ROOT

SCRIPT = ROOT / "benchmarks" / "gpu_all.sh"
CELLS = ROOT / "benchmarks" / "gpu_cells.py"
RESULTS = {
    "wheels": [],
    "priors": ["priors_timing_cpu.json"],
    "instant": ["instant_speed_micro_cpu.json"],
    "flipnet": ["flipnet_speed_micro_cpu.json"],
    "adapter": ["adapter_speed_micro_cpu.json"],
    "gen2res": ["gen2res_speed_micro_cpu.json"],
    "cells": ["gpu_cells_cpu.json"],
    "accelerate": ["distributed_overhead_cpu.json"],
}
WHEELS = ("diffusers", "fastcore", "pytorch-msssim", "importlib_metadata")


def fake_carry(folder):
    "A carried folder: an empty wheel for each package at this venv's version, and today's package as plain/."
    wheels = folder / "wheels"
    wheels.mkdir(parents=True)
    pins = []
    for name in WHEELS:
        version, dist = importlib.metadata.version(name), name.replace("-", "_")
        info = f"{dist}-{version}.dist-info"
        with zipfile.ZipFile(wheels / f"{dist}-{version}-py3-none-any.whl", "w") as z:
            z.writestr(f"{info}/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
            z.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
            z.writestr(f"{info}/RECORD", "")
        pins.append(f"{name}=={version}")
    (wheels / "requirements.txt").write_text("\n".join(pins) + "\n")
    ignore = shutil.ignore_patterns("weights", "__pycache__")
    shutil.copytree(ROOT / "restoration_nb", folder / "plain" / "restoration_nb", ignore=ignore)
    return folder


def gpu_all(*args, env=None, timeout=60):
    return subprocess.run(
        ["bash", str(SCRIPT), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHON": sys.executable, **(env or {})},
    )


def committed() -> dict:
    "The committed results that share a name with the dry run's: name -> bytes."
    folder = ROOT / "benchmarks" / "results"
    names = [n for files in RESULTS.values() for n in files]
    return {n: (folder / n).read_bytes() for n in names if (folder / n).is_file()}


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("gpu_all")
    before = committed()
    out = tmp / "out"
    out.mkdir()
    carry = fake_carry(tmp / "carry")
    results = tmp / "results"
    r = gpu_all("--dry-run", "--carry", carry, "--results", results, env={"OUT": str(out)}, timeout=1800)
    return dict(run=r, results=results, out=out, before=before)


def test_every_step_runs_and_writes_its_results(dry_run):
    r = dry_run["run"]
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "every step ok" in r.stdout.splitlines()[-1], r.stdout[-2000:]
    summary = json.loads((dry_run["results"] / "gpu_all_cpu.json").read_text())
    assert [s["name"] for s in summary["steps"]] == list(RESULTS)
    assert [s["status"] for s in summary["steps"]] == ["ok"] * len(RESULTS), summary["steps"]
    assert summary["all_ok"] and summary["dry_run"] and summary["machine"]["device"] == "cpu"
    for step in summary["steps"]:
        assert step["commands"] and step["results"] == RESULTS[step["name"]], step
        for name in step["results"]:
            result = json.loads((dry_run["results"] / name).read_text())
            assert result["commands"] == step["commands"] and "machine" in result, name
    wheels = summary["steps"][0]["commands"][0]  # resolved for the GPU machine's Python, not installed here
    assert "--dry-run" in wheels and "--python-version 3.12" in wheels, wheels


def test_the_gpu_cells_are_checked_and_the_committed_results_untouched(dry_run):
    cells = json.loads((dry_run["results"] / "gpu_cells_cpu.json").read_text())
    notebooks = {r["notebook"] for r in cells["notebooks"]}
    assert "nbs/02_backbones.ipynb" in notebooks and "nbs/06_priors.ipynb" not in notebooks, notebooks
    statuses = [c["status"] for r in cells["notebooks"] for c in r["gpu_cells"]]
    assert statuses and all(s.startswith("checked") for s in statuses), statuses
    assert committed() == dry_run["before"]


def test_what_comes_back_from_the_device_tool_is_packed_in_out(dry_run):
    out = dry_run["out"]
    assert sorted(p.name for p in out.iterdir()) == [
        "gpu_all_cpu.json",
        "prior_micro-ddpm-faces64.tar",
        "prior_micro-sd-faces64.tar",
        "results_cpu.tar",
    ]
    with tarfile.open(out / "results_cpu.tar") as t:
        names = set(t.getnames())
    assert {f for files in RESULTS.values() for f in files} <= names and "logs/cells.log" in names, names
    with tarfile.open(out / "prior_micro-sd-faces64.tar") as t:
        assert "micro-sd-faces64/unet/config.json" in t.getnames()


def test_a_missing_wheel_folder_is_one_clear_line(tmp_path):
    r = gpu_all("--dry-run", "--carry", tmp_path / "nowhere")
    assert r.returncode == 2 and not r.stdout
    assert r.stderr.count("\n") == 1 and f"'{tmp_path / 'nowhere' / 'wheels'}'" in r.stderr, r.stderr
    assert "gpu_wheels.sh" in r.stderr


@pytest.mark.parametrize(
    "args, says",
    [
        (["--fast"], "unknown option '--fast'"),
        (["--dry-run", "--results"], "--results needs a value"),
        (["--prior-minutes", "soon"], "--prior-minutes 'soon'; expected a number of minutes > 0"),
        (["--prior-minutes", "0"], "--prior-minutes '0'"),
    ],
)
def test_a_bad_option_is_one_clear_line(args, says):
    r = gpu_all(*args)
    assert r.returncode == 2 and not r.stdout and r.stderr.count("\n") == 1 and says in r.stderr, r.stderr


def test_a_gpu_cell_runs_with_only_the_cells_it_needs(tmp_path):
    "benchmarks/gpu_cells.py on a small notebook: the cells a GPU cell reads from run; the others never do."

    def cell(source):
        return dict(cell_type="code", metadata={}, outputs=[], execution_count=None, source=source)

    nb = tmp_path / "small.ipynb"
    cells = [
        cell("import math\nfrom dataclasses import replace\nx = 2"),
        cell("y = x * 3"),
        cell("#| slow\ny = 1 / 0"),
        cell("unused = 1 / 0"),
        cell("from dataclasses import replace\nz = 1 / 0  # a lesson cell that imports again"),
        cell("#| gpu\nprint(y, replace)\nmath.sqrt(y * 6)"),
        cell("#| gpu\nprint(nothing_binds_this)"),
    ]
    nb.write_text(json.dumps(dict(cells=cells, metadata={}, nbformat=4, nbformat_minor=5)))
    for check in (False, True):
        r = subprocess.run(
            [sys.executable, str(CELLS), "--one", str(nb)] + ["--check"] * check,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert r.returncode == 0, r.stderr[-3000:]
        report = json.loads(r.stdout.strip().splitlines()[-1])
        assert [c["cell"] for c in report["cells_run"]] == [0, 1]
        assert all(c["status"] == "ok" for c in report["cells_run"])
        first, second = report["gpu_cells"]
        if check:
            assert first["status"].startswith("checked") and "output" not in first
        else:
            assert first["status"] == "ok" and first["output"].splitlines()[-1] == "6.0", first
        assert second["status"] == "failed" and "nothing_binds_this" in second["error"], second
        assert second["names_bound_by_no_cell"] == ["nothing_binds_this"]


@pytest.mark.parametrize(
    "args, says",
    [
        (["--fast"], "unknown option '--fast'"),
        (["--margin-mib", "lots"], "--margin-mib 'lots'; expected a whole number of MiB"),
        (["--carry", "benchmarks"], "--carry 'benchmarks'; expected a folder git ignores"),
    ],
)
def test_gpu_wheels_refuses_a_bad_option_before_downloading_anything(args, says):
    r = subprocess.run(
        ["bash", str(ROOT / "benchmarks" / "gpu_wheels.sh"), *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2 and not r.stdout and r.stderr.count("\n") == 1 and says in r.stderr, r.stderr
