"""Assignment `gradient_descent`: mini-batches, torch.optim.SGD in numpy (momentum, dampening,
Nesterov, weight decay) and the training loop.

Notebook use: ``from autograde.gradient_descent import check, validate`` then ``check("sgd_momentum")``.
"""
from ..core import make_check
from .checks import TESTS

check = make_check(TESTS, "gradient_descent")
validate = check.validate  # validate(): the grader's checks on the saved notebook, from a cell
