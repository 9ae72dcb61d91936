"""The typed records of grading: one JSON round trip each, and the command line's defaults are theirs."""
from __future__ import annotations

import json

from autograde.__main__ import main
from autograde.grading.records import Job, Limits


def test_limits_round_trip_and_budget():
    lim = Limits(timeout=5, cell_timeout=2, memory=2**30, budget=None)
    assert Limits.from_json(json.loads(json.dumps(lim.to_json()))) == lim
    assert lim.notebook_budget() == Limits.BUDGET_FACTOR * 5
    assert Limits(budget=12).notebook_budget() == 12


def test_job_round_trip():
    job = Job(student_id="alice", assignment="loss_functions",
              plan={"assignment": "loss_functions", "notebooks": [{"name": "a.ipynb", "tests": [["mse_loss", 1.0]],
                                                                   "manual": []}]},
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
