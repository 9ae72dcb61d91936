"""What the notebooks' ``check()`` and ``validate()`` know about the student's Jupyter kernel.

* :func:`interactive`: is the cell running in a notebook a person drives (JupyterLab, Notebook 7:
  their execute requests carry the cell's id and ask the kernel to stop on errors), or in a batch
  run (nbgrader's autograde and validate, nbclient, pytest)? In a person's notebook a failing
  check shows its diagnosis and lets Run All go on; in a batch run it raises, so the cell has an
  error and nbgrader scores it 0. ``AUTOGRADE_CHECK_RAISES=1`` (or ``0``) forces either way.
* :func:`origins`: which run of which cell (IPython's ``In[n]``, via the function's code object)
  defined each function under test, and whether a later run of that cell (a different text that
  defines the same name) failed and left the old definition in place.
* :func:`saved_differences`: functions whose text in the *saved* notebook differs from the cell
  that defined them in this kernel (``validate`` grades the saved file).
* :func:`validate`: ``python -m autograde validate`` on the saved notebook, from a notebook cell,
  saying first when the saved file is not what the kernel ran.
* :func:`show`: a diagnosis as word-wrapped text (HTML with ``white-space: pre-wrap;
  word-break: normal``; JupyterLab's plain output breaks lines inside words).
"""
from __future__ import annotations

import html
import os
import re
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

WIDTH = 100  # plain-text fallback and tracebacks: wrapped at word boundaries


def ipython():
    """The running IPython shell, or None (plain Python, the grader's student process)."""
    mod = sys.modules.get("IPython")
    if mod is None:
        return None
    try:
        return mod.get_ipython()
    except Exception:  # noqa: BLE001 - a broken IPython is no IPython
        return None


def _request() -> dict:
    """The execute request the kernel is answering now ({} outside a kernel)."""
    kernel = getattr(ipython(), "kernel", None)
    if kernel is None:
        return {}
    try:
        return kernel.get_parent("shell") or {}
    except Exception:  # noqa: BLE001 - older ipykernel
        return getattr(kernel, "_parent", None) or {}


def interactive() -> bool:
    """True when a person runs this cell in a notebook frontend (see the module docstring)."""
    forced = os.environ.get("AUTOGRADE_CHECK_RAISES", "").strip()
    if forced in ("0", "1"):
        return forced == "0"
    req = _request()
    meta, content = req.get("metadata") or {}, req.get("content") or {}
    return bool(meta.get("cellId")) and content.get("stop_on_error", True) is not False


def wrap(text: str, width: int = WIDTH, indent: str = "  ") -> list[str]:
    """Lines of ``text`` wrapped at word boundaries; continuation lines indented."""
    out = []
    for line in text.splitlines() or [""]:
        lead = line[:len(line) - len(line.lstrip())]
        out += textwrap.wrap(line, width=width, subsequent_indent=lead + indent, break_long_words=False,
                             break_on_hyphens=False) or [""]
    return out


STYLE = ("white-space: pre-wrap; word-break: normal; overflow-wrap: break-word; "
         "font-family: var(--jp-content-font-family, sans-serif); font-size: var(--jp-content-font-size1, 14px); "
         "line-height: 1.45; padding: 2px 0")
COLORS = {"fail": "var(--jp-error-color1, #d32f2f)", "warn": "var(--jp-warn-color1, #e65100)",
          "ok": "var(--jp-success-color1, #2e7d32)"}


def html_block(text: str, kind: str = "fail") -> str:
    """``text`` as an HTML block that wraps at word boundaries: a warning line (⚠) in the warning
    colour, the verdict marks (✘, ✔) coloured, the rest as plain text."""
    out = []
    for line in text.split("\n"):
        if line.startswith("\u26a0"):
            out.append(f'<span style="color: {COLORS["warn"]}; font-weight: 600">{html.escape(line)}</span>')
        elif line.startswith(("\u2718", "\u2714")):
            mark = "fail" if line[0] == "\u2718" else "ok"
            out.append(f'<span style="color: {COLORS[mark]}; font-weight: 700">{line[0]}</span>{html.escape(line[1:])}')
        else:
            out.append(html.escape(line))
    return f'<div class="autograde-{kind}" style="{STYLE}">' + "\n".join(out) + "</div>"


def show(text: str, kind: str = "fail") -> None:
    """Display ``text`` in the notebook (HTML, wrapped by the browser) with a plain-text fallback
    wrapped at word boundaries; print it when there is no IPython display."""
    plain = "\n".join(wrap(text))
    try:
        from IPython.display import display

        if ipython() is None:
            raise ImportError
        display({"text/html": html_block(text, kind), "text/plain": plain}, raw=True)
    except ImportError:
        print(plain)


# ------------------------------------------------------------------------------------------------
# Which cell defined the function under test
# ------------------------------------------------------------------------------------------------
def _code_files(obj) -> list[str]:
    """The file names of the code objects that make ``obj`` (a function, or a class's methods)."""
    fn = getattr(obj, "__func__", obj)
    code = getattr(fn, "__code__", None)
    if code is not None:
        return [code.co_filename]
    if isinstance(obj, type):
        files = []
        for value in vars(obj).values():
            value = getattr(value, "__func__", value)
            code = getattr(value, "__code__", None)
            if code is not None and code.co_filename not in files:
                files.append(code.co_filename)
        return files
    return []


def defines(source: str, name: str) -> bool:
    """Does this cell text define ``name`` at its top level (def, class or assignment)?"""
    n = re.escape(name)
    return re.search(rf"^(?:async\s+def|def|class)\s+{n}\b|^{n}\s*(?::[^=\n]*)?=(?!=)", source, re.M) is not None


def _history() -> list[str]:
    ip = ipython()
    if ip is None:
        return []
    hist = getattr(getattr(ip, "history_manager", None), "input_hist_raw", None)  # the cells as typed
    if not isinstance(hist, list):
        hist = ip.user_ns.get("In") or []
    return list(hist)


def _why_not_run(source: str) -> str:
    """Why a cell that defines a name may not have defined it: its syntax error, or an error."""
    try:
        from IPython.core.inputtransformer2 import TransformerManager

        source = TransformerManager().transform_cell(source)
    except Exception:  # noqa: BLE001 - fall back to the raw text
        pass
    try:
        compile(source, "cell", "exec")
    except SyntaxError as exc:
        return f"it has a {type(exc).__name__} on line {exc.lineno}: {exc.msg}"
    return "it raised an error before the definition ran"


def origin(name: str, namespace: dict) -> dict | None:
    """Where the kernel's ``name`` comes from: {"run": n, "source": In[n], "later": k or None,
    "why": ...}; None outside IPython or when it was not defined by a cell of this kernel."""
    ip = ipython()
    if ip is None or name not in namespace:
        return None
    fmap = getattr(getattr(ip, "compile", None), "_filename_map", None) or {}
    runs = [fmap[f] for f in _code_files(namespace[name]) if f in fmap]
    if not runs:
        return None
    n = max(runs)
    hist = _history()
    src = hist[n] if 0 <= n < len(hist) else ""
    later = [k for k in range(n + 1, len(hist)) if defines(hist[k], name) and hist[k].strip() != src.strip()]
    k = later[-1] if later else None
    return {"name": name, "run": n, "source": src, "later": k, "why": _why_not_run(hist[k]) if k else ""}


def origins(names, namespace: dict) -> tuple[list[str], list[str]]:
    """(notes, warnings) about the functions under test: "mse_loss from [5]" and, when a later run
    of its cell failed, a warning that the check tested the old definition."""
    found, stale = [], []
    for name in dict.fromkeys(names):
        o = origin(name, namespace)
        if o is None:
            continue
        found.append(f"{name} from the cell run at [{o['run']}]")
        if o["later"]:
            stale.append(f"\u26a0 This tested an OLD {name}: the one defined by the cell you ran at [{o['run']}]. "
                         f"You ran a changed version of that cell at [{o['later']}], but it did not define {name} "
                         f"({o['why']}). Fix that cell, run it, then run this check again.")
    notes = [f"tested: {', '.join(found)}."] if found else []
    return notes, stale


# ------------------------------------------------------------------------------------------------
# Warnings raised while the student's code ran
# ------------------------------------------------------------------------------------------------
def _where(filename: str, lineno: int) -> str:
    fmap = getattr(getattr(ipython(), "compile", None), "_filename_map", None) or {}
    if filename in fmap:
        return f"cell [{fmap[filename]}], line {lineno}"
    return f"{Path(filename).name}, line {lineno}"


def summarize_warnings(caught) -> str:
    """One line for the warnings caught while a check ran (at most three kinds, with counts), or ""."""
    kinds: dict[tuple, int] = {}
    for w in caught:
        key = (w.category.__name__, str(w.message).splitlines()[0][:160] if str(w.message) else "", _where(w.filename, w.lineno))
        kinds[key] = kinds.get(key, 0) + 1
    if not kinds:
        return ""
    parts = [f"{cat}: {msg} ({where}{', ' + str(c) + ' times' if c > 1 else ''})" for (cat, msg, where), c in kinds.items()]
    more = f"; and {len(parts) - 3} more" if len(parts) > 3 else ""
    return "Warnings while it ran: " + "; ".join(parts[:3]) + more + "."


def record_warnings():
    """A context manager that records every warning (``always``), so that none is printed."""
    cm = warnings.catch_warnings(record=True)

    class _Rec:
        def __enter__(self):
            caught = cm.__enter__()
            warnings.simplefilter("always")
            return caught

        def __exit__(self, *exc):
            return cm.__exit__(*exc)

    return _Rec()


# ------------------------------------------------------------------------------------------------
# validate() from a notebook cell
# ------------------------------------------------------------------------------------------------
def _normalized(source: str) -> str:
    return "\n".join(line.rstrip() for line in source.strip().splitlines())


def saved_differences(path: Path, names, namespace: dict) -> list[str]:
    """Functions under test whose defining cell in this kernel is not in the saved notebook."""
    from . import notebook

    try:
        cells = [c.source for c in notebook.read(path).cells if c.get("cell_type") == "code"]
    except notebook.InvalidNotebook:
        return []
    out = []
    for name in dict.fromkeys(names):
        o = origin(name, namespace)
        if o is None or not o["source"]:
            continue
        saved = [src for src in cells if defines(src, name)]
        ran = [o["source"]] + ([_history()[o["later"]]] if o["later"] else [])
        if not any(_normalized(s) == _normalized(r) for s in saved for r in ran):
            out.append(f"{name} (you ran it at [{o['later'] or o['run']}])")
    return out


def notebook_path(default: str) -> Path:
    """The notebook this kernel belongs to: JupyterLab's JPY_SESSION_NAME when that file is in the
    current folder, else ``default`` there."""
    session = os.environ.get("JPY_SESSION_NAME", "")
    if session.endswith(".ipynb") and (Path.cwd() / Path(session).name).is_file():
        return Path.cwd() / Path(session).name
    return Path.cwd() / default


def validate(tests, assignment: str, notebook: str | None = None, namespace: dict | None = None,
             timeout: float = 300) -> int | None:
    """Run ``python -m autograde validate`` on the saved notebook and show its verdicts; first say
    whether the saved file holds the functions this kernel ran. Returns validate's exit status
    (None when skipped: outside a notebook a person drives, e.g. while grading)."""
    ip = ipython()
    if ip is None or (namespace is not None and namespace is not ip.user_ns) or \
            (_request().get("content") or {}).get("stop_on_error", True) is False:
        # the grader's student process, another notebook's cells run by bn_mlp, nbgrader's runs
        print("validate() runs when you run this cell in your notebook (skipped here).")
        return None
    path = Path(notebook) if notebook else notebook_path(f"{assignment}.ipynb")
    if not path.is_absolute():
        path = Path.cwd() / path
    names = [f for t in tests.values() for f in t.functions]
    ns = namespace if namespace is not None else {}
    if not path.is_file():
        show(f"\u2718 validate: {path.name} is not in {path.parent}. Pass the notebook's file name: "
             f"validate(\"my_notebook.ipynb\").")
        return 2
    unsaved = saved_differences(path, names, ns)
    banner = ""
    if unsaved:
        banner = (f"\u26a0 The saved file is not what you ran: the saved {path.name} has another version of "
                  f"{', '.join(unsaved)}. validate grades the SAVED file, as the grader will. Save the notebook "
                  f"(Ctrl+S, or File \u2192 Save) and run this cell again; below are the verdicts on the old file.")
        show(banner, "warn")
    here = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [here, os.environ.get("PYTHONPATH")]))}
    env.pop("JPY_SESSION_NAME", None)
    print(f"validating the saved {path.name} (the grader's checks, your code in a separate process)...", flush=True)
    try:
        r = subprocess.run([sys.executable, "-m", "autograde", "validate", str(path), "--assignment", assignment],
                           capture_output=True, text=True, timeout=timeout, env=env, cwd=str(path.parent))
        text, rc = (r.stdout + r.stderr).strip(), r.returncode
    except subprocess.TimeoutExpired:
        text, rc = f"validate did not finish within {timeout:g} s.", 1
    kind = "ok" if rc == 0 and not unsaved else ("warn" if rc == 0 else "fail")
    show(text or f"validate exited with status {rc}", kind)
    if unsaved:
        show("\u26a0 Reminder: these verdicts are for the saved file, not for what you ran. Save, then validate again.",
             "warn")
    return rc
