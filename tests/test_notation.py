"""One notation across the book and the problem sets (book/notation.md). Where a symbol's
definition can be recognised in the text, the chapters and the notebooks' markdown cells must
define it as the notation page does; each rule below names the row of the page it checks."""
import re

import pytest

from autograde.notebook import read
from autograde.paths import ROOT

PAGE = ROOT / "book" / "notation.md"
CHAPTERS = {p.stem: p for p in (ROOT / "book").glob("*.md")}
NOTEBOOKS = sorted((ROOT / "solutions").glob("*/*.ipynb"))


def markdown(nb):
    return "\n\n".join(c.source for c in read(nb).cells if c.cell_type == "markdown")


def prose(md_text):
    """A chapter without its code cells: symbols in code are code, not notation."""
    return re.sub(r"```\{code-cell\}.*?```", "", md_text, flags=re.S)


def texts(names=None, notebooks=None):
    out = {f"book/{k}.md": prose(p.read_text()) for k, p in CHAPTERS.items()
           if k != "notation" and (names is None or k in names)}
    out.update({str(nb.relative_to(ROOT)): markdown(nb) for nb in NOTEBOOKS
                if notebooks is None or nb.parent.name in notebooks})
    return out


def math_spans(text):
    return re.findall(r"\$\$(.+?)\$\$|\$(.+?)\$", text, flags=re.S)


# The page's rows that are checked: (symbol as the page writes it, definition the page gives).
CHECKED_ROWS = [
    ("$s = \\sqrt{v + \\epsilon}$", "never its inverse"),
    ("$\\rho$", "the weight of the **new** value"),
    ("$m$", "the batch size for `BatchNorm1d`"),
    ("$C$", "the chapters do not use $K$ for it"),
    ("$\\eta$", "learning rate"),
    ("$\\mu$", "momentum of `torch.optim.SGD`"),
    ("$\\tau$", "dampening"),
    ("$\\lambda$", "weight decay"),
]


@pytest.mark.parametrize("symbol, text", CHECKED_ROWS)
def test_the_notation_page_states_the_checked_definitions(symbol, text):
    page = PAGE.read_text()
    row = next((line for line in page.splitlines() if line.startswith(f"| {symbol} |")), None)
    assert row is not None, f"book/notation.md has no row for {symbol}"
    assert text in row and "*checked*" in row, row


def test_s_is_the_standard_deviation_that_divides():
    """s = sqrt(v + eps) (or sqrt(sigma^2 + eps)), never (sigma^2 + eps)^(-1/2); xhat = c / s."""
    found = 0
    for name, text in texts(names={"batch_norm"}, notebooks={"batch_norm"}).items():
        for span in math_spans(text):
            span = "".join(span)
            for m in re.finditer(r"(?<![\\\w])s(?:_j|_c)?\s*=\s*([^,;$]*)", span):
                rhs = m.group(1).replace(" ", "")
                found += 1
                assert rhs.startswith("\\sqrt{"), f"{name}: s is defined as {m.group(0)!r}; the notation page says s = \\sqrt{{v + \\epsilon}}"
                assert "^{-1/2}" not in rhs and "^{-\\frac12}" not in rhs, f"{name}: {m.group(0)!r}"
            for m in re.finditer(r"\\hat x(?:_\w+|_\{\w+\})?\s*=\s*([^,;$]*)", span):
                assert not re.match(r"\s*(x_c|c)\s*\\?,?\s*s\b", m.group(1)), f"{name}: {m.group(0)!r} multiplies by s"
    assert found >= 3, f"expected the chapter and the notebook to define s, found {found} definitions"


def test_the_bn_momentum_is_rho_and_m_counts_values():
    for name, text in texts(names={"batch_norm"}, notebooks={"batch_norm"}).items():
        for span in math_spans(text):
            span = "".join(span)
            assert not re.search(r"\(1\s*-\s*m\)", span), f"{name}: (1-m) uses m for the momentum; it is \\rho"
            assert not re.search(r"\\frac\{N\}\{N-1\}", span), f"{name}: the Bessel factor is m/(m-1) (m values per statistic)"
    nb = markdown(ROOT / "solutions" / "batch_norm" / "batch_norm.ipynb")
    assert "(1-\\rho)" in nb and "\\frac{m}{m-1}" in nb


def test_no_chapter_writes_N_for_the_bn_count():
    text = prose(CHAPTERS["batch_norm"].read_text())
    assert "writing $N$ for" not in text
    closed = re.search(r":label: bn-eq-closed\n(.*?)```", text, re.S).group(1)
    assert re.search(r"\\frac\{\\gamma\}\{m\s*s\}", closed), closed


def test_classes_are_C():
    for name, text in texts().items():
        for span in math_spans(text):
            span = "".join(span)
            assert not re.search(r"\\ln K\b|1/K\b|\\tfrac1K\b|\bK\s*=|\\times K\b|\{K\^2\}", span), \
                f"{name}: ${span.strip()[:60]}$ uses K for the number of classes; the notation page uses C"


@pytest.mark.parametrize("name, text", texts(names={"gradient_descent"}, notebooks={"gradient_descent"}).items())
def test_sgd_hyperparameters_have_the_same_symbols(name, text):
    """The chapter and the notebook state torch.optim.SGD's update with the same letters."""
    flat = " ".join(text.split())
    for word, symbol in (("learning rate", "\\eta"), ("momentum", "\\mu"), ("dampening", "\\tau"),
                         ("weight decay", "\\lambda")):
        assert f"{word} ${symbol}$" in flat, f"{name} does not define {word} as ${symbol}$"
