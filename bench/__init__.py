"""Benchmarks (not timed tests): `python -m bench {book,bn,grading,gpu}`; figures go to bench/results/."""


def solution_namespace(assignment: str) -> dict:
    """What an assignment's solution notebooks define, merged (their student cells, run here by
    autograde.notebook.namespace_of)."""
    from autograde.notebook import namespace_of
    from autograde.paths import solution_notebooks

    ns: dict = {}
    for nb in solution_notebooks(assignment):
        ns.update(namespace_of(nb))
    return ns
