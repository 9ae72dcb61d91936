"""The course repository's URL is set in one place (_config.yml's `repository:`), and everything
that links to the repository follows it: scripts/set_repository.py is the one way to change it."""
import importlib.util
import re
import shutil

import pytest

from autograde.paths import ROOT

spec = importlib.util.spec_from_file_location("set_repository", ROOT / "scripts" / "set_repository.py")
set_repository = importlib.util.module_from_spec(spec)
spec.loader.exec_module(set_repository)


def test_every_notebook_quotes_the_configured_repository():
    url, branch = set_repository.configured()
    nbs = set_repository.notebooks()
    assert nbs, "no notebooks found"
    for nb in nbs:
        found = set_repository.quoted(nb)
        assert found, f"{nb.relative_to(ROOT)}: its set-up cell quotes no %pip line"
        assert set(found) == {(url, branch)}, f"{nb.relative_to(ROOT)} quotes {found}, _config.yml says {url}@{branch}"
    assert set_repository.disagreements() == []


def test_no_other_copy_of_the_url_in_the_book_or_the_readme():
    """Pages build their links from _config.yml; none may spell a repository URL of its own."""
    url, _ = set_repository.configured()
    for page in [*ROOT.glob("book/*.md"), ROOT / "README.md"]:
        text = page.read_text()
        assert url not in text, f"{page.relative_to(ROOT)} spells {url}: build it from _config.yml instead"
        assert "course-authors/losses-gd-bn" not in text, page


def test_set_repository_rewrites_every_copy(tmp_path):
    for name in ("_config.yml",):
        shutil.copy(ROOT / name, tmp_path / name)
    for folder in ("solutions", "exercises"):
        shutil.copytree(ROOT / folder, tmp_path / folder, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    old_url, _ = set_repository.configured(tmp_path)
    new_url = "https://github.com/some-university/ml-course"
    changed = set_repository.set_repository(new_url, "spring", tmp_path, run_release=False)
    assert tmp_path / "_config.yml" in changed
    assert set_repository.configured(tmp_path) == (new_url, "spring")
    assert set_repository.disagreements(tmp_path) == []
    for nb in set_repository.notebooks(tmp_path):
        text = nb.read_text()
        assert old_url not in text, nb
        assert set(set_repository.quoted(nb)) == {(new_url, "spring")}, nb
    # the rest of _config.yml is untouched
    old_lines = [l for l in (ROOT / "_config.yml").read_text().splitlines() if "url:" not in l and "branch:" not in l]
    new_lines = [l for l in (tmp_path / "_config.yml").read_text().splitlines() if "url:" not in l and "branch:" not in l]
    assert old_lines == new_lines
    # and a notebook that disagrees is reported
    nb = set_repository.notebooks(tmp_path)[0]
    nb.write_text(nb.read_text().replace(new_url, "https://github.com/elsewhere/copy"))
    assert any(nb.name in line for line in set_repository.disagreements(tmp_path))
    assert set_repository.main(["--check", "--root", str(tmp_path)]) == 1


@pytest.mark.parametrize("workflow", ["book.yml", "linkcheck.yml"])
def test_the_pages_workflows_use_the_script(workflow):
    text = (ROOT / ".github" / "workflows" / workflow).read_text()
    assert "scripts/set_repository.py" in text
    assert not re.search(r"sed .*_config\.yml", text), "rewriting _config.yml alone leaves the notebooks behind"
