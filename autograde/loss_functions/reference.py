"""PyTorch reference for the `loss_functions` assignment (float64 on the reference device)."""
from __future__ import annotations

import numpy as np

from ..device import numpy, tensor, torch


def mse_loss(pred: np.ndarray, target: np.ndarray) -> float:
    """torch.nn.functional.mse_loss: mean of (pred - target)**2 over all elements."""
    F = torch().nn.functional
    return float(F.mse_loss(tensor(pred), tensor(target)))


def mse_loss_grad(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    """d mse_loss / d pred by autograd; same shape as pred."""
    p = tensor(pred, requires_grad=True)
    torch().nn.functional.mse_loss(p, tensor(target)).backward()
    return numpy(p.grad)


def cross_entropy_loss(logits: np.ndarray, labels: np.ndarray) -> float:
    """torch.nn.functional.cross_entropy: mean over the batch; logits (N, C), labels (N,)."""
    return float(torch().nn.functional.cross_entropy(tensor(logits), tensor(labels)))


def cross_entropy_loss_grad(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """d cross_entropy_loss / d logits by autograd; shape (N, C)."""
    z = tensor(logits, requires_grad=True)
    torch().nn.functional.cross_entropy(z, tensor(labels)).backward()
    return numpy(z.grad)
