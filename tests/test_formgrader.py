"""Formgrader on the grader's output, in a real browser (Debian's Chromium driven by Playwright,
as tests/test_browser.py): configured by nbgrader_config.py alone (no command-line flags), it
lists the graded submissions with the solution's points, shows each test's diagnosis to the hand
grader, and a hand grade and comment entered there reach the feedback page and the LMS export
after `python -m autograde publish`."""
from __future__ import annotations

import csv
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

import pytest
from browser_support import CHROMIUM, CHROMIUM_ARGS

from adversarial import CASES
from test_grading import BIN, ROOT

pytestmark = [pytest.mark.browser, pytest.mark.slow]
TIMEOUT_MS = 30_000


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _autograde(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "autograde", *args], capture_output=True, text=True, timeout=300, cwd=ROOT)


@pytest.fixture(scope="module")
def graded_course(tmp_path_factory):
    course = tmp_path_factory.mktemp("formgrader") / "course"
    (course / "solutions").mkdir(parents=True)
    shutil.copytree(ROOT / "solutions" / "loss_functions", course / "solutions" / "loss_functions")
    shutil.copy(ROOT / "nbgrader_config.py", course)
    for student, case in (("doejane", "solution"), ("smithbob", "wrong_mse")):
        folder = course / "submitted" / student / "loss_functions"
        folder.mkdir(parents=True)
        (folder / "loss_functions.ipynb").write_bytes(next(c for c in CASES if c.name == case).build())
        (folder / "timestamp.txt").write_text("2026-10-01 12:00:00.000000 UTC\n")  # as nbgrader collect writes it
    r = _autograde("grade", "--submissions", str(course / "submitted"), "--out", str(course / "graded"), "--seed", "0",
                   "--timeout", "10", "--no-progress")
    assert r.returncode == 0, r.stderr
    return course


@pytest.fixture(scope="module")
def formgrader(graded_course):
    """A Jupyter server with nbgrader's Formgrader, started in the course folder as the
    instructors page says (nothing but nbgrader_config.py tells it where the grades are)."""
    port, token = _free_port(), secrets.token_hex(16)
    home = graded_course.parent / "home"
    home.mkdir()
    env = {"PATH": f"{BIN}:/usr/bin:/bin", "HOME": str(home), "PYTHONPATH": str(ROOT)}
    server = subprocess.Popen([str(BIN / "jupyter"), "server", "--no-browser", f"--port={port}", "--ServerApp.ip=127.0.0.1",
                               f"--IdentityProvider.token={token}", "--allow-root"],
                              cwd=graded_course, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{base}/formgrader/api/status?token={token}", timeout=5) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            assert server.poll() is None and time.monotonic() < deadline, "the Jupyter server did not start"
            time.sleep(0.5)
        yield base, token
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@pytest.fixture(scope="module")
def page(formgrader):
    """A browser that sends the server's token with every request (the page's own API calls too)."""
    if not CHROMIUM.is_file():
        msg = f"no Chromium at {CHROMIUM}: `make test` installs Debian's chromium"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    from playwright.sync_api import sync_playwright

    profile = tempfile.mkdtemp(prefix="formgrader-chromium-")
    with sync_playwright() as p:
        ctx = p.chromium.launch_persistent_context(profile, executable_path=str(CHROMIUM), args=CHROMIUM_ARGS,
                                                   headless=True, viewport={"width": 1280, "height": 900},
                                                   extra_http_headers={"Authorization": f"token {formgrader[1]}"})
        ctx.set_default_timeout(TIMEOUT_MS)
        try:
            yield ctx.new_page()
        finally:
            ctx.close()
            shutil.rmtree(profile, ignore_errors=True)


def _api(formgrader, path: str):
    base, token = formgrader
    with urllib.request.urlopen(f"{base}/formgrader/api/{path}?token={token}", timeout=30) as resp:
        return json.loads(resp.read())


def test_formgrader_lists_the_graded_submissions(formgrader, page):
    base, _ = formgrader
    page.goto(f"{base}/formgrader/manage_submissions/loss_functions")
    page.wait_for_selector("text=smithbob")
    rows = {ln.split("\t")[1]: ln for ln in page.inner_text("body").splitlines() if ln.count("\t") > 3}
    assert "needs manual grading" in rows["smithbob"] and "\t5 / 7\t" in rows["smithbob"], rows  # the solution's points
    assert "2026-10-01 12:00:00 UTC" in rows["doejane"] and "\t6 / 7\t" in rows["doejane"], rows
    subs = {s["student"]: s for s in _api(formgrader, "submissions/loss_functions")}
    assert subs["doejane"]["autograded"] and subs["smithbob"]["autograded"], subs
    assert (subs["doejane"]["score"], subs["doejane"]["max_score"]) == (6.0, 7.0)  # the solution's points, 1 by hand
    assert (subs["smithbob"]["score"], subs["smithbob"]["max_score"]) == (5.0, 7.0)


def test_hand_grading_in_formgrader_reaches_the_feedback_and_the_export(graded_course, formgrader, page):
    base, _ = formgrader
    (nb,) = [n for n in _api(formgrader, "submitted_notebooks/loss_functions/loss_functions") if n["student"] == "smithbob"]
    page.goto(f"{base}/formgrader/submissions/{nb['id']}/")
    page.wait_for_selector("#q_overflow")
    text = page.inner_text("body")
    assert "SUM of the squared errors" in text, text[:3000]  # the test cell's diagnosis, for the hand grader
    with page.expect_response(lambda r: "/formgrader/api/grade/" in r.url and r.request.method == "PUT"):
        page.fill("#q_overflow", "1")
        page.press("#q_overflow", "Tab")
    with page.expect_response(lambda r: "/formgrader/api/comment/" in r.url and r.request.method == "PUT"):
        page.fill("#q_overflow-comment", "Right: exp overflows in float64 past 709.")
        page.press("#q_overflow-comment", "Tab")

    r = _autograde("publish", "--out", str(graded_course / "graded"))
    assert r.returncode == 0, r.stderr
    html = (graded_course / "graded" / "feedback" / "smithbob" / "loss_functions" / "loss_functions.html").read_text()
    assert "Right: exp overflows in float64 past 709." in html and "<b>6 / 7</b>" in html
    with open(graded_course / "graded" / "lms" / "canvas.csv", newline="") as f:
        rows = {row["Student"]: row for row in csv.DictReader(f)}
    assert rows["smithbob"]["loss_functions"] == "6" and rows["doejane"]["loss_functions"] == "6"
