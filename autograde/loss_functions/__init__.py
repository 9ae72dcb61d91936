"""Assignment `loss_functions`: MSE and softmax cross-entropy and their gradients, in numpy.

Notebook use: ``from autograde.loss_functions import check, validate`` then ``check("mse_loss")``.
"""
from .. import lazy_check

__getattr__ = lazy_check("loss_functions")  # check and validate, on first use
