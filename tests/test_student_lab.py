"""A student's evening in JupyterLab, in Debian's Chromium driven by Playwright (no browser
download): `.venv/bin/jupyter lab` on a free port with a token, in a scratch copy of the course,
configured as `make lab` configures it (jupyter/labconfig: nbgrader's own plugins disabled).

loss_functions.ipynb: a check before the set-up cell; the set-up cell's one line; a wrong
`mse_loss` and its diagnosis read from the page (word-wrapped: the output is an HTML block with
`white-space: pre-wrap; word-break: normal`, and the cell shows no error); a syntax error (the
check says it tested the old definition); the right answer and the pass line; `validate()` before
saving (it says the saved file is not what ran) and after saving (the verdict for mse_loss
passes); Run All goes on past a failing check. batch_norm.ipynb: the same through `BatchNorm1d`
(the unbiased variance: bn_module_grad names the failing bn_module_train).

Screenshots: .screenshots/student/ (git-ignored). The server is stopped whatever happens.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest
from browser_support import CHROMIUM, CHROMIUM_ARGS, LOCAL_HOSTS, ROOT
from catalog.batch_norm import student_module

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SHOTS = ROOT / ".screenshots" / "student"
JUPYTER = Path(sys.executable).with_name("jupyter")
TOKEN = "student-evening-token"
COPY = ["autograde", "exercises", "solutions", "jupyter", "pyproject.toml", "nbgrader_config.py"]
NBGRADER_PLUGINS = ["@jupyter/nbgrader:validate-assignment", "@jupyter/nbgrader:create-assignment",
                    "@jupyter/nbgrader:menu"]

SETTINGS = {  # the lab's user settings in the scratch folder: no autosave (the test saves), no news toast
    "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false",
                                                                        "checkForUpdates": False},
}

MSE_SUM = '''def mse_loss(pred, target):
    """Mean squared error over all elements."""
    d = np.asarray(pred, dtype=np.float64) - np.asarray(target, dtype=np.float64)
    return float(np.sum(d * d))
'''
MSE_SYNTAX = '''def mse_loss(pred, target):
    """Mean squared error over all elements."""
    d = np.asarray(pred, dtype=np.float64) - np.asarray(target, dtype=np.float64)
    return float(np.mean(d * d)
'''
MSE_RIGHT = '''def mse_loss(pred, target):
    """Mean squared error over all elements."""
    d = np.asarray(pred, dtype=np.float64) - np.asarray(target, dtype=np.float64)
    return float(np.mean(d * d))
'''
BN_UNBIASED = student_module(1)
BN_RIGHT = student_module(0)
BN_SYNTAX = BN_RIGHT.replace("correction=0)", "correction=0", 1)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """`jupyter lab` on a scratch copy of the course; yields (base URL, course folder); stopped
    (its process group killed) whatever happens."""
    if not CHROMIUM.is_file():
        pytest.fail(f"no Chromium at {CHROMIUM}") if os.environ.get("CI") else pytest.skip(f"no Chromium at {CHROMIUM}")
    tmp = tmp_path_factory.mktemp("lab")
    course = tmp / "course"
    course.mkdir()
    for name in COPY:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, course / name, ignore=shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints"))
        else:
            shutil.copy(src, course / name)
    settings = tmp / "settings"
    for rel, value in SETTINGS.items():
        (settings / rel).parent.mkdir(parents=True, exist_ok=True)
        (settings / rel).write_text(json.dumps(value))
    port = _free_port()
    env = {**os.environ,
           "JUPYTER_CONFIG_PATH": str(course / "jupyter"),  # what `make lab` sets
           "JUPYTER_CONFIG_DIR": str(tmp / "config"), "JUPYTER_RUNTIME_DIR": str(tmp / "runtime"),
           "JUPYTERLAB_SETTINGS_DIR": str(settings), "JUPYTERLAB_WORKSPACES_DIR": str(tmp / "workspaces"),
           "IPYTHONDIR": str(tmp / "ipython"), "PYTHONPATH": str(course),  # the copy's autograde, not .venv's
           "MPLBACKEND": "Agg", "AUTOGRADE_DEVICE": "cpu"}
    env.pop("AUTOGRADE_CHECK_RAISES", None)
    log = open(tmp / "lab.log", "w")
    proc = subprocess.Popen(
        [str(JUPYTER), "lab", "--no-browser", f"--port={port}", "--ip=127.0.0.1", f"--ServerApp.root_dir={course}",
         f"--IdentityProvider.token={TOKEN}", "--ServerApp.disable_check_xsrf=False", "--LabApp.news_url=",
         "--ServerApp.terminals_enabled=False", *(["--allow-root"] if os.geteuid() == 0 else [])],
        cwd=course, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while True:
            try:
                urllib.request.urlopen(f"{base}/api/status?token={TOKEN}", timeout=2).read()
                break
            except OSError:
                if proc.poll() is not None or time.time() > deadline:
                    raise RuntimeError("jupyter lab did not start:\n" + (tmp / "lab.log").read_text()[-4000:])
                time.sleep(0.5)
        yield base, course
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=15)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(timeout=15)
        for pid in _kernels_of(tmp / "runtime"):  # a kernel the server could not shut down (its own session)
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        log.close()


def _kernels_of(runtime: Path) -> list[int]:
    """The pids of the processes whose command line names this server's runtime folder (its kernels)."""
    pids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if str(runtime) in (d / "cmdline").read_bytes().decode(errors="replace"):
                    pids.append(int(d.name))
            except OSError:
                pass
    return pids


@pytest.fixture(scope="module")
def page(lab):
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    profile = tempfile.mkdtemp(prefix="lab-chromium-")
    try:
        with sync_playwright() as p:
            ctx = p.chromium.launch_persistent_context(
                profile, executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True,
                viewport={"width": 1280, "height": 900}, service_workers="block")
            ctx.route("**/*", lambda r: r.continue_() if _local(r.request.url) else r.abort())
            pg = ctx.pages[0] if ctx.pages else ctx.new_page()
            pg.set_default_timeout(60_000)
            try:
                yield pg
            finally:
                ctx.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def _local(url: str) -> bool:
    from urllib.parse import urlparse

    return url.startswith(("data:", "blob:")) or urlparse(url).hostname in LOCAL_HOSTS


class Notebook:
    """One open notebook: its cells found by their nbgrader grade_id (the ids in the .ipynb)."""

    def __init__(self, page, base, course, rel):
        self.page, self.rel = page, rel
        cells = json.loads((course / rel).read_text())["cells"]
        self.index = {c["metadata"].get("nbgrader", {}).get("grade_id", c.get("id")): i for i, c in enumerate(cells)}
        page.goto(f"{base}/lab/tree/{rel}?token={TOKEN}")
        page.wait_for_selector(".jp-NotebookPanel .jp-Cell", state="attached")
        page.wait_for_function(
            "() => document.querySelectorAll('.jp-NotebookPanel .jp-Notebook .jp-Cell').length >= %d" % len(cells))
        # the kernel is up when the status bar's kernel status reads Idle
        page.wait_for_function("() => /Idle/.test(document.querySelector('#jp-main-statusbar')?.innerText || '')",
                               timeout=90_000)

    def cell(self, gid):
        return self.page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell").nth(self.index[gid])

    def prompt(self, gid) -> str:
        return self.cell(gid).locator(".jp-InputArea-prompt").inner_text().strip()

    def run(self, gid, timeout=90):
        """Select the cell and run it in place (Ctrl+Enter); wait until its prompt shows a number."""
        c = self.cell(gid)
        c.scroll_into_view_if_needed()
        c.locator(".jp-InputArea-prompt").click()  # command mode on this cell
        before = self.prompt(gid)
        self.page.keyboard.press("Control+Enter")
        deadline = time.time() + timeout
        while time.time() < deadline:
            now = self.prompt(gid)
            if re.fullmatch(r"\[\d+\]:", now) and now != before:
                return self.output(gid)
            time.sleep(0.2)
        raise AssertionError(f"{gid} did not finish in {timeout} s (prompt {self.prompt(gid)!r})")

    def output(self, gid) -> str:
        return self.cell(gid).locator(".jp-OutputArea").inner_text()

    def type(self, gid, text):
        """Replace the cell's text as a student does: click into it, select all, type (insert)."""
        c = self.cell(gid)
        c.scroll_into_view_if_needed()
        c.locator(".cm-content").click()
        self.page.keyboard.press("Control+a")
        self.page.keyboard.press("Delete")
        self.page.keyboard.insert_text(text)
        self.page.keyboard.press("Escape")

    def save(self):
        self.page.keyboard.press("Control+s")
        self.page.wait_for_function(
            "() => !document.querySelector('.jp-mod-current.jp-mod-dirty, .lm-TabBar-tab.lm-mod-current.jp-mod-dirty')")
        time.sleep(0.5)

    def shot(self, name, gid=None):
        target = self.cell(gid) if gid else self.page
        if gid:
            target.scroll_into_view_if_needed()
        target.screenshot(path=str(SHOTS / f"{name}.png"))

    def assert_readable(self, gid):
        """The failure is shown as wrapped text (an HTML block), and the cell has no error."""
        block = self.cell(gid).locator(".autograde-fail, .autograde-warn").first
        style = block.evaluate("e => [getComputedStyle(e).whiteSpace, getComputedStyle(e).wordBreak]")
        assert style == ["pre-wrap", "normal"], style
        assert self.cell(gid).locator("[data-mime-type='application/vnd.jupyter.stderr']").count() == 0
        assert "Traceback" not in self.output(gid)


def test_nbgrader_plugins_are_disabled(lab, page):
    base, course = lab
    page.goto(f"{base}/lab?token={TOKEN}")
    page.wait_for_selector("#jupyter-config-data", state="attached")
    config = json.loads(page.locator("#jupyter-config-data").text_content())
    assert any(e["name"] == "@jupyter/nbgrader" for e in config["federated_extensions"]), "nbgrader is installed"
    for plugin in NBGRADER_PLUGINS:
        assert plugin in config["disabledExtensions"], (plugin, config["disabledExtensions"])
    page.wait_for_selector(".lm-MenuBar-item")
    menus = page.locator(".lm-MenuBar-itemLabel").all_inner_texts()
    assert "Nbgrader" not in menus, menus


def test_loss_functions_evening(lab, page):
    base, course = lab
    nb = Notebook(page, base, course, "exercises/loss_functions/loss_functions.ipynb")
    toolbar = page.locator(".jp-NotebookPanel-toolbar").inner_text()
    assert "Validate" not in toolbar, toolbar  # nbgrader's button: hidden

    out = nb.run("test_mse_loss")  # before the set-up cell: the check cell imports check itself
    assert "mse_loss` is not defined" in out and "NameError: name 'check'" not in out, out

    out = nb.run("setup")
    assert re.search(r"checks ready: PyTorch \d+\.\d+\.\d+ on cpu", out), out

    nb.type("mse_loss", MSE_SUM)
    run_at = nb.run("mse_loss") and nb.prompt("mse_loss")
    out = nb.run("test_mse_loss")
    assert "SUM of the squared errors" in out and "MEAN" in out, out
    assert f"tested: mse_loss from the cell run at {run_at[:-1]}" in out, (run_at, out)
    nb.assert_readable("test_mse_loss")
    nb.shot("lf_1_wrong_mse", "test_mse_loss")

    nb.type("mse_loss", MSE_SYNTAX)
    out = nb.run("mse_loss")
    assert "SyntaxError" in out, out
    out = nb.run("test_mse_loss")
    assert "This tested an OLD mse_loss" in out and "SyntaxError" in out and "SUM of the squared" in out, out
    nb.assert_readable("test_mse_loss")
    nb.shot("lf_2_syntax_error", "test_mse_loss")

    nb.type("mse_loss", MSE_RIGHT)
    nb.run("mse_loss")
    out = nb.run("test_mse_loss")
    assert re.search(r"\u2714 mse_loss: \d+ cases passed", out) and "OLD" not in out, out
    nb.shot("lf_3_pass", "test_mse_loss")

    out = nb.run("validate", timeout=120)  # not saved: the file still holds the stub
    assert "The saved file is not what you ran: the saved loss_functions.ipynb has another version of mse_loss" in out, out
    assert "\u2718 mse_loss" in out and "not implemented" in out, out
    nb.shot("lf_4_validate_unsaved", "validate")

    nb.save()
    out = nb.run("validate", timeout=120)
    assert "saved file is not" not in out and "\u2714 mse_loss (1 point)" in out, out
    assert "\u2718 cross_entropy_loss" in out, out  # still a stub
    nb.shot("lf_5_validate_saved", "validate")

    # Run All goes on past failing checks: the stub mse_loss_grad's check fails, the next cells run
    before = nb.prompt("test_cross_entropy_loss")
    page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
    page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()
    deadline = time.time() + 60
    while nb.prompt("test_cross_entropy_loss") in (before, "[*]:", "[ ]:") and time.time() < deadline:
        time.sleep(0.3)
    out = nb.output("test_cross_entropy_loss")
    assert "not implemented" in out, out
    assert "not implemented" in nb.output("test_mse_loss_grad")
    nb.shot("lf_6_run_all", "test_mse_loss_grad")


def test_batch_norm_evening(lab, page):
    base, course = lab
    nb = Notebook(page, base, course, "exercises/batch_norm/batch_norm.ipynb")
    assert "checks ready: PyTorch" in nb.run("setup")
    nb.run("torch_setup")

    nb.type("BatchNorm1d", BN_UNBIASED)
    run_at = nb.run("BatchNorm1d") and nb.prompt("BatchNorm1d")
    out = nb.run("test_bn_module_train")
    assert "BatchNorm1d" in out and "biased" in out.lower(), out
    assert f"tested: BatchNorm1d from the cell run at {run_at[:-1]}" in out, out
    nb.assert_readable("test_bn_module_train")
    nb.shot("bn_1_unbiased_train", "test_bn_module_train")
    out = nb.run("test_bn_module_grad")
    assert "check('bn_module_train') fails too" in out, out
    nb.assert_readable("test_bn_module_grad")
    nb.shot("bn_2_unbiased_grad", "test_bn_module_grad")

    nb.type("BatchNorm1d", BN_SYNTAX)
    assert "SyntaxError" in nb.run("BatchNorm1d")
    out = nb.run("test_bn_module_train")
    assert "This tested an OLD BatchNorm1d" in out and "SyntaxError" in out, out
    nb.shot("bn_3_syntax_error", "test_bn_module_train")

    nb.type("BatchNorm1d", BN_RIGHT)
    nb.run("BatchNorm1d")
    for gid in ("test_bn_module_train", "test_bn_module_eval", "test_bn_module_grad"):
        out = nb.run(gid)
        assert re.search(rf"\u2714 {gid[5:]}: \d+ cases passed", out), out
    nb.shot("bn_4_pass", "test_bn_module_grad")

    out = nb.run("validate", timeout=180)
    assert "has another version of BatchNorm1d" in out, out
    assert "\u2718 bn_module_train" in out, out
    nb.shot("bn_5_validate_unsaved", "validate")
    nb.save()
    out = nb.run("validate", timeout=180)
    assert "saved file is not" not in out, out
    for t in ("bn_module_train", "bn_module_eval", "bn_module_grad"):
        assert f"\u2714 {t}" in out, out
    nb.shot("bn_6_validate_saved", "validate")
