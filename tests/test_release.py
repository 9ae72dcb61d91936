"""`release --check` passes on the committed exercises and fails, naming the file, on a stale one."""
import json
import shutil
import subprocess
import sys

from autograde import paths, release


def test_release_check_passes():
    r = subprocess.run([sys.executable, "-m", "autograde", "release", "--check"], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "matches solutions" in r.stdout


def test_release_check_names_a_stale_file(tmp_path, monkeypatch, capsys):
    a = paths.assignments()[0]
    shutil.copytree(paths.EXERCISES, tmp_path / "exercises")
    nb = sorted((tmp_path / "exercises" / a).glob("*.ipynb"))[0]
    nb.write_text(nb.read_text().replace("YOUR CODE HERE", "YOUR CODE HERE!", 1))
    monkeypatch.setattr(release, "EXERCISES", tmp_path / "exercises")
    assert release.release(a, check=True) == 1
    out = capsys.readouterr().out
    assert f"exercises/{a}/{nb.name}" in out and "differs" in out


def test_release_is_deterministic():
    a = paths.assignments()[0]
    assert release.generate([a]) == release.generate([a])


def test_unknown_assignment_is_a_one_line_error():
    r = subprocess.run([sys.executable, "-m", "autograde", "release", "no_such_thing"], capture_output=True, text=True)
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and "unknown assignment 'no_such_thing'" in r.stderr


def test_problem_set_titles_number_their_chapters():
    """A notebook's title says the problem set's number, its chapter's in the table of contents (a
    chapter inserted before it renumbers it: this fails until the title follows)."""
    import re

    from autograde.paths import assignments, problem_set_number, solution_notebooks

    for a in assignments():
        for path in solution_notebooks(a):
            title = "".join(json.loads(path.read_text())["cells"][0]["source"]).splitlines()[0]
            m = re.match(r"# Problem set (\d+)\b", title)
            assert m and int(m.group(1)) == problem_set_number(a), (path.name, title, problem_set_number(a))
