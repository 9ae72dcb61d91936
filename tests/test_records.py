"""The typed records of grading: one JSON round trip each, and the command line's defaults are theirs."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from autograde.__main__ import main
from autograde.grading.grader import make_plan
from autograde.grading.records import GraderError, Job, Limits, Plan, Result

# results/<student>/loss_functions.json as the grader wrote them before the records were typed
# (the adversarial cases of the same names, --seed 0 --timeout 5 --memory 1G); test_grading.py
# compares what it grades now with them
WRITTEN_BEFORE = sorted((Path(__file__).parent / "data" / "results").glob("*.json"))


def test_limits_round_trip_and_budget():
    lim = Limits(timeout=5, cell_timeout=2, memory=2**30, budget=None)
    assert Limits.from_json(json.loads(json.dumps(lim.to_json()))) == lim
    assert lim.notebook_budget() == Limits.BUDGET_FACTOR * 5
    assert Limits(budget=12).notebook_budget() == 12


def test_job_round_trip():
    job = Job(student_id="alice", assignment="loss_functions",
              plan=Plan.from_json({"assignment": "loss_functions",
                                   "notebooks": [{"name": "a.ipynb", "tests": [["mse_loss", 1.0]], "manual": []}]}),
              notebooks={"a.ipynb": b"{\x00\xff}"}, files={"data/x.npy": b"\x93NUMPY"}, key="k", limits=Limits(timeout=3),
              seed_base=None, secret="ab" * 16, unsafe=("b.ipynb is a link",))
    back = Job.from_json(json.loads(json.dumps(job.to_json())))
    assert back == job
    assert job.with_references({"1": {}}).references == {"1": {}} and job.references is None


def test_the_command_line_takes_its_defaults_from_limits(capsys):
    try:
        main(["grade", "--help"])
    except SystemExit:
        pass
    text = " ".join(capsys.readouterr().out.split())
    assert f"(default {Limits.timeout:g})" in text and f"(default {Limits.memory // 2**30}G)" in text


@pytest.mark.parametrize("path", WRITTEN_BEFORE, ids=[p.stem for p in WRITTEN_BEFORE])
def test_result_reads_and_writes_the_files_written_before_byte_for_byte(path):
    text = path.read_text(encoding="utf-8")
    result = Result.from_json(json.loads(text))
    assert json.dumps(result.to_json(), indent=1, sort_keys=True, ensure_ascii=False) == text
    assert Result.from_json(result.to_json()) == result


def test_result_refuses_a_field_it_does_not_know():
    data = json.loads(WRITTEN_BEFORE[0].read_text())
    with pytest.raises(ValueError, match="unknown field"):
        Result.from_json({**data, "bonus": 10})
    with pytest.raises(ValueError, match="unknown field"):
        Result.from_json({**data, "notebooks": [{**data["notebooks"][0], "score": 10}]})


def test_plan_round_trip_slim_and_digest():
    plan = make_plan("batch_norm")
    assert len(plan.notebooks) == 2 and all(nb.cells for nb in plan.notebooks)
    assert Plan.from_json(json.loads(json.dumps(plan.to_json()))) == plan
    slim = plan.slim()
    assert all(nb.cells is None for nb in slim.notebooks) and "cells" not in json.dumps(slim.to_json())
    assert slim.digest() == plan.digest()  # the cells are not part of a submission's key
    assert plan.max_score == sum(p for nb in plan.notebooks for _, p in nb.tests) > 0
    bumped = Plan(plan.assignment, (plan.notebooks[0].__class__(plan.notebooks[0].name, ((plan.notebooks[0].tests[0][0], 99.0),)
                                                                + plan.notebooks[0].tests[1:]),) + plan.notebooks[1:])
    assert bumped.digest() != plan.digest()  # a points change regrades


def test_grader_error_round_trip():
    err = GraderError("ann", "batch_norm", "OSError: disk full", "Traceback ...")
    assert GraderError.from_json(json.loads(json.dumps(err.to_json()))) == err


def test_results_read_back_typed_and_a_file_that_holds_none_is_named(tmp_path):
    """OUT's results come back as Result records; a grader error is none, and a file that holds no
    record (cut short, or from another version) is skipped with its path said, so a row missing
    from the outputs has a reason on screen."""
    from autograde.grading import results as R

    good = json.loads(WRITTEN_BEFORE[0].read_text())
    for student, data in {"a": good, "b": {**good, "surprise": 1}, "c": {"grader_error": "boom", "student_id": "c",
                                                                       "assignment": good["assignment"]}}.items():
        R.write_json_atomic(R.result_path(tmp_path, student, good["assignment"]), data)
    cut = R.result_path(tmp_path, "d", good["assignment"])
    cut.parent.mkdir()
    cut.write_text('{"format": 1, "student_id"')  # cut short
    said = []
    found = R.all_results(tmp_path, {good["assignment"]}, log=said.append)
    assert [type(r) for r in found] == [Result] and found[0] == Result.from_json(good)
    assert isinstance(R.read_record(R.result_path(tmp_path, "c", good["assignment"])), GraderError)
    assert len(said) == 2 and "/b/" in said[0] and "/d/" in said[1] and "grades that submission again" in said[0]
    assert R.all_results(tmp_path, {"another"}) == []
