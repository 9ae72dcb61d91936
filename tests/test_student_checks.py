"""What a student sees from check() and validate() in a notebook (issue 16), without a browser:
an IPython shell stands for the kernel (cells run through run_cell, so `In`, the cell file names
and the execution counts are IPython's own). tests/test_student_lab.py drives the same path in
JupyterLab and Chromium."""
from __future__ import annotations

import contextlib
import io
import json
import re
import warnings
from pathlib import Path

import pytest
from catalog.batch_norm import student_module
from conftest import solution_namespace

from autograde import kernel
from autograde.core import CheckFailure
from autograde.notebook import is_test_cell, read
from autograde.paths import ROOT, assignments, exercise_notebooks

MSE_SUM = "def mse_loss(pred, target):\n    return float(np.sum((pred - target) ** 2))\n"
MSE_BROKEN = "def mse_loss(pred, target):\n    return float(np.mean((pred - target) ** 2)\n"
MSE_RIGHT = "def mse_loss(pred, target):\n    return float(np.mean((pred - target) ** 2))\n"
CE_NAIVE = ("def cross_entropy_loss(z, y):\n"
            "    return float(np.mean(np.log(np.exp(z).sum(1)) - z[np.arange(len(y)), y]))\n")


@pytest.fixture
def shell(monkeypatch):
    """A fresh IPython shell (the kernel's InteractiveShell without ZMQ), batch mode by default."""
    from IPython.core.interactiveshell import InteractiveShell

    monkeypatch.delenv("AUTOGRADE_CHECK_RAISES", raising=False)
    InteractiveShell.clear_instance()
    sh = InteractiveShell.instance()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        sh.run_cell("import numpy as np\nfrom autograde.loss_functions import check, validate", store_history=True)
    yield sh
    InteractiveShell.clear_instance()


def run(sh, src):
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        res = sh.run_cell(src, store_history=True)
    return res, out.getvalue()


def as_person(monkeypatch, stop_on_error=True):
    """Make the shell's current request look like JupyterLab's (a cell id, stop_on_error)."""
    monkeypatch.setattr(kernel, "_request", lambda: {"metadata": {"cellId": "abc"},
                                                     "content": {"stop_on_error": stop_on_error}})
    shown = []
    monkeypatch.setattr(kernel, "show", lambda text, kind="fail": shown.append((kind, text)))
    return shown


def check_failure(sh, src):
    res, _ = run(sh, src)
    assert isinstance(res.error_in_exec, CheckFailure), res.error_in_exec
    return str(res.error_in_exec)


# 2. which cell run defined the function; a later failed run of that cell is named
def test_check_names_the_defining_run_and_a_stale_definition(shell):
    run(shell, MSE_SUM)
    first = shell.execution_count - 1
    msg = check_failure(shell, 'check("mse_loss")')
    assert f"tested: mse_loss from the cell run at [{first}]" in msg and "OLD" not in msg, msg
    res, _ = run(shell, MSE_BROKEN)
    broken = shell.execution_count - 1
    assert res.error_before_exec is not None  # a SyntaxError: the old mse_loss stays
    msg = check_failure(shell, 'check("mse_loss")')
    assert msg.startswith(f"\u26a0 This tested an OLD mse_loss: the one defined by the cell you ran at [{first}]"), msg
    assert f"at [{broken}]" in msg and "SyntaxError on line 2" in msg and "SUM of the squared errors" in msg, msg
    run(shell, MSE_RIGHT)
    res, out = run(shell, 'check("mse_loss")')
    assert res.success and "\u2714 mse_loss" in out and "OLD" not in out, out


# 5. interactive use: a failing check shows its diagnosis and does not raise; batch runs raise
def test_failing_check_does_not_stop_run_all_in_a_persons_notebook(shell, monkeypatch):
    run(shell, MSE_SUM)
    shown = as_person(monkeypatch)
    res, _ = run(shell, 'check("mse_loss")')
    assert res.success, res.error_in_exec  # no error: Run All goes on
    assert shown and shown[0][0] == "fail" and shown[0][1].startswith("\u2718 mse_loss is wrong"), shown


def test_failing_check_raises_for_nbgrader_and_batch_runs(shell, monkeypatch):
    run(shell, MSE_SUM)
    as_person(monkeypatch, stop_on_error=False)  # nbgrader's executor: allow_errors, stop_on_error False
    check_failure(shell, 'check("mse_loss")')
    monkeypatch.setattr(kernel, "_request", lambda: {"metadata": {}, "content": {}})  # nbclient: no cell id
    check_failure(shell, 'check("mse_loss")')
    as_person(monkeypatch)
    monkeypatch.setenv("AUTOGRADE_CHECK_RAISES", "1")
    check_failure(shell, 'check("mse_loss")')


def test_nbgrader_autograde_request_is_not_interactive(monkeypatch):
    monkeypatch.delenv("AUTOGRADE_CHECK_RAISES", raising=False)
    assert not kernel.interactive()  # no kernel at all (pytest, a script, the grader)


# 4. word-wrapped feedback; warnings summarized, not printed
def test_diagnosis_wraps_at_word_boundaries():
    long = ("cross_entropy_loss is wrong on logits of magnitude 1000: the loss is inf for large logits: exp(z) "
            "overflows to inf, so log(sum(exp(z))) is inf. Subtract each row's maximum before exponentiating.")
    lines = CheckFailure(long + "\n(PyTorch on cpu; seed 1)")._render_traceback_()
    assert all(len(line) <= kernel.WIDTH for line in lines), lines
    assert " ".join(line.strip() for line in lines).startswith("\u2718 " + long)
    html = kernel.html_block("\u2718 " + long)
    assert "white-space: pre-wrap" in html and "word-break: normal" in html


def test_warnings_are_summarized_in_the_diagnosis(shell):
    run(shell, CE_NAIVE)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        msg = check_failure(shell, 'check("cross_entropy_loss")')
    assert not [w for w in caught if issubclass(w.category, RuntimeWarning)], [str(w.message) for w in caught]
    assert re.search(r"Warnings while it ran: RuntimeWarning: overflow encountered in exp \(cell \[\d+\], line 2", msg), msg


# 5. a check that fails because an earlier one does says so
BN_UNBIASED = student_module(1)


def test_bn_module_grad_names_the_failing_bn_module_train(monkeypatch):
    from autograde.batch_norm import check
    from autograde.notebook import exec_cells

    monkeypatch.delenv("AUTOGRADE_CHECK_RAISES", raising=False)
    ns, errors = exec_cells([(0, BN_UNBIASED)], solution_namespace("batch_norm"))
    assert not errors
    with pytest.raises(CheckFailure) as info:
        check("bn_module_grad", ns, seed=3)
    assert "check('bn_module_train') fails too" in str(info.value) and "UNBIASED" in str(info.value), str(info.value)


# 6. a check before the set-up cell; the set-up cell's one line
def _cells(nb):
    return [c for c in read(nb).cells if c.cell_type == "code"]


NOTEBOOKS = [nb for a in assignments() for nb in exercise_notebooks(a) if nb.name != "bn_mlp.ipynb"]


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.name)
def test_a_check_before_the_set_up_cell_names_what_is_missing(nb, monkeypatch):
    monkeypatch.setenv("AUTOGRADE_CHECK_RAISES", "1")
    cell = next(c for c in read(nb).cells if is_test_cell(c))
    ns = {"__name__": "__main__"}
    with pytest.raises(CheckFailure, match="is not defined. Run the cell that defines it"):
        exec(compile(cell.source, "check cell", "exec"), ns)  # noqa: S102


def test_a_function_run_before_the_set_up_cell_is_told_to_run_it(monkeypatch):
    from autograde.loss_functions import check

    monkeypatch.setenv("AUTOGRADE_CHECK_RAISES", "1")
    ns = {"__name__": "__main__"}
    exec(MSE_RIGHT, ns)  # noqa: S102 - no `np` here: the set-up cell did not run
    with pytest.raises(CheckFailure, match="Run the set-up cell at the top of the notebook first"):
        check("mse_loss", ns, seed=1)


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.name)
def test_the_set_up_cell_says_the_checks_are_ready(nb, shell, monkeypatch):
    monkeypatch.chdir(nb.parent)
    res, out = run(shell, _cells(nb)[0].source)
    assert res.success, res.error_in_exec
    assert re.fullmatch(r"checks ready: PyTorch \d+\.\d+\.\d+\S* on (cpu|cuda) \(\w+, \d+ checks\)\n", out), out


# 1. validate() from the notebook: the saved file versus what the kernel ran
def _saved(tmp_path, mse_source):
    nb = json.loads((ROOT / "exercises/loss_functions/loss_functions.ipynb").read_text())
    for c in nb["cells"]:
        if c["metadata"].get("nbgrader", {}).get("grade_id") == "mse_loss":
            c["source"] = mse_source
    path = tmp_path / "loss_functions.ipynb"
    path.write_text(json.dumps(nb))
    return path


def test_validate_says_when_the_saved_file_is_not_what_ran(shell, monkeypatch, tmp_path):
    import subprocess

    run(shell, MSE_RIGHT)
    stale = _saved(tmp_path, MSE_SUM)  # the student edited and ran, but did not save
    assert kernel.saved_differences(stale, ["mse_loss"], shell.user_ns) == [
        f"mse_loss (you ran it at [{shell.execution_count - 1}])"]
    assert kernel.saved_differences(_saved(tmp_path, MSE_RIGHT + "\n"), ["mse_loss"], shell.user_ns) == []

    _saved(tmp_path, MSE_SUM)
    shown = as_person(monkeypatch)
    calls = []
    monkeypatch.setattr(subprocess, "run", lambda cmd, **kw: calls.append(cmd) or subprocess.CompletedProcess(
        cmd, 1, "\u2718 mse_loss (1 point):\n    mse_loss is wrong", ""))
    monkeypatch.chdir(tmp_path)
    res, out = run(shell, "validate()")
    assert res.success and res.result is None, res.error_in_exec
    assert calls and calls[0][-3:] == [str(tmp_path / "loss_functions.ipynb"), "--assignment", "loss_functions"]
    assert shown[0][0] == "warn" and "The saved file is not what you ran" in shown[0][1], shown
    assert "Save the notebook (Ctrl+S" in shown[0][1] and "\u2718 mse_loss" in shown[1][1], shown

    shown.clear()
    _saved(tmp_path, MSE_RIGHT)  # saved: no warning
    run(shell, "validate()")
    assert not any("saved file is not" in text for _, text in shown), shown


def test_validate_is_skipped_outside_the_students_notebook(shell, monkeypatch):
    """The grader runs the notebook's code cells, validate() included; nbgrader runs it too; bn_mlp
    runs batch_norm.ipynb's cells in another namespace: none of them starts a validation."""
    import subprocess

    monkeypatch.setattr(subprocess, "run", lambda *a, **k: pytest.fail("validate ran"))
    as_person(monkeypatch, stop_on_error=False)
    _, out = run(shell, "validate()")
    assert "skipped here" in out
    as_person(monkeypatch)
    assert kernel.validate({}, "loss_functions", namespace={}) is None  # not the kernel's namespace


# 3. one validate: nbgrader's JupyterLab plugins disabled in the course's JupyterLab
def test_course_lab_disables_nbgrader_plugins():
    import sys

    config = json.loads((ROOT / "jupyter" / "labconfig" / "page_config.json").read_text())
    disabled = {k for k, v in config["disabledExtensions"].items() if v}
    bundle = Path(sys.prefix) / "share/jupyter/labextensions/@jupyter/nbgrader/static"
    if not bundle.is_dir():
        pytest.skip("nbgrader's labextension is not installed")
    ids = set(re.findall(r'id:\s*"(@jupyter/nbgrader:[\w-]+)"', "".join(p.read_text(errors="replace")
                                                                       for p in bundle.glob("*.js"))))
    assert {"@jupyter/nbgrader:validate-assignment", "@jupyter/nbgrader:create-assignment"} <= ids, ids
    assert ids <= disabled, ids - disabled
    assert 'JUPYTER_CONFIG_PATH="$(CURDIR)/jupyter' in (ROOT / "Makefile").read_text()


# the introductions and the problem-sets page say the same thing
@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.name)
def test_notebooks_say_how_to_check_and_validate(nb):
    cells = read(nb).cells
    intro = cells[0].source
    for phrase in ("**How to check your work.**", "checks ready", "**Before you submit: `validate()`.**",
                   "Save the notebook (Ctrl+S)", "`make lab`", f"exercises/{nb.parent.name}/{nb.name}"):
        assert phrase in intro, phrase
    assert cells[-1].cell_type == "code" and cells[-1].source == "validate()"
    page = (ROOT / "book" / "problem_sets.md").read_text().lower()
    for phrase in ("make lab", "validate()", "save the notebook (ctrl+s)", "checks ready", "tested: mse_loss from"):
        assert phrase in page, phrase
