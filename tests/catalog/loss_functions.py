"""Mistake catalog for `loss_functions`."""
from . import Mistake

MISTAKES = [
    Mistake("mse_sum", '''
def mse_loss(pred, target):
    return float(np.sum((pred - target) ** 2))
''', "mse_loss", "SUM of the squared errors"),
    Mistake("mse_half", '''
def mse_loss(pred, target):
    return 0.5 * float(np.mean((pred - target) ** 2))
''', "mse_loss", "1/2"),
    Mistake("mse_batch_only", '''
def mse_loss(pred, target):
    return float(np.sum((pred - target) ** 2) / len(pred))
''', "mse_loss", "batch size N only"),
    Mistake("mse_inplace", '''
def mse_loss(pred, target):
    pred -= target
    return float(np.mean(pred ** 2))
''', "mse_loss", "in place"),
    Mistake("mse_grad_no_two", '''
def mse_loss_grad(pred, target):
    return (pred - target) / pred.size
''', "mse_loss_grad", "factor 2"),
    Mistake("mse_grad_sign", '''
def mse_loss_grad(pred, target):
    return 2 * (target - pred) / pred.size
''', "mse_loss_grad", "sign is flipped"),
    Mistake("ce_naive_overflow", '''
def cross_entropy_loss(logits, labels):
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return float(-np.mean(np.log(p[np.arange(len(labels)), labels])))
''', "cross_entropy_loss", "Subtract each row's maximum"),
    Mistake("ce_softmax_over_batch", '''
def cross_entropy_loss(logits, labels):
    z = logits - logits.max(axis=1, keepdims=True)
    p = np.exp(z) / np.exp(z).sum(axis=0)
    return float(-np.mean(np.log(p[np.arange(len(labels)), labels])))
''', "cross_entropy_loss", "sum over the batch axis 0"),
    Mistake("ce_naive_logsumexp", '''
def cross_entropy_loss(logits, labels):
    lse = np.log(np.exp(logits).sum(axis=1))
    return float(np.mean(lse - logits[np.arange(len(labels)), labels]))
''', "cross_entropy_loss", "log(sum(exp(z))) is inf"),
    Mistake("ce_log_underflow", '''
def cross_entropy_loss(logits, labels):
    z = logits - logits.max(axis=1, keepdims=True)
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    return float(-np.mean(np.log(p[np.arange(len(labels)), labels])))
''', "cross_entropy_loss", "underflowed to 0"),
    Mistake("ce_global_max", '''
def cross_entropy_loss(logits, labels):
    m = logits.max()
    lse = m + np.log(np.exp(logits - m).sum(1))
    return float(np.mean(lse - logits[np.arange(len(labels)), labels]))
''', "cross_entropy_loss", "one maximum over the whole batch"),
    Mistake("ce_global_max_softmax", '''
def cross_entropy_loss(logits, labels):
    e = np.exp(logits - np.max(logits))
    p = e / e.sum(axis=1, keepdims=True)
    return float(-np.mean(np.log(p[np.arange(len(labels)), labels])))
''', "cross_entropy_loss", "one maximum over the whole batch"),
    Mistake("ce_sum", '''
def cross_entropy_loss(logits, labels):
    z = logits - logits.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return float(-np.sum(logp[np.arange(len(labels)), labels]))
''', "cross_entropy_loss", "SUM over the batch"),
    Mistake("ce_log_softmax_eps", '''
def cross_entropy_loss(logits, labels):
    z = logits - logits.max(axis=1, keepdims=True)
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    return float(-np.mean(np.log(p[np.arange(len(labels)), labels] + 1e-12)))
''', "cross_entropy_loss", "log of softmax probabilities"),
    Mistake("ce_returns_vector", '''
def cross_entropy_loss(logits, labels):
    z = logits - logits.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return -logp[np.arange(len(labels)), labels]
''', "cross_entropy_loss", "forget to average"),
    Mistake("ce_grad_no_mean", '''
def cross_entropy_loss_grad(logits, labels):
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    p = e / e.sum(axis=1, keepdims=True)
    p[np.arange(len(labels)), labels] -= 1
    return p
''', "cross_entropy_loss_grad", "did not divide by the batch size"),
    Mistake("ce_grad_no_onehot", '''
def cross_entropy_loss_grad(logits, labels):
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True) / len(labels)
''', "cross_entropy_loss_grad", "one-hot term is missing"),
    Mistake("ce_grad_torch", '''
import torch
def cross_entropy_loss_grad(logits, labels):
    z = torch.tensor(logits, requires_grad=True)
    torch.nn.functional.cross_entropy(z, torch.tensor(labels).long()).backward()
    return z.grad
''', "cross_entropy_loss_grad", "deep-learning framework", flag="forbidden"),
]
