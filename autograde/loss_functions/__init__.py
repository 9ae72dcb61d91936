"""Assignment `loss_functions`: MSE and softmax cross-entropy and their gradients, in numpy.

Notebook use: ``from autograde.loss_functions import check`` then ``check("mse_loss")``.
"""
from ..core import make_check
from .checks import TESTS

check = make_check(TESTS, "loss_functions")
