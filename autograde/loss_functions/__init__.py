"""Assignment `loss_functions`: MSE and softmax cross-entropy and their gradients, in numpy.

Notebook use: ``from autograde.loss_functions import check, validate`` then ``check("mse_loss")``.
"""
from ..core import make_check
from .checks import TESTS

check = make_check(TESTS, "loss_functions")
validate = check.validate  # validate(): the grader's checks on the saved notebook, from a cell
