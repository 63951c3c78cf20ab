"""Past one machine, measured: the Ray sweep backend against the local one, and a training step under
accelerate.

  python benchmarks/bench_distributed.py sweep
      # CPU: Ray's overhead per grid point (6 points of the degradation sweep)
  python benchmarks/bench_distributed.py sweep --gpu --points 8
      # GPU: 8 points on one GPU, 2 Ray workers against 1
  python benchmarks/bench_distributed.py train --label accelerate
      # seconds per train_prior step, this checkout
  PYTHONPATH=/path/to/checkout-before-accelerate python benchmarks/bench_distributed.py train --label plain
      # the loop before
  python benchmarks/bench_distributed.py profile
      # cProfile of 30 train_prior steps: the share of time inside accelerate
  python benchmarks/bench_distributed.py overhead --plain /path/to/checkout-before-accelerate --rounds 3
      # the two loops alternately in fresh processes, so that drift of the machine hits both:
      # median step time and overhead

Each writes benchmarks/results/distributed_<what>_<cpu|gpu>[_label].json
(refused if it exists, unless --overwrite); the train results record which restoration_nb they timed.
"""

from __future__ import annotations
import argparse, json, os, sys, tempfile, time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, result_path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "nbs" / "examples"


def _job(points: int, gpu: bool) -> tuple:
    """(notebook, grid, fixed) of the benchmark sweep: the degradation sweep on a CPU, gen2res points (the
    lab's GPU) on a GPU."""
    if gpu:
        return (
            EXAMPLES / "gen2res_sweep.ipynb",
            {"K": [50, 100, 200, 400, 600, 800][: max(1, points // 2)], "n": [1, 3]},
            {"n_faces": 2, "album_size": 4, "album_steps": 20, "finetune_steps": 40},
        )
    return (
        EXAMPLES / "degradation_sweep.ipynb",
        {"sigma": [0.5, 1.0, 1.5, 2.0, 3.0, 4.0][: max(1, points // 2)], "quality": [40, 90]},
        {"n_faces": 4},
    )


def _sweep(out: Path, job: tuple, backend: str, resources: dict | None = None) -> dict:
    from restoration_nb.sweeps import run_sweep

    notebook, grid, fixed = job
    t = time.perf_counter()
    table = run_sweep(
        notebook, grid, out, fixed=fixed, timeout=1200, progress=False, backend=backend, resources=resources
    )
    wall = time.perf_counter() - t
    assert table["status"] == ["ok"] * len(table), table.rows
    metric = (
        "psnr"
        if "psnr" in table.columns
        else next(k for k in table.columns if k not in (*grid, *fixed, "point", "status", "duration_s"))
    )
    return dict(
        wall_s=round(wall, 2),
        points=len(table),
        point_s_sum=round(sum(table["duration_s"]), 2),
        wall_per_point_s=round(wall / len(table), 3),
        metric=metric,
        values=table[metric],
    )


def bench_sweep(args) -> dict:
    import ray

    job = _job(args.points, args.gpu)
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        local = _sweep(d / "local", job, "local")
        t = time.perf_counter()
        cpus = 2 if not args.gpu else 4
        ray.init(
            num_cpus=cpus,
            num_gpus=1 if args.gpu else 0,
            include_dashboard=False,
            log_to_driver=False,
            logging_level="ERROR",
        )
        ray_start_s = time.perf_counter() - t
        try:
            if args.gpu:  # the notebook's kernel sees the GPU Ray gives the task; degradations run there
                one = _sweep(d / "ray1", job, "ray", {"num_cpus": 1, "num_gpus": 1})
                two = _sweep(d / "ray2", job, "ray", {"num_cpus": 1, "num_gpus": 0.5})
                runs = {"ray, 1 worker on the GPU": one, "ray, 2 workers share the GPU": two}
            else:
                serial = _sweep(
                    d / "ray_serial", job, "ray", {"num_cpus": cpus}
                )  # one task at a time, like the local backend
                parallel = _sweep(d / "ray_parallel", job, "ray", {"num_cpus": 1})  # two at a time
                runs = {"ray, one task at a time": serial, "ray, two tasks at a time": parallel}
        finally:
            ray.shutdown()
    same = {
        name: r["values"] == local["values"] for name, r in runs.items()
    }  # a GPU may differ in the last bits
    first = next(iter(runs.values()))
    return dict(
        notebook=job[0].name,
        grid=job[1],
        fixed=job[2],
        local=local,
        same_values_as_local=same,
        ray_init_s=round(ray_start_s, 2),
        **runs,
        ray_overhead_per_point_s=round((first["wall_s"] - local["wall_s"]) / local["points"], 3),
        note="overhead per point: (wall of the first Ray run - wall of the local run) / points; ray.init is "
        "apart",
    )


def bench_train(args) -> dict:
    """Seconds per train_prior step of the restoration_nb this Python imports (the difference of an N- and a
    2N-step run)."""
    import restoration_nb
    from restoration_nb.priors import train_prior, load_training_faces

    faces = load_training_faces(limit=256, progress=False)
    out = {}
    with tempfile.TemporaryDirectory() as d:
        for i, steps in enumerate((args.steps, 2 * args.steps)):  # the difference removes set-up time
            t = time.perf_counter()
            log = train_prior(
                "micro-sd-faces64",
                f"{d}/{i}",
                "cpu" if not torch.cuda.is_available() else "gpu",
                faces=faces,
                steps=steps,
                checkpoint_every=10**6,
                progress=False,
                max_minutes=None,
            )
            out[steps] = time.perf_counter() - t
    per_step = (out[2 * args.steps] - out[args.steps]) / args.steps
    return dict(
        step_s=round(per_step, 4),
        loop_step_s=round(log["minutes"] * 60 / (2 * args.steps), 4),  # the loop's own clock, no set-up
        steps=args.steps,
        runs_s={str(k): round(v, 2) for k, v in out.items()},
        processes=log.get("processes", 1),
        device=log["device"],
        restoration_nb=str(Path(restoration_nb.__file__).parent),
    )


def bench_overhead(args) -> dict:
    """Seconds per train_prior step of this checkout (accelerate) and of `--plain` (the loop before it),
    measured alternately, each in a fresh process, `--rounds` times, by the loop's own clock (its log's
    minutes over a 2 x --steps run: no set-up, which made the difference of two runs swing by 4x here); the
    overhead is the ratio of the medians."""
    import statistics, subprocess

    if not args.plain or not (Path(args.plain) / "restoration_nb").is_dir():
        raise SystemExit(
            f"--plain={args.plain!r}: expected a checkout whose restoration_nb/ is the loop before "
            "accelerate (e.g. commit 09e6769)"
        )
    runs = {"accelerate": [], "plain": []}
    for r in range(args.rounds):
        for label in (
            ("accelerate", "plain") if r % 2 == 0 else ("plain", "accelerate")
        ):  # alternate which goes first
            env = dict(os.environ, PYTHONPATH=str(Path(args.plain).resolve() if label == "plain" else ROOT))
            out = subprocess.run(
                [sys.executable, __file__, "train", "--steps", str(args.steps), "--print-only"],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            result = json.loads(out[out.index("{") :])
            expected = Path(args.plain).resolve() if label == "plain" else ROOT
            assert Path(result["restoration_nb"]).parent == expected, (label, result["restoration_nb"])
            runs[label].append(result["loop_step_s"])
            print(label, result["loop_step_s"], result["step_s"], flush=True)
    med = {k: statistics.median(v) for k, v in runs.items()}
    return dict(
        step_s=runs,
        median_step_s=med,
        overhead_pct=round(100 * (med["accelerate"] / med["plain"] - 1), 2),
        steps=args.steps,
        rounds=args.rounds,
        plain=str(Path(args.plain).resolve()),
        plain_commit=subprocess.run(
            ["git", "-C", args.plain, "rev-parse", "--short", "HEAD"], capture_output=True, text=True
        ).stdout.strip(),
    )


def profile_train(path: Path, steps: int = 30):
    """cProfile `steps` train_prior steps (after 3 warm-up steps) and write the share of time spent inside
    accelerate's own code."""
    import cProfile, io, pstats
    from restoration_nb.priors import train_prior, load_training_faces

    faces = load_training_faces(limit=256, progress=False)
    with tempfile.TemporaryDirectory() as d:
        run = lambda name, n: train_prior(
            "micro-sd-faces64",
            f"{d}/{name}",
            "cpu",
            faces=faces,
            steps=n,
            progress=False,
            checkpoint_every=10**6,
            max_minutes=None,
        )
        run("warm", 3)
        prof = cProfile.Profile()
        prof.runcall(run, "timed", steps)
    stats = pstats.Stats(prof)
    own = sum(tt for (f, _, _), (_, _, tt, _, _) in stats.stats.items() if f"{os.sep}accelerate{os.sep}" in f)
    total = sum(tt for (_, _, tt, _, _) in stats.stats.values())
    text = io.StringIO()
    pstats.Stats(prof, stream=text).sort_stats("cumulative").print_stats(25)
    m = machine(torch.device("cpu"))
    path.write_text(
        f"cProfile of train_prior('micro-sd-faces64', preset 'cpu', {steps} steps, 256 faces) after 3 "
        "warm-up steps\n"
        f"{m['device_name']}, {m['cpu_count']} cores, torch {m['torch']}, {m['date']}\n"
        f"time inside accelerate's own functions: {own:.3f} s of {total:.2f} s ({100 * own / total:.2f} "
        f"%)\n\n{text.getvalue()}"
    )
    print(path.read_text()[:400])


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", choices=("sweep", "train", "profile", "overhead"))
    p.add_argument("--points", type=int, default=6)
    p.add_argument("--gpu", action="store_true")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--label", default=None)
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--plain", default=None)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--print-only", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.print_only:
        return print(json.dumps(bench_train(args)))
    if args.what == "profile":
        return profile_train(result_path("distributed_train_cpu_profile.txt", args.overwrite))
    kind = (
        "gpu" if (args.gpu or (args.what in ("train", "overhead") and torch.cuda.is_available())) else "cpu"
    )
    path = result_path(
        f"distributed_{args.what}_{kind}{'_' + args.label if args.label else ''}.json", args.overwrite
    )
    bench = dict(sweep=bench_sweep, train=bench_train, overhead=bench_overhead)[args.what]
    result = dict(bench(args), machine=machine(torch.device("cuda" if kind == "gpu" else "cpu")))
    path.write_text(json.dumps(result, indent=1))
    print(json.dumps({k: v for k, v in result.items() if k != "machine"}, indent=1))


if __name__ == "__main__":
    main()
