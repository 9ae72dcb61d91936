"""Benchmarks (not timed tests): `python -m bench {book,bn,norm,grading,gpu}`; figures go to bench/results/."""


def solution_namespace(assignment: str) -> dict:
    """What an assignment's solution notebooks define (their student cells, run in this process)."""
    from autograde.notebook import merged_namespace
    from autograde.paths import solution_notebooks

    return merged_namespace(solution_notebooks(assignment))
