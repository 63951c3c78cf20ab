"""Course labs: every solution passes its checks, every student version fails each check with its message,
and grading a correct, a wrong and a broken submission gives the expected scores (papermill runs, no GPU)."""

import json
import nbformat
import pytest
from conftest import ROOT, run_cli
from restoration_nb.core import face_data_dir
from restoration_nb.labs import LABS, build_labs, grade_submission, lab_notebook_problems

LAB_FILES = sorted((ROOT / "nbs" / "labs").glob("lab*.ipynb"))


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    "Every lab built into a fresh folder: {lab: (solution, student)}."
    return build_labs(tmp_path_factory.mktemp("course"), ROOT / "nbs" / "labs")


def test_every_lab_has_a_solution_notebook():
    assert sorted(p.stem for p in LAB_FILES) == sorted(lab.notebook for lab in LABS.values())
    for path in LAB_FILES:
        assert lab_notebook_problems(path) == [], path


@pytest.mark.parametrize("lab", sorted(LABS))
def test_student_version_fails_each_check_with_its_message(course, lab):
    report = grade_submission(course[lab][1], timeout=120)
    assert report.lab == lab and report.problem is None
    assert [r["exercise"] for r in report.rows] == list(LABS[lab].exercises)
    for row in report.rows:
        assert row["status"] == "failed" and row["points"] == 0, row
        assert (
            f"`{row['exercise']}` is not written yet: replace the `raise NotImplementedError` line"
            in row["message"]
        ), row


def _edit(nb_path, out_path, replace: dict, drop_check: str | None = None):
    """A copy of the notebook with code replaced in the cells that define the named functions (and one check
    cell deleted)."""
    nb = nbformat.read(str(nb_path), as_version=4)
    for name, code in replace.items():
        cell = next(c for c in nb.cells if c.cell_type == "code" and c.source.startswith(f"def {name}("))
        cell.source = code
    if drop_check:
        nb.cells = [c for c in nb.cells if c.source.strip() != f'check("{drop_check}", {drop_check})']
    nbformat.write(nb, str(out_path))
    return out_path


ABAR_LAST_BUG = '''def ddim_update(x0_hat, eps, prev_t, abar):
    a = abar[prev_t]
    return a.sqrt() * x0_hat + (1 - a).sqrt() * eps'''


def test_grade_correct_submission_with_course_settings(course, tmp_path, monkeypatch):
    """The solution scores full marks, and the lab reads K, steps and the output folder from the course's
    settings.ini."""
    settings = (
        (ROOT / "settings.ini")
        .read_text()
        .replace("K = 200", "K = 60")
        .replace("num_steps = 20", "num_steps = 4")
    )
    settings = settings.replace("output_dir = outputs", f"output_dir = {tmp_path / 'course-out'}")
    settings = settings.replace(
        "data_dir = ../shared/data", f"data_dir = {face_data_dir()}"
    )  # an instructor names the data
    (tmp_path / "settings.ini").write_text(settings)
    monkeypatch.setenv("RESTORATION_NB_SETTINGS", str(tmp_path / "settings.ini"))
    report = grade_submission(course["foundation"][0], timeout=300, executed=tmp_path / "executed.ipynb")
    assert (report.score, report.total) == (4, 4), report
    assert set(report.table["status"]) == {"passed"}
    printed = "".join(
        o.get("text", "")
        for c in nbformat.read(str(tmp_path / "executed.ipynb"), 4).cells
        for o in c.get("outputs", [])
    )
    assert "K = 60, 4 steps" in printed, printed[:500]
    assert (tmp_path / "course-out" / "labs" / "lab0_foundation" / "restored.png").is_file()


def test_grade_wrong_submission(course, tmp_path):
    "abar[-1] for the clean step: ddim_update fails with the slip named, and the loop built on it fails too."
    sub = _edit(
        course["foundation"][0], tmp_path / "lab0_foundation_wrong.ipynb", {"ddim_update": ABAR_LAST_BUG}
    )
    report = grade_submission(sub, timeout=300)
    assert (report.score, report.total) == (2, 4), report
    rows = {r["exercise"]: r for r in report.rows}
    assert rows["noise_to_step"]["status"] == rows["predict_x0"]["status"] == "passed"
    assert "abar[-1] is the LAST entry of the table" in rows["ddim_update"]["message"]
    assert (
        "fix those first" in rows["sampling_loop"]["message"] and rows["sampling_loop"]["status"] == "failed"
    )


def test_grade_broken_submission(course, tmp_path):
    """A syntax error, a deleted check cell, a wrong answer and an endless loop in one submission: graded, no
    crash."""
    sub = _edit(
        course["foundation"][0],
        tmp_path / "lab0_foundation_broken.ipynb",
        {
            "noise_to_step": "def noise_to_step(x0, K, abar, noise):\n    return abar[K].sqrt() * x0 +",
            "ddim_update": ABAR_LAST_BUG,
            "sampling_loop": "def sampling_loop(model, x_K, timesteps, abar):\n    while True: pass",
        },
        drop_check="predict_x0",
    )
    before = sub.read_bytes()
    report = grade_submission(sub, timeout=10)  # the endless loop waits this out
    assert sub.read_bytes() == before  # the grader never writes over a submission
    assert (report.score, report.total) == (0, 4), report
    rows = {r["exercise"]: r for r in report.rows}
    assert rows["noise_to_step"]["status"] == "error"
    assert "NameError: name 'noise_to_step' is not defined" in rows["noise_to_step"]["message"]
    assert "SyntaxError" in rows["noise_to_step"]["message"]  # names the cell that failed first
    assert rows["predict_x0"]["status"] == "check cell deleted"
    assert 'the cell `check("predict_x0", predict_x0)` is missing' in rows["predict_x0"]["message"]
    assert rows["ddim_update"]["status"] == "failed" and "abar[-1]" in rows["ddim_update"]["message"]
    assert rows["sampling_loop"]["status"] == "timed out"
    assert "ran past 10 s and was stopped" in rows["sampling_loop"]["message"]


def test_grade_files_that_are_not_labs(tmp_path):
    """Not there, a folder, not JSON, empty, JSON that is no notebook, a notebook that is no lab: a report,
    never a crash."""
    (tmp_path / "folder.ipynb").mkdir()
    (tmp_path / "notes.ipynb").write_text("these are my notes")
    (tmp_path / "empty.ipynb").write_text("")
    (tmp_path / "data.ipynb").write_text(json.dumps({"answers": [1, 2, 3]}))
    nbformat.write(
        nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print(1)")]),
        str(tmp_path / "homework.ipynb"),
    )
    problems = {
        name: grade_submission(tmp_path / name).problem
        for name in (
            "missing.ipynb",
            "folder.ipynb",
            "notes.ipynb",
            "empty.ipynb",
            "data.ipynb",
            "homework.ipynb",
        )
    }
    assert problems["missing.ipynb"] == f"{tmp_path / 'missing.ipynb'} is not a file"
    assert problems["folder.ipynb"] == f"{tmp_path / 'folder.ipynb'} is not a file"
    for name in ("notes.ipynb", "empty.ipynb", "data.ipynb"):
        assert problems[name].startswith("not a Jupyter notebook ("), problems
    assert problems["homework.ipynb"].startswith("not a restoration-nb lab: no lab in its metadata"), problems
    report = grade_submission(tmp_path / "notes.ipynb")
    assert (report.score, report.total, report.rows) == (0, 0, []) and "not graded" in repr(report)


def _with_cell(nb_path, out_path, code: str, at_end: bool = False):
    "A copy of the notebook with a code cell `code` after its first code cell (the imports), or at its end."
    nb = nbformat.read(str(nb_path), as_version=4)
    first = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code")
    nb.cells.insert(len(nb.cells) if at_end else first + 1, nbformat.v4.new_code_cell(code))
    nbformat.write(nb, str(out_path))
    return out_path


def test_a_submission_cannot_write_delete_or_read_outside_its_sandbox(course, tmp_path, monkeypatch):
    """It tries to write and delete files of the grader's and to read the grader's environment: all fail, the
    grade stands."""
    monkeypatch.setenv("GRADER_SECRET", "s3cret")
    outside, victim = tmp_path / "outside.txt", tmp_path / "victim.txt"
    victim.write_text("keep me")
    sub = _with_cell(
        course["foundation"][0],
        tmp_path / "lab0_foundation.ipynb",
        f"""import os, pathlib
leaks = [os.environ.get("GRADER_SECRET")]
for attempt in (lambda: pathlib.Path(r"{outside}").write_text("escaped"),
                lambda: pathlib.Path(r"{victim}").unlink()):
    try: attempt()
    except OSError as e: leaks.append(type(e).__name__)
print("LEAKS", leaks)""",
    )
    report = grade_submission(sub, timeout=300, executed=tmp_path / "executed.ipynb")
    assert (report.score, report.total) == (4, 4), report
    printed = "".join(
        o.get("text", "")
        for c in nbformat.read(str(tmp_path / "executed.ipynb"), 4).cells
        for o in c.get("outputs", [])
    )
    if "Landlock ABI" not in report.sandbox:
        pytest.skip(f"no Landlock on this machine: {report.sandbox}")
    assert "LEAKS [None, 'PermissionError', 'PermissionError']" in printed, printed[:800]
    assert not outside.exists() and victim.read_text() == "keep me"
    assert "no TCP connections" in report.sandbox and "CPU 3600 s" in report.sandbox, report.sandbox


ANSWERS = (
    'import json, os, pathlib\nanswers = pathlib.Path(os.environ["RESTORATION_NB_" + "GRADE_ANSWERS"])\n'
)
# how a submission that implements nothing tries to score: (code, after the checks?, what the report says)
TAMPERING = {
    "forged-verdict": (
        ANSWERS + 'for n in ("noise_to_step", "predict_x0"):\n'
        '    (answers / f"{n}.json")'
        '.write_text(json.dumps(dict(exercise=n, passed=True, message="correct")))',
        True,
        "the answers to 'noise_to_step' are not what its check left: noise_to_step.json is not a record",
    ),
    "forged-answers": (
        ANSWERS + 'import torch\nfrom safetensors.torch import save_file\n'
        'save_file({"t0": torch.zeros(2, 3, 8, 8)}, str(answers / "noise_to_step.safetensors"))\n'
        'call = dict(args=dict(items=[], tuple=False), callbacks=[], changed=[], returned=dict(tensor="t0", '
        'requires_grad=False))\n'
        '(answers / "noise_to_step.json").write_text(json.dumps(dict(exercise="noise_to_step", callable=True,'
        ' type="function", calls=[call] * 3)))',
        True,
        "call 1 of `noise_to_step` was given other inputs than the check gives",
    ),
    "checkers-replaced-by-name": (
        "import restoration_nb.labs as labs\nlabs.CHECKERS.update({k: (lambda fn: None) for k in "
        "labs.CHECKERS})",
        False,
        "reaches into the grader ('CHECKERS')",
    ),
    "checkers-replaced-unnamed": (
        'import restoration_nb.labs as L\nbox = getattr(L, "CHECK" + "ERS")\n'
        'box.update({k: (lambda fn: None) for k in box})',
        False,
        "the check calls `noise_to_step` more often than the answers say it was called",
    ),
    "answers-as-symlink": (
        ANSWERS + 'answers.mkdir(exist_ok=True)\n(answers / "noise_to_step.json").unlink(missing_ok=True)\n'
        '(answers / "noise_to_step.json").symlink_to("/etc/hostname")',
        True,
        "noise_to_step.json is not a plain file",
    ),
}


@pytest.mark.parametrize("kind", list(TAMPERING))
def test_a_tampered_submission_scores_zero_with_the_reason(course, tmp_path, kind):
    """Every way tried to score without doing the exercises scores 0, each exercise `tampered`, with the
    reason."""
    code, at_end, reason = TAMPERING[kind]
    sub = _with_cell(
        course["foundation"][1], tmp_path / "lab0_foundation.ipynb", code, at_end
    )  # nothing done
    report = grade_submission(sub, timeout=300)
    assert (report.score, report.total) == (0, 4), report
    assert set(report.table["status"]) == {"tampered"} and reason in report.problem, report


def test_a_student_who_patches_the_checks_in_memory_still_gets_the_real_verdict(course, tmp_path):
    """A wrong ddim_update, with `torch.allclose`-style helpers patched so that every local comparison passes:
    still wrong."""
    sub = _edit(
        course["foundation"][0], tmp_path / "lab0_foundation_patched.ipynb", {"ddim_update": ABAR_LAST_BUG}
    )
    sub = _with_cell(
        sub, sub, "import restoration_nb.labs as L\nsetattr(L, '_match' + 'es', lambda *a: True)"
    )
    report = grade_submission(sub, timeout=300)
    rows = {r["exercise"]: r for r in report.rows}
    assert report.problem is None, report
    assert rows["ddim_update"]["status"] == "failed" and "abar[-1]" in rows["ddim_update"]["message"], rows
    assert rows["noise_to_step"]["status"] == "passed"


def test_lab_grade_goes_on_past_a_tampered_submission_and_reports_every_one(course, tmp_path):
    """`lab grade` on a batch: a tampered submission gets its report (0 points and why), the next one is
    graded as usual."""
    (tmp_path / "a").mkdir()
    bad = _with_cell(
        course["foundation"][1], tmp_path / "a" / "lab0_foundation.ipynb", *TAMPERING["forged-verdict"][:2]
    )
    good = course["foundation"][0]
    r = run_cli("lab", "grade", bad, good, "--timeout", "300", "-o", tmp_path / "reports.json")
    assert r.returncode == 0, r.stderr
    reports = json.loads((tmp_path / "reports.json").read_text())
    assert [(x["score"], x["total"]) for x in reports] == [(0, 4), (4, 4)], reports
    assert "is not a record that `check` writes" in reports[0]["problem"] and reports[1]["problem"] is None
    assert all(x["sandbox"] for x in reports), reports
