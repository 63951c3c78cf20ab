"""Sweeps on Ray: the same spec and files as the local backend, one Ray task per point, on a local Ray
(2 CPUs).

That a grid on Ray gives the local backend's table number for number, and writes the same files, is shown and
tested in nbs/04_sweeps.ipynb. Here: a point that fails is reported and the others finish; a sweep whose
driver is killed, or whose worker dies, finishes only the missing points when run again. Without Ray
installed, `--backend ray` says how to install it (that test runs everywhere).
"""

import json, signal, subprocess, sys, time
import pytest
from conftest import ROOT, console, run_cli

EXAMPLE = ROOT / "nbs" / "examples" / "degradation_sweep.ipynb"


def write_notebook(path, crash_at=None):
    """A small sweep notebook: parameters x, pause (seconds), marker; records y = x * x. With `marker` naming
    a file that exists and x == crash_at, its kernel kills the process that started it (the Ray worker) and
    then itself."""
    import nbformat

    cells = [
        nbformat.v4.new_code_cell(
            "x = 1\npause = 0.0\nmarker = None\nmetrics_path = None", metadata={"tags": ["parameters"]}
        ),
        nbformat.v4.new_code_cell(
            f"import os, pathlib, signal, time\n"
            f"if marker and pathlib.Path(marker).exists() and x == {crash_at!r}:\n"
            f"    os.kill(os.getppid(), signal.SIGKILL); os._exit(1)\n"
            f"time.sleep(pause)"
        ),
        nbformat.v4.new_code_cell(
            "from restoration_nb.sweeps import record_metrics\nrecord_metrics(dict(y=x * x), "
            "path=metrics_path)"
        ),
    ]
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


def finished(out):
    "The points of sweep folder `out` whose run finished ok."

    def status(p):
        try:
            return json.loads(p.read_text()).get("status")
        except (OSError, json.JSONDecodeError):
            return None

    return sorted(p.parent.name for p in out.glob("*/point.json") if status(p) == "ok")


@pytest.fixture(scope="module")
def ray_cluster():
    "A local Ray with 2 CPUs for the module; yields its address."
    ray = pytest.importorskip(
        "ray",
        reason="Ray is not installed: pip install -e '.[distributed]' (the sweeps-on-Ray tests need it)",
    )
    ctx = ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    try:
        yield ctx.address_info["gcs_address"]
    finally:
        ray.shutdown()


def test_a_failing_point_is_reported_and_the_others_finish(ray_cluster, tmp_path):
    from restoration_nb.sweeps import collect_results, run_sweep

    table = run_sweep(
        EXAMPLE,
        {"quality": [0, 50, 90]},
        tmp_path / "s",
        fixed={"n_faces": 2},
        timeout=300,
        progress=False,
        backend="ray",
    )
    status = dict(zip(table["point"], table["status"]))
    assert status["quality-50"] == status["quality-90"] == "ok", status
    assert (
        status["quality-0"].startswith("failed: ValueError")
        and "quality must be in 1..100" in status["quality-0"]
    ), status
    assert table.rows[0]["psnr"] is None
    assert [r["point"] for r in collect_results(tmp_path / "s").rows] == ["quality-50", "quality-90"]
    assert not (tmp_path / "s" / "quality-0" / "metrics.json").exists()


def test_killed_driver_rerun_finishes_only_the_missing_points(ray_cluster, tmp_path):
    nb = write_notebook(tmp_path / "slow.ipynb")
    spec = tmp_path / "spec.json"
    spec.write_text(
        json.dumps(
            {"notebook": str(nb), "grid": {"x": [1, 2, 3, 4, 5, 6]}, "fixed": {"pause": 1.5}, "timeout": 120}
        )
    )
    out = tmp_path / "sweep"
    cmd = [
        console("restoration-nb"),
        "sweep",
        str(spec),
        "-o",
        str(out),
        "--backend",
        "ray",
        "--address",
        ray_cluster,
        "--quiet",
    ]
    driver = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and len(finished(out)) < 2 and driver.poll() is None:
        time.sleep(0.2)
    driver.send_signal(signal.SIGKILL)
    driver.wait(30)
    time.sleep(5)  # Ray ends the dead driver's tasks; a point already past its pause (1.5 s) is over by now
    done = {
        name: ((out / name / "metrics.json").read_text(), (out / name / "metrics.json").stat().st_mtime_ns)
        for name in finished(out)
    }
    assert driver.returncode == -signal.SIGKILL, (
        f"the sweep ended before the kill (exit {driver.returncode}): {driver.stderr.read()[-2000:]}"
    )
    assert 2 <= len(done) < 6, f"the kill came too late to test anything: {sorted(done)} finished"
    r = run_cli("sweep", spec, "-o", out, "--backend", "ray", "--address", ray_cluster, "--quiet")
    assert r.returncode == 0, r.stderr
    records = {p.parent.name: json.loads(p.read_text()) for p in out.glob("*/point.json")}
    assert sorted(records) == [f"x-{i}" for i in range(1, 7)] and all(
        v["status"] == "ok" for v in records.values()
    ), records
    for name, (text, stamp) in done.items():  # finished points were neither run again nor touched
        m = out / name / "metrics.json"
        assert (m.read_text(), m.stat().st_mtime_ns) == (text, stamp), name
    rows = [line for line in r.stdout.splitlines() if line.startswith("| x-")]
    assert sum("skipped (done)" in line for line in rows) == len(done) and sum(
        "| ok" in line for line in rows
    ) == 6 - len(done), r.stdout
    assert [json.loads((out / f"x-{i}" / "metrics.json").read_text())["y"] for i in range(1, 7)] == [
        1,
        4,
        9,
        16,
        25,
        36,
    ]
    assert not list(out.rglob("*.tmp*")) and not (out / ".sweep.lock").exists()


def test_a_dead_worker_fails_its_point_and_a_rerun_finishes_it(ray_cluster, tmp_path):
    from restoration_nb.sweeps import run_sweep

    marker = tmp_path / "crash"
    marker.touch()
    nb = write_notebook(tmp_path / "crashy.ipynb", crash_at=3)
    grid, fixed = {"x": [1, 2, 3, 4]}, {"marker": str(marker)}
    first = run_sweep(nb, grid, tmp_path / "s", fixed=fixed, timeout=120, progress=False, backend="ray")
    status = dict(zip(first["point"], first["status"]))
    assert status["x-3"].startswith("failed: Ray task lost"), status
    assert [status[f"x-{i}"] for i in (1, 2, 4)] == ["ok"] * 3, status
    assert json.loads((tmp_path / "s" / "x-3" / "point.json").read_text())["status"] == status["x-3"]
    marker.unlink()  # the worker no longer dies
    again = run_sweep(nb, grid, tmp_path / "s", fixed=fixed, timeout=120, progress=False, backend="ray")
    assert again["status"] == ["skipped (done)", "skipped (done)", "ok", "skipped (done)"], again.rows
    assert again["y"] == [1, 4, 9, 16]


def test_ray_backend_without_ray_says_how_to_install_it(tmp_path, monkeypatch, capsys):
    from restoration_nb.cli import main

    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now fails as if Ray were not installed
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"notebook": str(EXAMPLE), "grid": {"sigma": [1.0]}}))
    assert main(["sweep", str(spec), "-o", str(tmp_path / "out"), "--backend", "ray", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert (
        "backend='ray' needs Ray, which is not installed here: pip install 'restoration-nb[distributed]'"
        in err
    ), err
    assert not (tmp_path / "out").exists()
