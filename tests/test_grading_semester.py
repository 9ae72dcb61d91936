"""An instructor's semester (issue 17): Canvas archives through `nbgrader zip_collect`, late work
(timestamp.txt, the LMS's LATE marker, deadlines and extensions), one student regraded, points
changed and rescored without running code, a hand grade reaching the one feedback page and the
LMS export, the dependent-failure policy, the report's common mistakes. Units first, then one
course run through the command line (loss_functions, --seed 0)."""
from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
import zipfile
from collections import Counter
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import pytest

from adversarial import CASES
from autograde.grading import collect, late, lms
from autograde.grading.feedback import assignment_page
from autograde.grading.report import common_mistakes, flags_text, mistake_of
from autograde.grading.grader import FORMAT
from autograde.grading.records import Plan, PlanNotebook, Result
from autograde.grading.scoring import after_of, as_scored, rescore, total
from autograde.paths import UsageError
from test_grading import BIN, ROOT

UTC = timezone.utc
PLAN = Plan("loss_functions", (PlanNotebook("loss_functions.ipynb", (("mse_loss", 1.0), ("mse_loss_grad", 1.0),
             ("cross_entropy_loss", 2.0), ("cross_entropy_loss_grad", 2.0)), (("q_overflow", 1.0),)),))


def with_points(plan: Plan, test_id: str, points: float) -> Plan:
    return replace(plan, notebooks=tuple(replace(nb, tests=tuple((t, points if t == test_id else p) for t, p in nb.tests))
                                         for nb in plan.notebooks))


def _result(passed: dict[str, bool], assignment="loss_functions", nb_name="loss_functions.ipynb", points=None) -> Result:
    points = points or {t: 1.0 for t in passed}
    tests = [{"test_id": t, "passed": ok, "score": points[t] if ok else 0.0, "max_score": points[t], "flags": [],
              "message": "" if ok else f"{t} is wrong on case {i}: the mistake of {t} (by {i + 0.5})"}
             for i, (t, ok) in enumerate(passed.items())]
    return Result.from_json({
        "format": FORMAT, "student_id": "s1", "assignment": assignment, "key": "", "seed_base": 0, "hidden": True,
        "score": sum(t["score"] for t in tests), "max_score": sum(points.values()), "manual_max_score": 0, "flags": [],
        "notebooks": [{"notebook": nb_name, "file": nb_name, "seed": 1, "flags": [], "tests": tests, "answers": []}]})


def _tests(r: Result) -> dict:
    return {t.test_id: t for t in r.notebooks[0].tests}


def _with_test(r: Result, test_id: str, **changes) -> Result:
    """``r`` with one test of its (only) notebook changed."""
    nb = r.notebooks[0]
    tests = tuple(replace(t, **changes) if t.test_id == test_id else t for t in nb.tests)
    return replace(r, notebooks=(replace(nb, tests=tests),))


# ---------------------------------------------------------------------------------------------
# Scoring: points from the plan, the dependent-failure policy
# ---------------------------------------------------------------------------------------------
def test_rescore_takes_the_plans_points():
    r = _result({"mse_loss": False, "mse_loss_grad": True, "cross_entropy_loss": True, "cross_entropy_loss_grad": True},
                points={"mse_loss": 1.0, "mse_loss_grad": 1.0, "cross_entropy_loss": 2.0, "cross_entropy_loss_grad": 2.0})
    assert rescore(r, PLAN) == replace(r, manual_max_score=1.0)  # same points: nothing changes but the plan's hand points
    plan = with_points(PLAN, "mse_loss_grad", 4.0)
    new = rescore(r, plan)
    assert new.score == 8.0 and new.max_score == 9.0 and new.notebooks[0].tests[1].max_score == 4.0
    assert r.score == 5.0  # the record given is not changed
    assert as_scored(plan, r) == PLAN  # the plan the result was scored with: its key's


def test_dependent_failure_policy():
    after = after_of("batch_norm")
    assert after["bn_module_eval"] == ("bn_module_train",)  # declared in batch_norm/checks.py
    r = _result({"bn_module_train": False, "bn_module_eval": False, "bn_module_grad": True}, assignment="batch_norm",
                nb_name="bn.ipynb")
    plan = Plan("batch_norm", (PlanNotebook("bn.ipynb", (("bn_module_train", 1.0), ("bn_module_eval", 1.0),
                                                         ("bn_module_grad", 1.0))),))
    charged = rescore(r, plan, "charge", after)
    assert charged.score == 1.0 and "policy" not in charged.to_json()
    waived = rescore(r, plan, "waive", after)
    tests = _tests(waived)
    assert waived.score == 2.0 and waived.policy == "waive" and waived.to_json()["policy"] == "waive"
    assert tests["bn_module_eval"].waived_by == "bn_module_train" and tests["bn_module_train"].score == 0
    flagged = _with_test(r, "bn_module_eval", flags=("timeout",))
    assert rescore(flagged, plan, "waive", after).score == 1.0  # a failure of its own is never waived
    assert rescore(waived, plan, "charge", after) == charged  # and back, from the record alone
    page = assignment_page(charged, plan, after=after)
    assert "builds on <code>bn_module_train</code>, which failed too" in page and "still costs its points" in page
    assert "course policy <code>charge</code>" in page
    page = assignment_page(waived, plan, after=after, policy="waive")
    assert "its points are kept" in page and "course policy <code>waive</code>" in page
    with pytest.raises(ValueError):
        rescore(r, plan, "sometimes", after)


def test_one_mistake_charged_once_under_waive():
    """The issue's case: an unbiased variance in batchnorm_forward fails the forward test and every
    test that runs through that forward; under ``waive`` only the tests that check a forward cost
    points, the backward tests keep theirs (their after=... declarations in batch_norm/checks.py)."""
    from catalog import batch_norm as catalog
    from conftest import solution_namespace

    from autograde.core import LocalStudent, run_test
    from autograde.grading.grader import make_plan
    from autograde.notebook import exec_cells
    from autograde.paths import load_tests

    mistake = next(m for m in catalog.MISTAKES if m.name == "fwd_unbiased_normalize")
    ns, errors = exec_cells([(0, mistake.code)], solution_namespace("batch_norm"))
    assert not errors
    plan = make_plan("batch_norm")
    nb = next(nb for nb in plan.notebooks if any(t == "batchnorm_backward" for t, _ in nb.tests))
    tests = load_tests("batch_norm")
    passed = {tid: run_test(tests[tid], LocalStudent(ns), 0, hidden=True).passed for tid, _ in nb.tests
              if tests[tid].framework == "numpy"}
    failed = {t for t, ok in passed.items() if not ok}
    assert {"batchnorm_forward_train", "batchnorm_backward", "batchnorm_backward_fast"} <= failed, failed
    r = _result(passed, assignment="batch_norm", nb_name=nb.name)
    plan = Plan("batch_norm", (replace(nb, tests=tuple((t, p) for t, p in nb.tests if t in passed)),))
    charged, waived = rescore(r, plan, "charge"), rescore(r, plan, "waive")
    lost = {t.test_id for t in waived.notebooks[0].tests if t.score < t.max_score}
    assert lost == failed & {"batchnorm_forward_train", "spatial_batchnorm_forward"}, lost  # the forwards only
    assert charged.score < waived.score
    assert _tests(waived)["batchnorm_backward"].waived_by == "batchnorm_forward_train"


def test_total_combines_hand_grades_extra_credit_and_penalty():
    r = _result({"mse_loss": True, "mse_loss_grad": False, "cross_entropy_loss": True, "cross_entropy_loss_grad": True},
                points={"mse_loss": 1.0, "mse_loss_grad": 1.0, "cross_entropy_loss": 2.0, "cross_entropy_loss_grad": 2.0})
    r = replace(r, manual_max_score=1.0)
    g = total(r, PLAN)
    assert (g["auto"], g["hand"], g["total"], g["possible"], g["pending"]) == (5.0, 0.0, 5.0, 7.0, ["q_overflow"])
    hand = {"loss_functions.ipynb": {"scores": {"q_overflow": [1.0, 1.0, 0.5], "test_mse_loss_grad": [0.5, 1.0, 0]},
                                     "comments": {"q_overflow": "clear"}}}
    g = total(r, PLAN, hand, late_fraction=0.1)
    # a hand score on a test cell replaces the autograder's (as in nbgrader); 10% of 7 possible points off
    assert (g["auto"], g["hand"], g["extra"], g["pending"]) == (5.5, 1.0, 0.5, [])
    assert g["penalty"] == pytest.approx(0.7) and g["total"] == pytest.approx(6.3)
    one = Plan("loss_functions", (PlanNotebook("loss_functions.ipynb", (("mse_loss", 1.0),)),))
    assert total(_result({"mse_loss": False}), one, late_fraction=0.5)["total"] == 0  # never below zero
    page = assignment_page(r, PLAN, hand=hand, late_note="Submitted late.", late_fraction=0.1)
    assert "1 / 1" in page and "clear" in page and "by hand; autograder: 0" in page and "\u22120.7" in page
    assert "not graded yet" not in page and "Submitted late." in page


# ---------------------------------------------------------------------------------------------
# Late work
# ---------------------------------------------------------------------------------------------
def test_penalty_rule():
    rule = late.Rule()  # the documented default: 10% per started day after 15 minutes
    assert rule.fraction(0) == rule.fraction(15 * 60) == 0
    assert rule.fraction(15 * 60 + 1) == 0.1 and rule.fraction(late.DAY + 15 * 60 + 1) == pytest.approx(0.2)
    assert rule.fraction(30 * late.DAY) == 1.0
    assert late.Rule(per_day=0.25, max_fraction=0.5).fraction(10 * late.DAY) == 0.5


def test_deadlines_file_extensions_and_timestamps(tmp_path):
    f = tmp_path / "deadlines.toml"
    f.write_text("[penalty]\nper_day = 0.2\ngrace_minutes = 0\n[due]\nloss_functions = 2026-10-01T23:59:00+02:00\n"
                 "[extensions.loss_functions]\nann = 2026-10-05T12:00:00Z\n")
    d = late.load(f)
    due = datetime(2026, 10, 1, 21, 59, tzinfo=UTC)
    assert d.due_for("loss_functions", "bob") == (due, False)
    assert d.due_for("loss_functions", "ann")[1] is True
    folder = tmp_path / "sub"
    folder.mkdir()
    assert late.submission_time(folder) is None
    (folder / "timestamp.txt").write_text("2026-10-02 22:00:00.5 UTC\n")  # nbgrader's format
    when = late.submission_time(folder)
    assert when == datetime(2026, 10, 2, 22, 0, 0, 500000, tzinfo=UTC)
    lt = late.lateness(d, "loss_functions", "bob", when)
    assert lt.fraction == pytest.approx(0.4) and "1 day(s) 0 h 1 min after the due date" in lt.note
    lt = late.lateness(d, "loss_functions", "ann", when)
    assert lt.fraction == 0 and "on time (your extended due date" in lt.note
    assert late.lateness(d, "loss_functions", "bob", None, marked_late=True).fraction == pytest.approx(0.2)
    assert late.lateness(d, "gradient_descent", "bob", when).fraction == 0  # no due date
    (folder / "timestamp.txt").unlink()
    (folder / "timestamp.txt").symlink_to(f)  # a link is not followed
    assert late.submission_time(folder) is None
    f.write_text("[due]\nloss_functions = 'next friday'\n")
    with pytest.raises(UsageError, match="not a date and time"):
        late.load(f)


# ---------------------------------------------------------------------------------------------
# LMS file names and the export
# ---------------------------------------------------------------------------------------------
def test_lms_file_names():
    c = collect.parse("canvas", "submissions/doejane_LATE_123456_7890123_loss_functions-1.ipynb")
    assert (c.student_id, c.lms_id, c.file_id, c.late) == ("doejane", "123456", "loss_functions.ipynb", True)
    c = collect.parse("canvas", "doejane_123456_7890123_loss_functions.ipynb")
    assert (c.lms_id, c.late) == ("123456", False)
    c = collect.parse("moodle", "Jane Doe_4242_assignsubmission_file_loss_functions.ipynb")
    assert (c.student_id, c.lms_id, c.name, c.file_id) == ("janedoe", "4242", "Jane Doe", "loss_functions.ipynb")
    c = collect.parse("moodle", "x/Jane Doe_4242_assignsubmission_file/loss_functions.ipynb")  # "in folders"
    assert (c.student_id, c.lms_id, c.file_id) == ("janedoe", "4242", "loss_functions.ipynb")
    assert collect.parse("canvas", "loss_functions.ipynb") is None
    assert collect.parse("moodle", "doejane_123456_7890123_loss_functions.ipynb") is None


def test_lms_layouts(tmp_path):
    g = {"total": 5.5, "possible": 7.0}
    totals = {("doejane", "loss_functions"): g, ("=cmd", "loss_functions"): dict(g, total=0.0)}
    ids = {("doejane", "loss_functions"): collect.Collected("doejane", "123", "Jane Doe", "x.ipynb", False)}
    (path,) = lms.write(tmp_path, "canvas", totals, ids)
    rows = list(csv.reader(path.open()))
    assert rows[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "loss_functions"]
    assert rows[1] == ["Points Possible", "", "", "", "", "7"]
    assert rows[2] == ["'=cmd", "", "", "'=cmd", "", "0"]  # a formula-like id is defused
    assert rows[3] == ["Jane Doe", "123", "", "", "", "5.5"]
    said = []
    (path,) = lms.write(tmp_path, "moodle", totals, ids, log=said.append)
    assert list(csv.reader(path.open())) == [["Identifier", "Full name", "Grade", "Maximum grade"],
                                             ["Participant 123", "Jane Doe", "5.5", "7"]]
    assert "no Moodle participant id for =cmd" in said[0]


# ---------------------------------------------------------------------------------------------
# The report
# ---------------------------------------------------------------------------------------------
def test_common_mistakes_group_diagnoses_across_the_class():
    a = _result({"mse_loss": False, "mse_loss_grad": True})
    b = replace(_with_test(a, "mse_loss", message="mse_loss is wrong on another case (N=3): the mistake of mse_loss (by 7)"),
                student_id="s2")
    c = replace(_with_test(a, "mse_loss", message="mse_loss does not match PyTorch on case 2: largest difference 0.3"),
                student_id="s3")
    rows = common_mistakes([a, b, c], [("loss_functions.ipynb", "mse_loss", 1), ("loss_functions.ipynb", "mse_loss_grad", 1)])
    assert rows == [("mse_loss", "mse_loss is wrong: the mistake of mse_loss (by #)", ["s1", "s2"]),
                    ("mse_loss", "mse_loss does not match PyTorch (no known mistake)", ["s3"])]
    assert mistake_of("f timed out after 5.0 s") == "f timed out after # s"
    assert flags_text(Counter({"invalid-notebook": 1, "timeout": 2})) == "timeout (2), invalid-notebook (1)"
    assert flags_text(Counter()) == "none"


# ---------------------------------------------------------------------------------------------
# A course through the command line
# ---------------------------------------------------------------------------------------------
def cli(*args: str, cwd: Path = ROOT, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "autograde", *args], capture_output=True, text=True, timeout=timeout,
                          cwd=cwd, env=env)


def nbgrader(course: Path, *args: str, lms_name: str = "canvas") -> subprocess.CompletedProcess:
    env = {"PATH": f"{BIN}:/usr/bin:/bin", "HOME": str(course), "PYTHONPATH": str(ROOT), "AUTOGRADE_LMS": lms_name}
    return subprocess.run([str(BIN / "nbgrader"), *args], capture_output=True, text=True, env=env, cwd=course,
                          timeout=300)


def notebook_of(name: str) -> bytes:
    return next(c for c in CASES if c.name == name).build()


def course_with(tmp: Path) -> Path:
    course = tmp / "course"
    (course / "solutions").mkdir(parents=True)
    shutil.copytree(ROOT / "solutions" / "loss_functions", course / "solutions" / "loss_functions")
    shutil.copy(ROOT / "nbgrader_config.py", course)
    return course


def test_zip_collect_recipe_moodle(tmp_path):
    """The instructors page's recipe for Moodle's "download all submissions" (in folders)."""
    course = course_with(tmp_path)
    archive = course / "downloaded" / "loss_functions" / "archive"
    archive.mkdir(parents=True)
    with zipfile.ZipFile(archive / "Loss functions-12.zip", "w") as z:
        z.writestr("Jane Doe_4242_assignsubmission_file/loss_functions.ipynb", notebook_of("solution"))
        z.writestr("Bob Smith_4243_assignsubmission_file_loss_functions.ipynb", notebook_of("stub"))
    r = nbgrader(course, "zip_collect", "loss_functions", "--force", lms_name="moodle")
    assert r.returncode == 0, r.stderr
    assert (course / "submitted" / "janedoe" / "loss_functions" / "loss_functions.ipynb").read_bytes() == notebook_of("solution")
    assert (course / "submitted" / "bobsmith" / "loss_functions" / "loss_functions.ipynb").is_file()
    found = collect.downloaded(course / "downloaded", "moodle")
    assert {k: v.lms_id for k, v in found.items()} == {("janedoe", "loss_functions"): "4242",
                                                      ("bobsmith", "loss_functions"): "4243"}


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    """Canvas archives collected with zip_collect (doejane on time, smithbob marked LATE), carol
    collected by nbgrader's exchange (timestamp.txt, a day late), then graded."""
    course = course_with(tmp_path_factory.mktemp("semester"))
    archive = course / "downloaded" / "loss_functions" / "archive"
    archive.mkdir(parents=True)
    with zipfile.ZipFile(archive / "submissions.zip", "w") as z:
        z.writestr("doejane_123456_7890123_loss_functions.ipynb", notebook_of("solution"))
        z.writestr("smithbob_LATE_223456_7890124_loss_functions-1.ipynb", notebook_of("wrong_mse"))
    r = nbgrader(course, "zip_collect", "loss_functions", "--force")
    assert r.returncode == 0, r.stderr
    carol = course / "submitted" / "carol" / "loss_functions"
    carol.mkdir(parents=True)
    (carol / "loss_functions.ipynb").write_bytes(notebook_of("solution"))
    (carol / "timestamp.txt").write_text("2026-10-02 12:00:00.000000 UTC\n")
    (course / "deadlines.toml").write_text("[due]\nloss_functions = 2026-10-01T23:59:00Z\n")
    out = course / "graded"
    args = ["--submissions", str(course / "submitted"), "--out", str(out), "--seed", "0", "--timeout", "10",
            "--no-progress", "--deadlines", str(course / "deadlines.toml")]
    r = cli("grade", *args)
    assert r.returncode == 0, r.stdout + r.stderr
    return {"course": course, "out": out, "args": args, "stderr": r.stderr}


def canvas(out: Path) -> dict[str, list[str]]:
    rows = list(csv.reader((out / "lms" / "canvas.csv").open()))
    return {row[0]: row for row in rows[1:]}


def page(out: Path, student: str) -> str:
    return (out / "feedback" / student / "loss_functions" / "loss_functions.html").read_text()


def test_the_lms_export_has_totals_penalties_and_lms_ids(course):
    rows = canvas(course["out"])
    assert rows["Points Possible"][5] == "7"  # 6 autograded + 1 by hand
    assert rows["doejane"][1:] == ["123456", "", "", "", "6"]
    assert rows["smithbob"][1:] == ["223456", "", "", "", "4.3"]  # 5 - 10% of 7: marked LATE by Canvas
    assert rows["carol"][1:] == ["", "", "carol", "", "5.3"]  # 12 h late (timestamp.txt); no Canvas id: SIS login
    assert "still have answers to grade by hand" in course["stderr"]
    assert "Submitted 2026-10-02 12:00 UTC, 12 h 1 min after the due date" in page(course["out"], "carol")
    assert "The LMS marked this submission late" in page(course["out"], "smithbob")
    assert "not graded yet" in page(course["out"], "doejane")
    report = (course["out"] / "report.html").read_text()
    assert "<h3>Common mistakes</h3>" in report and "SUM of the squared errors" in report
    assert "flags: none" in report and "{" not in report.split("<body>")[1].split("<img")[0]


def test_hand_grade_reaches_the_feedback_page_and_the_export(course):
    from nbgrader.api import Gradebook

    out = course["out"]
    with Gradebook(f"sqlite:///{out / 'gradebook.db'}") as gb:
        grade = gb.find_grade("q_overflow", "loss_functions", "loss_functions", "doejane")
        grade.manual_score = 1.0
        comment = gb.find_comment("q_overflow", "loss_functions", "loss_functions", "doejane")
        comment.manual_comment = "Clear: exp overflows past 709."
        grade = gb.find_grade("test_mse_loss", "loss_functions", "loss_functions", "smithbob")
        grade.manual_score = 0.5  # partial credit on an autograded test, by hand
        gb.db.commit()
    results = {p: p.read_bytes() for p in (out / "results").glob("*/*.json")}
    r = cli("publish", "--out", str(out), "--deadlines", str(course["course"] / "deadlines.toml"))
    assert r.returncode == 0, r.stderr
    text = page(out, "doejane")
    assert "Clear: exp overflows past 709." in text and "not graded yet" not in text
    assert "<b>7 / 7</b>" in text
    assert "0.5 / 1 <span class=\"muted\">(by hand; autograder: 0)" in page(out, "smithbob")
    rows = canvas(out)
    assert rows["doejane"][5] == "7" and rows["smithbob"][5] == "4.8"
    assert {p: p.read_bytes() for p in results} == results  # publishing changes no result
    # the notebook Formgrader shows: the solution's points, each test's verdict as its output
    nb = json.loads((out / "autograded" / "smithbob" / "loss_functions" / "loss_functions.ipynb").read_text())
    test_cell = next(c for c in nb["cells"] if c["metadata"].get("nbgrader", {}).get("grade_id") == "test_mse_loss")
    assert "SUM of the squared errors" in "".join(test_cell["outputs"][0]["text"])


def test_one_student_regraded(course):
    out = course["out"]
    before = {p.parent.name: p.read_bytes() for p in (out / "results").glob("*/*.json")}
    r = cli("grade", *course["args"], "--student", "smithbob", "--force")
    assert r.returncode == 0, r.stderr
    run = json.loads((out / "run.json").read_text())
    assert run["graded_now"] == 1 and run["reused"] == 0 and run["students"] == ["smithbob"]
    after = {p.parent.name: p.read_bytes() for p in (out / "results").glob("*/*.json")}
    assert after["doejane"] == before["doejane"] and after["carol"] == before["carol"]
    assert sorted(canvas(out)) == ["Points Possible", "carol", "doejane", "smithbob"]  # every row still there
    r = cli("grade", *course["args"], "--student", "nobody")
    assert r.returncode == 2 and "--student nobody: no folder" in r.stderr


def test_points_change_rescores_without_running_code(course, monkeypatch):
    from autograde.grading import runner

    real = runner.make_plan

    def more_points(a):
        return with_points(real(a), "mse_loss", 3.0)

    out = course["out"]
    timing = {p.parent.name: json.loads(p.read_text())["timing"] for p in (out / "results").glob("*/*.json")}
    monkeypatch.setattr(runner, "make_plan", more_points)
    said = []
    args = dict(seed=0, timeout=10, progress=False, deadlines=course["course"] / "deadlines.toml", log=said.append)
    assert runner.grade(course["course"] / "submitted", out, **args) == 0
    run = json.loads((out / "run.json").read_text())
    assert run["graded_now"] == 0 and run["rescored"] == 3, said
    results = {p.parent.name: json.loads(p.read_text()) for p in (out / "results").glob("*/*.json")}
    assert {s: r["timing"] for s, r in results.items()} == timing  # nothing ran again
    assert results["doejane"]["score"] == 8 and results["smithbob"]["score"] == 5 and results["smithbob"]["max_score"] == 8
    assert canvas(out)["Points Possible"][5] == "9"
    monkeypatch.setattr(runner, "make_plan", real)
    assert runner.grade(course["course"] / "submitted", out, **args) == 0  # and back
    assert json.loads((out / "run.json").read_text())["rescored"] == 3


def test_policy_and_layout_stay_from_run_to_run(course):
    """--dependent-failures and --lms are remembered in OUT/run.json: a later run without them keeps them."""
    out = course["out"]
    r = cli("grade", *course["args"], "--dependent-failures", "waive", "--lms", "moodle")
    assert r.returncode == 0, r.stderr
    r = cli("grade", *course["args"])
    assert r.returncode == 0, r.stderr
    run = json.loads((out / "run.json").read_text())
    assert (run["policy"], run["lms"], run["graded_now"]) == ("waive", "moodle", 0)
    rows = list(csv.reader((out / "lms" / "moodle_loss_functions.csv").open()))
    assert rows == [["Identifier", "Full name", "Grade", "Maximum grade"]]  # Canvas archives name no Moodle participant
    assert "no Moodle participant id for carol, doejane, smithbob" in r.stderr


def test_each_output_is_written_once(course, monkeypatch):
    """plan -> run -> publish: one run writes each file once (results when rescored, CSVs, pages,
    report, export, autograded notebooks, run.json)."""
    from autograde.grading import results as R
    from autograde.grading import runner

    written: list[Path] = []

    def recording(fn):
        def wrapper(path, *args, **kwargs):
            written.append(Path(path).resolve())
            return fn(path, *args, **kwargs)
        return wrapper

    monkeypatch.setattr(R, "write_json_atomic", recording(R.write_json_atomic))
    monkeypatch.setattr(R, "_write_csv", recording(R._write_csv))
    monkeypatch.setattr(lms, "_write", recording(lms._write))
    monkeypatch.setattr(Path, "write_text", recording(Path.write_text))
    monkeypatch.setattr(Path, "write_bytes", recording(Path.write_bytes))
    real = runner.make_plan

    def more_points(a):
        return with_points(real(a), "mse_loss", 2.0)

    monkeypatch.setattr(runner, "make_plan", more_points)  # so that the results are rewritten too
    assert runner.grade(course["course"] / "submitted", course["out"], seed=0, timeout=10, progress=False,
                        deadlines=course["course"] / "deadlines.toml", log=lambda m: None) == 0
    counts = Counter(written)
    assert sum(1 for p in counts if p.parent.parent.name == "results") == 3  # the three rescored results
    for name in ("grades.csv", "tests.csv", "report.html", "run.json"):
        assert counts[(course["out"] / name).resolve()] == 1, name
    assert len([p for p in counts if p.suffix == ".html" and "feedback" in p.parts]) == 3
    assert [p for p, n in counts.items() if n > 1] == []
