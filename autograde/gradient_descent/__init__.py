"""Assignment `gradient_descent`: mini-batches, torch.optim.SGD in numpy (momentum, dampening,
Nesterov, weight decay) and the training loop.

Notebook use: ``from autograde.gradient_descent import check, validate`` then ``check("sgd_momentum")``.
"""
from .. import lazy_check

__getattr__ = lazy_check("gradient_descent")  # check and validate, on first use
