r"""The notebooks' `#| gpu` cells, each run with only the cells it needs, without Jupyter or nbdev.

A GPU cell reads names (`faces`, `degraded`, `build_model`, ...); for each one, the last cell before it that
binds that name (an assignment, an import, a def) is needed, and so are the cells that cell needs, and so on.
The needed cells and the GPU cells run in notebook order in one namespace, in the notebook's folder, one
process per notebook. Cells flagged `#| slow` or `#| eval: false` are never used, as in `nbdev-test`. So a
GPU cell runs on a machine that cannot run the whole notebook: one without dlib, whose other cells measure
identity.

  python benchmarks/gpu_cells.py [--skip 06_priors] [--jobs 3] [--timeout 110] [--overwrite]
      # on a CUDA machine: writes benchmarks/results/gpu_cells_cuda.json (each cell: status, seconds, output);
      # a notebook still running after --timeout seconds is stopped and recorded as such
  python benchmarks/gpu_cells.py --check
      # anywhere: runs the needed cells, then only compiles each GPU cell and checks that every name it
      # reads is bound by then; writes gpu_cells_cpu.json

The file is refused if it exists, unless --overwrite.
"""

from __future__ import annotations
import argparse, ast, builtins, contextlib, io, json, os, subprocess, sys, time, traceback
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, result_path  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
NEVER = ("slow", "eval: false")  # cells nbdev-test skips with --flags gpu


def flags(source: str) -> list[str]:
    return [line[2:].strip() for line in source.splitlines() if line.startswith("#|")]


def code_cells(nb: Path) -> list[dict]:
    "The notebook's code cells: index, source, flags."
    cells = json.loads(nb.read_text())["cells"]
    out = []
    for i, c in enumerate(cells):
        if c["cell_type"] == "code":
            src = "".join(c["source"])
            out.append(dict(index=i, source=src, flags=flags(src)))
    return out


def names(source: str) -> tuple[dict, set]:
    """({name: how the cell binds it at its top level}, names it reads that nothing in the cell binds). How:
    the import ('from m import x') for an imported name, else None. Arguments, comprehension variables and a
    function's own assignments count as bound: a cell may over-count what it binds, never what it needs from
    before (a miss shows as an unbound name in --check)."""
    tree = ast.parse(source)
    top, local, read = {}, set(), set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            top[node.name] = None
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for a in node.names:
                top[(a.asname or a.name).split(".")[0]] = f"{getattr(node, 'module', '')}: {a.name}"
        else:
            top.update(
                (n.id, None)
                for n in ast.walk(node)
                if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)
            )
    for n in ast.walk(tree):
        if isinstance(n, ast.Name):
            (read if isinstance(n.ctx, ast.Load) else local).add(n.id)
        elif isinstance(n, ast.arg):
            local.add(n.arg)
        elif isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            local.add(n.name)
        elif isinstance(n, (ast.Import, ast.ImportFrom)):
            local.update((a.asname or a.name).split(".")[0] for a in n.names)
        elif isinstance(n, ast.ExceptHandler) and n.name:
            local.add(n.name)
    return top, read - local - set(top) - set(dir(builtins))


def binder(name: str, before: int, bound: list, usable: list) -> int | None:
    """The cell before `before` whose binding of `name` the GPU cell sees: the last one, or, when that one
    imports it, the first cell of the run of cells that import it the same way (a lesson cell that imports
    `replace` again is not needed for `replace`)."""
    last = next((j for j in range(before - 1, -1, -1) if usable[j] and name in bound[j][0]), None)
    how = None if last is None else bound[last][0][name]
    if how is None:
        return last
    first = last
    for j in range(last - 1, -1, -1):
        if usable[j] and name in bound[j][0]:
            if bound[j][0][name] != how:
                break
            first = j
    return first


def plan(cells: list[dict]) -> tuple[list[int], dict]:
    """Positions (in `cells`) of the cells to run, in order, and for each GPU cell the names no earlier cell
    binds."""
    usable = [not any(f in NEVER for f in c["flags"]) for c in cells]
    bound = [names(c["source"]) for c in cells]
    need, unbound, todo = set(), {}, [i for i, c in enumerate(cells) if "gpu" in c["flags"]]
    for g in todo:
        unbound[cells[g]["index"]] = []
    while todo:
        i = todo.pop()
        if i in need:
            continue
        need.add(i)
        for name in sorted(bound[i][1]):
            src = binder(name, i, bound, usable)
            if src is None:
                if "gpu" in cells[i]["flags"]:
                    unbound[cells[i]["index"]].append(name)
            else:
                todo.append(src)
    return sorted(need), unbound


def run_cell(source: str, ns: dict) -> str:
    "Exec one cell in `ns`; returns what it printed and, as Jupyter shows it, its last expression's value."
    tree = ast.parse(source)
    last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(tree, "<cell>", "exec"), ns)
        if last is not None:
            value = eval(compile(ast.Expression(last.value), "<cell>", "eval"), ns)
            if value is not None:
                show = getattr(value, "to_markdown", None)
                print(show() if callable(show) else repr(value))
    return out.getvalue()


def shown(nb: Path) -> str:
    return str(nb.relative_to(ROOT)) if nb.is_relative_to(ROOT) else str(nb)


def run_notebook(nb: Path, check: bool) -> dict:
    "Run (or, with `check`, only check) one notebook's GPU cells with the cells they need."
    cells = code_cells(nb)
    order, unbound = plan(cells)
    ns, promised = dict(__name__="__main__"), set()  # promised: what the GPU cells checked, not run, bind
    os.chdir(nb.parent)
    sys.path.insert(0, str(nb.parent))
    report, failed = dict(notebook=shown(nb), cells_run=[], gpu_cells=[]), None
    for i in order:
        c = cells[i]
        gpu = "gpu" in c["flags"]
        entry = dict(cell=c["index"])
        t = time.perf_counter()
        try:
            if failed is not None:
                raise RuntimeError(f"not run: cell {failed} that it needs failed")
            if gpu and check:
                compile(c["source"], f"<cell {c['index']}>", "exec")
                missing = [n for n in names(c["source"])[1] if n not in ns and n not in promised]
                if missing:
                    raise NameError(
                        f"cell {c['index']} reads {', '.join(missing)}, which no cell before binds"
                    )
                promised |= set(names(c["source"])[0])
                entry.update(status="checked (compiled, every name bound; not run: --check)")
            else:
                entry.update(status="ok", output=run_cell(c["source"], ns)[-4000:])
        except Exception as e:  # a failure is recorded; the cells after it are not run
            entry.update(
                status="failed", error=f"{type(e).__name__}: {e}", trace=traceback.format_exc()[-3000:]
            )
            if not gpu:
                failed = c["index"]
        entry["seconds"] = round(time.perf_counter() - t, 2)
        if gpu:
            entry["names_bound_by_no_cell"] = unbound[c["index"]]
            report["gpu_cells"].append(entry)
        else:
            report["cells_run"].append({k: v for k, v in entry.items() if k != "output"})
    return report


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--check", action="store_true", help="run the needed cells; only compile the GPU cells")
    p.add_argument("--skip", nargs="*", default=[], help="notebook names to leave out, e.g. 06_priors")
    p.add_argument("--jobs", type=int, default=1, help="notebooks at once, each in its own process")
    p.add_argument("--timeout", type=float, default=600, help="seconds a notebook may take")
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--one", default=None, help=argparse.SUPPRESS)  # internal: run one notebook, print JSON
    args = p.parse_args()
    if args.one:
        print("\n" + json.dumps(run_notebook(Path(args.one).resolve(), args.check)))
        return 0
    if args.jobs < 1 or not args.timeout > 0:
        p.error(f"--jobs {args.jobs} --timeout {args.timeout}: expected processes >= 1 and seconds > 0")
    import torch

    device = torch.device("cpu" if args.check else "cuda")
    path = result_path(f"gpu_cells_{device.type}.json", args.overwrite)
    notebooks = [
        nb
        for nb in sorted((ROOT / "nbs").rglob("*.ipynb"))
        if ".ipynb_checkpoints" not in nb.parts
        and nb.stem not in args.skip
        and any("gpu" in c["flags"] for c in code_cells(nb))
    ]

    def one(nb: Path) -> dict:
        cmd = [sys.executable, __file__, "--one", str(nb)] + (["--check"] if args.check else [])
        t, env = time.perf_counter(), dict(os.environ, MPLBACKEND="Agg")
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=args.timeout)
            report = json.loads(r.stdout.strip().splitlines()[-1])
            report["stderr_tail"] = r.stderr[-2000:]
        except subprocess.TimeoutExpired:
            report = dict(
                notebook=shown(nb), gpu_cells=[], error=f"stopped after --timeout {args.timeout:g} s"
            )
        except (json.JSONDecodeError, IndexError):
            report = dict(notebook=shown(nb), gpu_cells=[], error=f"exit {r.returncode}: {r.stderr[-2000:]}")
        report["seconds"] = round(time.perf_counter() - t, 1)
        print(
            report["notebook"],
            [c["status"] for c in report["gpu_cells"]],
            f"{report['seconds']} s",
            flush=True,
        )
        return report

    with ThreadPoolExecutor(args.jobs) as pool:
        reports = list(pool.map(one, notebooks))
    cells = [c for r in reports for c in r["gpu_cells"]]
    ok = all(c["status"] != "failed" for c in cells) and all(r["gpu_cells"] for r in reports)
    out = dict(
        mode="check" if args.check else "run",
        skipped=args.skip,
        jobs=args.jobs,
        note="each GPU cell ran with only the cells it needs (see benchmarks/gpu_cells.py); with jobs > 1 "
        "the notebooks shared the GPU, so times printed by cells are not figures: the speed benchmarks are",
        all_ok=ok,
        notebooks=reports,
        machine=machine(device),
    )
    from restoration_nb.core import atomic_write_json

    atomic_write_json(path, out)
    print(f"wrote {path}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
