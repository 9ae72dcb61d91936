"""`python -m autograde export-pdf`: the hand-graded answers, one question per page, read back
from the PDFs with pypdf (page count, text on the right page, the student's figure)."""
from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest

from adversarial import dumps, edit, student_solution

from autograde.paths import EXERCISES, ROOT

pypdf = pytest.importorskip("pypdf")
CHROMIUM = Path(os.environ.get("BOOK_CHROMIUM", "/usr/bin/chromium"))
pytestmark = pytest.mark.skipif(not CHROMIUM.is_file() and not os.environ.get("CI"),
                                reason=f"no Chromium at {CHROMIUM} (make test installs it)")


def _png() -> str:
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (320, 160), "white")
    ImageDraw.Draw(img).line([(10, 150), (300, 20)], fill=(31, 119, 180), width=4)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def _bn_mlp() -> bytes:
    nb = json.loads((EXERCISES / "batch_norm" / "bn_mlp.ipynb").read_text())
    answers = {"q_curves": "CURVES-ANSWER: at lr 0.5 the plain network diverges.",
               "q_modes": "MODES-ANSWER: small batches give noisy statistics.",
               "q_bias": "BIAS-ANSWER: beta plays the role of the bias."}
    for c in nb["cells"]:
        gid = c["metadata"].get("nbgrader", {}).get("grade_id")
        if gid in answers:
            c["source"] = answers[gid]
        if gid == "train_runs":
            c["outputs"] = [{"output_type": "display_data", "metadata": {},
                             "data": {"image/png": _png(), "text/plain": "<Figure size 1000x400>"}}]
            c["execution_count"] = 3
        if gid == "modes_run":
            c["outputs"] = [{"output_type": "stream", "name": "stdout",
                             "text": "train mode, test batches of    2:    accuracy 0.314\n"}]
            c["execution_count"] = 4
    return json.dumps(nb).encode()


@pytest.fixture(scope="module")
def pdfs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("pdf")
    subs = tmp / "submitted"
    answer = "ALICE-ANSWER: np.exp overflows to inf; subtracting the row maximum keeps it finite."
    files = {
        ("alice", "loss_functions", "loss_functions.ipynb"): dumps(edit(student_solution(), replace={"q_overflow": answer},
                                                                       test_output={"scale_demo": "scale   1000: loss = 1182\n"})),
        ("alice", "batch_norm", "bn_mlp.ipynb"): _bn_mlp(),  # batch_norm.ipynb not submitted
        ("bob", "loss_functions", "loss_functions.ipynb"): b'{"cells": [',
        ("carol", "loss_functions", "loss_functions (1).ipynb"): dumps(edit(student_solution(), replace={
            "q_overflow": "CAROL <script>document.title='x'</script> <b>bold?</b> and $e^{z}$ math"})),
    }
    for (s, a, name), data in files.items():
        (subs / s / a).mkdir(parents=True, exist_ok=True)
        (subs / s / a / name).write_bytes(data)
    r = subprocess.run([sys.executable, "-m", "autograde", "export-pdf", "--submissions", str(subs), "--out", str(tmp / "out")],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    return tmp / "out"


def _text(page) -> str:
    return " ".join(unicodedata.normalize("NFKC", page.extract_text()).split())


def _pages(path: Path) -> list[str]:
    return [_text(p) for p in pypdf.PdfReader(str(path)).pages]


def test_one_question_one_page(pdfs):
    pages = _pages(pdfs / "alice" / "loss_functions.pdf")
    assert len(pages) == 1
    text = pages[0]
    assert "question q_overflow (1 point)" in text
    assert "Question (graded by hand)" in text and "naive implementation" in text  # the prompt
    assert "scale 1000: loss = 1182" in text  # the output of the code cell it refers to
    assert "for _scale in" not in text  # not the course's code
    assert "ALICE-ANSWER: np.exp overflows to inf" in text


def test_every_question_starts_a_page_in_order(pdfs):
    reader = pypdf.PdfReader(str(pdfs / "alice" / "batch_norm.pdf"))
    pages = [_text(p) for p in reader.pages]
    assert len(pages) == 4, pages  # four questions, each on one page
    heads = ["question q_eps (1 point)", "question q_curves (2 points)", "question q_modes (1 point)",
             "question q_bias (1 point)"]
    where = [next(i for i, t in enumerate(pages) if h in t) for h in heads]
    assert where == sorted(where) and len(set(where)) == 4, where
    assert all(pages[i].startswith("batch_norm \u00b7") for i in where)  # each question heads its page
    assert "batch_norm.ipynb was not submitted" in pages[where[0]]
    assert "def train(model" not in " ".join(pages)  # the course's training code: its outputs only
    curves = " ".join(pages[where[1]:where[2]])
    assert "Question 1 (2 points)" in curves and "CURVES-ANSWER" in curves
    images = [name for p in reader.pages[where[1]:where[2]] for name in (p.images and [i.name for i in p.images])]
    assert images, "the student's figure is not in the PDF"
    assert "accuracy 0.314" in pages[where[2]] and "MODES-ANSWER" in pages[where[2]]
    assert "BIAS-ANSWER" in pages[where[3]]


def test_unreadable_renamed_and_html_answers(pdfs):
    bob = _pages(pdfs / "bob" / "loss_functions.pdf")
    assert len(bob) == 1 and "could not be read" in bob[0]
    carol = _pages(pdfs / "carol" / "loss_functions.pdf")
    assert len(carol) == 1 and "CAROL" in carol[0]
    assert "<script>document.title='x'</script>" in carol[0] and "<b>bold?</b>" in carol[0]  # shown, not run
    assert not (pdfs / "bob" / "batch_norm.pdf").exists()  # no folder, no PDF


def test_usage(tmp_path):
    r = subprocess.run([sys.executable, "-m", "autograde", "export-pdf", "--submissions", str(tmp_path / "nope"),
                        "--out", str(tmp_path / "o")], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "not found" in r.stderr and "Traceback" not in r.stderr
