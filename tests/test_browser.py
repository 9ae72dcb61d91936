"""The published book as a reader sees it: every page of the toc opened in Debian's Chromium
(driven by Playwright, no browser download), served from _build/html on 127.0.0.1, offline.

Per page: no console error, no request to another host (every request is routed; others are
blocked and recorded), the math typeset by the book's own MathJax (no raw TeX left, no TeX
error), every image loaded with a non-zero size and alt text, figures captioned, code cells
showing their output, readable figures in the dark theme, and no serious or critical axe-core
violation (light and dark theme). The built-in search finds the course's terms. Screenshots
(every page in full, light; every chapter's first figure, dark) are saved in _build/screenshots/
for a person to look at.

The book is built first (the strict build of `make book`, execution cached) when _build/html is
missing or older than its sources.
"""
from __future__ import annotations

import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from urllib.parse import quote, urlparse

import pytest
import yaml
from browser_support import (CHROMIUM, CHROMIUM_ARGS, HTML, LOCAL_HOSTS, ROOT, SCREENSHOTS,
                             build_if_stale, chapters, relative_luminance, serve, source,
                             toc_pages)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PAGES = toc_pages()
CHAPTERS = chapters()
SEARCH_TERMS = ["momentum", "running_var", "cross-entropy"]
TIMEOUT_MS = 30_000


@pytest.fixture(scope="session")
def book_html():
    note = build_if_stale()
    print(f"test_browser: {note}")
    return HTML


@pytest.fixture(scope="module")
def site(book_html):
    with serve(book_html) as base:
        yield base


@dataclass
class Browser:
    context: object
    external: list[str] = field(default_factory=list)  # requests to other hosts, blocked


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.is_file():
        msg = (f"no Chromium at {CHROMIUM}: `make test` installs Debian's chromium and "
               "chromium-driver (apt-get, as root or with sudo)")
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    from playwright.sync_api import sync_playwright

    profile = tempfile.mkdtemp(prefix="book-chromium-")
    with sync_playwright() as p:
        # a persistent context on a fresh, empty profile folder: nothing cached or stored
        ctx = p.chromium.launch_persistent_context(
            profile, executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True,
            viewport={"width": 1280, "height": 900}, service_workers="block",
        )
        b = Browser(ctx)

        def route(r):
            if urlparse(r.request.url).hostname in LOCAL_HOSTS:
                r.continue_()
            else:
                b.external.append(r.request.url)
                r.abort("blockedbyclient")

        ctx.route("**/*", route)
        ctx.set_default_timeout(TIMEOUT_MS)
        try:
            yield b
        finally:
            ctx.close()
            shutil.rmtree(profile, ignore_errors=True)


# --- one visit per page, shared by the checks below ------------------------------------------

FACTS_JS = r"""() => {
  const article = document.querySelector('article.bd-article') || document.body;
  const visibleText = (root) => {
    const clone = root.cloneNode(true);
    clone.querySelectorAll('pre, code, script, style, mjx-container').forEach(e => e.remove());
    return clone.textContent;
  };
  const maths = [...document.querySelectorAll('span.math, div.math')];
  const imgs = [...document.images].map(i => ({
    src: i.getAttribute('src'), complete: i.complete, width: i.naturalWidth,
    alt: (i.getAttribute('alt') || '').trim(), inArticle: article.contains(i),
    inOutput: !!i.closest('.cell_output'),
    caption: (i.closest('figure')?.querySelector('figcaption')?.textContent || '').trim(),
  }));
  const cells = [...document.querySelectorAll('div.cell')].map(c => ({
    code: (c.querySelector('.cell_input')?.textContent || ''),
    outputs: [...c.querySelectorAll('.cell_output > *')].filter(o =>
      o.textContent.trim() || o.querySelector('img, svg, table')).length,
  }));
  return {
    title: document.title,
    h1: (article.querySelector('h1')?.textContent || '').replace(/[#¶]/g, '').trim(),
    maths: maths.length,
    untypeset: maths.filter(e => !e.querySelector('mjx-container')).map(e => e.textContent.slice(0, 80)),
    mjx: document.querySelectorAll('mjx-container').length,
    texErrors: [...document.querySelectorAll('mjx-merror')].map(e => e.getAttribute('data-mjx-error') || e.textContent),
    rawDisplayMath: (visibleText(article).match(/\$\$[\s\S]{0,60}/g) || []),
    rawTeX: (visibleText(article).match(/\\[([][\s\S]{0,60}/g) || []),
    imgs, cells,
    links: [...article.querySelectorAll('a[href]')].map(a => ({
      text: a.textContent.trim(), href: a.getAttribute('href')})),
    stderr: [...document.querySelectorAll('.cell_output .stderr, .cell_output .output.stderr')].map(e => e.textContent.slice(0, 200)),
    tracebacks: document.querySelectorAll('.cell_output .traceback').length,
    text: article.innerText,
  };
}"""


@dataclass
class Visit:
    url: str
    console_errors: list[str]
    failed: list[str]
    external: list[str]
    facts: dict


def _settle(page):
    """Wait until MathJax has typeset the page and the theme's colour transitions have ended
    (the theme switches to the dark palette after loading, with CSS transitions)."""
    if page.evaluate("document.querySelectorAll('span.math, div.math').length"):
        page.wait_for_function("() => window.MathJax && MathJax.startup && MathJax.startup.promise")
        page.evaluate("() => MathJax.startup.promise")
    page.wait_for_function("() => document.getAnimations().every(a => a.playState !== 'running')")


@pytest.fixture(scope="module")
def visits(site, browser):
    cache: dict[str, Visit] = {}

    def visit(docname: str) -> Visit:
        if docname in cache:
            return cache[docname]
        page = browser.context.new_page()
        errors, failed = [], []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(f"uncaught: {e}"))
        page.on("requestfailed", lambda r: failed.append(f"{r.url} ({r.failure})"))
        page.on("response", lambda r: failed.append(f"{r.url} (HTTP {r.status})") if r.status >= 400 else None)
        before = len(browser.external)
        url = f"{site}{docname}.html"
        page.goto(url, wait_until="load")
        _settle(page)
        facts = page.evaluate(FACTS_JS)
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{docname.replace('/', '_')}.png"), full_page=True)
        page.close()
        cache[docname] = Visit(url, errors, failed, browser.external[before:], facts)
        return cache[docname]

    return visit


# --- every page ---------------------------------------------------------------------------------

@pytest.mark.parametrize("docname", PAGES)
def test_page_loads_offline_without_errors(visits, docname):
    v = visits(docname)
    assert not v.external, f"{docname} requested other hosts (blocked): {v.external}"
    assert not v.failed, f"{docname}: failed requests: {v.failed}"
    assert not v.console_errors, f"{docname}: console errors: {v.console_errors}"


@pytest.mark.parametrize("docname", PAGES)
def test_page_has_a_title_and_heading(visits, docname):
    f = visits(docname).facts
    assert f["h1"], f"{docname} has no <h1>"
    assert f["title"].startswith(f["h1"]), f"{docname}: title {f['title']!r} does not name the page {f['h1']!r}"


@pytest.mark.parametrize("docname", PAGES)
def test_math_is_typeset(visits, docname):
    f = visits(docname).facts
    assert not f["untypeset"], f"{docname}: math left as raw TeX: {f['untypeset'][:5]}"
    assert not f["texErrors"], f"{docname}: MathJax TeX errors: {f['texErrors'][:5]}"
    assert not f["rawDisplayMath"], f"{docname}: raw $$ in the text: {f['rawDisplayMath'][:3]}"
    assert not f["rawTeX"], f"{docname}: raw TeX delimiters in the text: {f['rawTeX'][:3]}"
    assert f["mjx"] >= f["maths"], f"{docname}: {f['maths']} formulas, {f['mjx']} typeset"


@pytest.mark.parametrize("docname", PAGES)
def test_images_load_and_are_described(visits, docname):
    f = visits(docname).facts
    broken = [i["src"] for i in f["imgs"] if not (i["complete"] and i["width"] > 0)]
    assert not broken, f"{docname}: images that did not load: {broken}"
    no_alt = [i["src"] for i in f["imgs"] if i["inArticle"] and not i["alt"]]
    assert not no_alt, f"{docname}: images without alt text: {no_alt}"
    no_caption = [i["alt"][:60] for i in f["imgs"] if i["inOutput"] and not i["caption"]]
    assert not no_caption, f"{docname}: figures without a caption: {no_caption}"


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("docname", PAGES)
def test_no_serious_accessibility_violations(site, browser, docname, scheme):
    from axe_playwright_python.sync_playwright import Axe

    page = browser.context.new_page()
    page.emulate_media(color_scheme=scheme)
    page.goto(f"{site}{docname}.html", wait_until="load")
    _settle(page)
    results = Axe().run(page)
    page.close()
    bad = [f"- {v['id']} ({v['impact']}): {v['help']}: {node['target']}\n"
           f"  {node.get('failureSummary', '').strip()[:300]}"
           for v in results.response["violations"] if v["impact"] in ("serious", "critical")
           for node in v["nodes"]]
    assert not bad, f"{docname} ({scheme}): axe-core serious/critical violations:\n" + "\n".join(bad)


# --- chapters -------------------------------------------------------------------------------

@pytest.mark.parametrize("docname", CHAPTERS)
def test_code_cells_show_their_output(visits, docname):
    f = visits(docname).facts
    assert any(c["outputs"] for c in f["cells"]), f"{docname} shows no executed output at all"
    # a cell that prints or shows a figure must show something
    silent = [c["code"].strip()[:80] for c in f["cells"]
              if re.search(r"\bprint\(|plt\.show\(|\bdisplay\(", c["code"]) and not c["outputs"]]
    assert not silent, f"{docname}: cells that print or plot but show no output: {silent}"
    assert not f["tracebacks"], f"{docname} shows a traceback"
    assert not f["stderr"], f"{docname} shows stderr output (warnings) to readers: {f['stderr'][:3]}"


@pytest.mark.parametrize("docname", CHAPTERS)
def test_figures_are_readable_in_the_dark_theme(site, browser, docname):
    """Matplotlib's inline figures have a transparent background: on the dark theme they need a
    light backdrop, or black axes and labels vanish."""
    page = browser.context.new_page()
    page.emulate_media(color_scheme="dark")
    page.goto(f"{site}{docname}.html", wait_until="load")
    assert page.evaluate("document.documentElement.dataset.theme") == "dark"
    _settle(page)
    figures = page.locator("article .cell_output img")
    backdrops = page.evaluate("""() => [...document.querySelectorAll('article .cell_output img')].map(img => {
        for (let e = img; e; e = e.parentElement) {
          const c = getComputedStyle(e).backgroundColor;
          if (!/rgba\\(.*,\\s*0\\)$/.test(c) && c !== 'transparent') return c;
        }
        return 'transparent';
      })""")
    if figures.count():
        figures.first.scroll_into_view_if_needed()
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{docname.replace('/', '_')}-dark.png"))
    page.close()
    dark = [c for c in backdrops if (relative_luminance(c) or 0) < 0.5]
    assert not dark, f"{docname}: figures drawn on a dark backdrop in the dark theme: {dark}"


# --- the site as a whole --------------------------------------------------------------------

@pytest.mark.parametrize("term", SEARCH_TERMS)
def test_search_finds_the_course_terms(site, browser, visits, term):
    word = re.compile(rf"(?<![\w-]){re.escape(term)}(?![\w-])", re.I)
    in_sources = [d for d in PAGES if word.search(source(d).read_text())]
    shown = [d for d in PAGES if word.search(visits(d).facts["text"])]
    if not (in_sources or shown):
        pytest.skip(f"no page of the toc contains {term!r} yet (it will once its chapter is in _toc.yml)")
    page = browser.context.new_page()
    errors = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    before = len(browser.external)
    page.goto(f"{site}search.html?q={quote(term)}", wait_until="load")
    page.wait_for_function(
        "() => /found|did not match/i.test(document.querySelector('#search-results')?.textContent || '')")
    hits = page.evaluate("""() => [...document.querySelectorAll('#search-results ul.search li a')]
                              .map(a => a.getAttribute('href'))""")
    page.close()
    assert not browser.external[before:], f"the search page requested other hosts: {browser.external[before:]}"
    assert not errors, f"search page console errors: {errors}"
    found = {h.split("#")[0].removesuffix(".html") for h in hits}
    assert found, f"search for {term!r} found nothing; it occurs in {sorted(set(in_sources + shown))}"
    missing = [d for d in shown if d not in found]
    assert not missing, f"search for {term!r} misses pages that show it: {missing} (found {sorted(found)})"


def test_every_released_problem_set_is_linked(visits):
    """Every released notebook is listed on the problem-sets page with launch links that open
    that notebook: Colab (and Binder, when _config.yml sets a BinderHub) on the repository and
    branch of _config.yml."""
    if "book/problem_sets" not in PAGES:
        pytest.fail("book/problem_sets is not in _toc.yml")
    facts = visits("book/problem_sets").facts
    released = sorted(p.relative_to(ROOT).as_posix() for p in ROOT.glob("exercises/*/*.ipynb"))
    assert released, "no released notebook in exercises/"
    missing = [nb for nb in released if nb not in facts["text"]]
    assert not missing, f"the problem-sets page does not list {missing}"

    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    repo_url = config["repository"]["url"].rstrip("/")
    branch = config["repository"].get("branch", "main")
    org, repo = repo_url.split("/")[-2:]
    binder = config.get("launch_buttons", {}).get("binderhub_url", "").rstrip("/")
    links = {(a["text"], a["href"]) for a in facts["links"]}
    expected = []
    for nb in released:
        expected.append(("Colab", f"https://colab.research.google.com/github/{org}/{repo}/blob/{branch}/{nb}"))
        if binder:
            expected.append(("Binder", f"{binder}/v2/gh/{org}/{repo}/{branch}?urlpath=lab/tree/{nb}"))
    absent = [e for e in expected if e not in links]
    launch = sorted(link for link in links if link[0] in ("Colab", "Binder"))
    assert not absent, f"launch links missing from the problem-sets page: {absent}; it has {launch}"


def test_root_redirects_to_the_preface(site, browser):
    page = browser.context.new_page()
    page.goto(site, wait_until="load")
    page.wait_for_url(re.compile(re.escape(PAGES[0]) + r"\.html$"))
    page.close()
