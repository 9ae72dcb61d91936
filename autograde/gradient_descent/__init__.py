"""Assignment `gradient_descent`: mini-batches, torch.optim.SGD in numpy (momentum, dampening,
Nesterov, weight decay) and the training loop.

Notebook use: ``from autograde.gradient_descent import check, validate`` then ``check("sgd_momentum")``.
"""


def __getattr__(name: str):
    """``check`` and ``validate`` import the checks (and torch) only when asked for: the grader's
    process for numpy exercises imports this package's drivers without them."""
    if name in ("check", "validate"):
        from ..core import make_check
        from .checks import TESTS

        check = globals()["check"] = make_check(TESTS, "gradient_descent")
        globals()["validate"] = check.validate  # validate(): the grader's checks on the saved notebook
        return globals()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
