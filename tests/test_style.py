"""The house style the package and its lessons keep: one statement a line (no `;` joining statements) and
lines of at most 110 characters. nbdev writes `__all__` itself (at 120) and `_modidx.py`; a notebook cell may
end in `;` to hide its last value, a notebook idiom, not a second statement."""

import io, json, tokenize
from conftest import ROOT

LIMIT = 110


def semicolons(code: str) -> list[int]:
    "Line numbers of `;` tokens in `code` (IPython magics and shell lines blanked)."
    lines = [line if not line.lstrip().startswith(("%", "!")) else "" for line in code.splitlines()]
    tokens = tokenize.generate_tokens(io.StringIO("\n".join(lines) + "\n").readline)
    return [t.start[0] for t in tokens if t.type == tokenize.OP and t.string == ";"]


def module_problems(path) -> list[str]:
    text = path.read_text(encoding="utf-8")
    lines, problems, in_all = text.splitlines(), [], False
    for number, line in enumerate(lines, 1):
        in_all = in_all or line.startswith("__all__")
        if in_all:
            in_all = not line.rstrip().endswith("]")
            continue
        if len(line) > LIMIT and not line.startswith("# %%"):
            problems.append(f"{path.name}:{number} is {len(line)} characters")
    return problems + [f"{path.name}:{n} joins statements with ;" for n in semicolons(text)]


def test_the_package_keeps_the_house_style():
    modules = [p for p in sorted((ROOT / "restoration_nb").glob("*.py")) if p.name != "_modidx.py"]
    assert modules
    problems = [problem for path in modules for problem in module_problems(path)]
    assert not problems, problems[:20]


def test_the_notebooks_keep_the_house_style():
    problems = []
    for path in sorted((ROOT / "nbs").rglob("*.ipynb")):
        for cell in json.loads(path.read_text())["cells"]:
            if cell["cell_type"] != "code":
                continue
            code = "".join(cell["source"])
            last = len(code.rstrip().splitlines())
            long = [n for n, line in enumerate(code.splitlines(), 1) if len(line) > LIMIT]
            joined = [n for n in semicolons(code) if n != last or not code.rstrip().endswith(";")]
            problems += [f"{path.name} {cell.get('id')} line {n}: over {LIMIT} characters" for n in long]
            problems += [f"{path.name} {cell.get('id')} line {n}: joins statements with ;" for n in joined]
    assert not problems, problems[:20]
