"""Accessible bibliography markup.

docutils 0.21 writes a bibliography as ``<div role="list" class="citation-list">`` whose entries
carry ``role="doc-biblioentry"``: a role that ARIA 1.2 deprecated and that axe-core does not
accept inside a list ("aria-required-children", a serious violation on the references page).
This gives the entries ``role="listitem"``, which keeps the list semantics screen readers use.
"""


def _listitems(app, pagename, templatename, context, doctree):
    body = context.get("body")
    if body and 'role="doc-biblioentry"' in body:
        context["body"] = body.replace('role="doc-biblioentry"', 'role="listitem"')


def setup(app):
    app.connect("html-page-context", _listitems)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
