"""What every benchmark shares: the machine's description and a warm-up-then-median timer."""

from __future__ import annotations
import os, platform, statistics, time
from datetime import datetime, timezone
from pathlib import Path

import torch

# $RESTORATION_NB_RESULTS moves the result files (benchmarks/gpu_all.sh --dry-run: to a temporary folder)
RESULTS = Path(os.environ.get("RESTORATION_NB_RESULTS") or Path(__file__).resolve().parent / "results")


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine(device: torch.device) -> dict:
    "Where a result was measured, to store beside it."
    return dict(
        device=str(device),
        device_name=device_name(device),
        torch=torch.__version__,
        python=platform.python_version(),
        cpu_count=os.cpu_count(),
        torch_threads=torch.get_num_threads(),
        load_average_1min=round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
        date=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )


def timed(fn, device: torch.device, warmup: int, runs: int) -> dict:
    """Median and min seconds of `fn(run)` over `runs` timed calls after `warmup` untimed ones (`fn(runs +
    i)`)."""
    for i in range(warmup):
        fn(runs + i)
    times = []
    for i in range(runs):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t = time.perf_counter()
        fn(i)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - t)
    return dict(
        median_s=round(statistics.median(times), 4),
        min_s=round(min(times), 4),
        runs_s=[round(t, 4) for t in times],
    )


def result_path(name: str, overwrite: bool) -> Path:
    "Where result file `name` goes in benchmarks/results; refused if it exists, unless `overwrite`."
    path = RESULTS / name
    if path.exists() and not overwrite:
        raise SystemExit(f"{path} exists; pass --overwrite to replace it")
    return path
