"""Mistake catalog for `gradient_descent`."""
from . import Mistake

# The solution's SGD with one line changed; {init} and {update} are filled per entry.
_SGD = '''
class SGD:
    def __init__(self, params, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False):
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        self.params = params
        self.lr, self.momentum, self.dampening = lr, momentum, dampening
        self.weight_decay, self.nesterov = weight_decay, nesterov
        self.buffers = [None] * len(params)

    def step(self, grads):
        for i, (p, g) in enumerate(zip(self.params, grads)):
            d = g + self.weight_decay * p
            if self.momentum:
                b = self.buffers[i]
                b = d.copy() if b is None else self.momentum * b + (1 - self.dampening) * d
                self.buffers[i] = b
                d = d + self.momentum * b if self.nesterov else b
            p -= self.lr * d
'''


def sgd(old: str, new: str) -> str:
    assert old in _SGD, old
    return _SGD.replace(old, new)


MISTAKES = [
    # --- minibatch_indices -----------------------------------------------------------------
    Mistake("batches_not_shuffled", '''
def minibatch_indices(n, batch_size, rng):
    idx = np.arange(n)
    return [idx[i:i + batch_size] for i in range(0, n, batch_size)]
''', "minibatch_indices", "do not shuffle"),
    Mistake("batches_drop_last", '''
def minibatch_indices(n, batch_size, rng):
    perm = rng.permutation(n)
    return [perm[k * batch_size:(k + 1) * batch_size] for k in range(n // batch_size)]
''', "minibatch_indices", "drop the last, shorter batch"),
    Mistake("batches_global_rng", '''
def minibatch_indices(n, batch_size, rng):
    perm = np.random.permutation(n)
    return [perm[i:i + batch_size] for i in range(0, n, batch_size)]
''', "minibatch_indices", "does not come from the rng argument"),
    Mistake("batches_one_permutation", '''
_perms = {}
def minibatch_indices(n, batch_size, rng):
    if n not in _perms:
        _perms[n] = rng.permutation(n)
    perm = _perms[n]
    return [perm[i:i + batch_size] for i in range(0, n, batch_size)]
''', "minibatch_indices", "reuse one permutation for every epoch"),
    Mistake("batches_array_split", '''
def minibatch_indices(n, batch_size, rng):
    return np.array_split(rng.permutation(n), int(np.ceil(n / batch_size)))
''', "minibatch_indices", "array_split"),
    Mistake("batches_sorted_within", '''
def minibatch_indices(n, batch_size, rng):
    perm = rng.permutation(n)
    return [np.sort(perm[i:i + batch_size]) for i in range(0, n, batch_size)]
''', "minibatch_indices", "sort the indices within each batch"),
    Mistake("batches_choice", '''
def minibatch_indices(n, batch_size, rng):
    perm = rng.choice(n, size=n, replace=False)
    return [perm[i:i + batch_size] for i in range(0, n, batch_size)]
''', "minibatch_indices", "rng.choice"),
    # --- SGD -------------------------------------------------------------------------------
    Mistake("sgd_rebind_local", sgd("p -= self.lr * d", "p = p - self.lr * d"),
            "sgd_plain", "rebinds the array instead of changing it in place"),
    Mistake("sgd_rebind_list_element", sgd("p -= self.lr * d", "self.params[i] = p - self.lr * d"),
            "sgd_plain", "rebinds the array instead of changing it in place"),
    Mistake("sgd_dampening_without_momentum",
            sgd("            if self.momentum:\n", "            d = (1 - self.dampening) * d\n            if self.momentum:\n"),
            "sgd_plain", "dampening only acts on the momentum buffer"),
    Mistake("sgd_first_step_dampened", sgd("b = d.copy() if b is None else self.momentum * b + (1 - self.dampening) * d",
                                           "b = self.momentum * (0 if b is None else b) + (1 - self.dampening) * d"),
            "sgd_momentum", "first momentum step must not be dampened"),
    Mistake("sgd_dampening_weight", sgd("(1 - self.dampening) * d", "self.dampening * d"),
            "sgd_momentum", "wrong weight (τ instead of 1 - τ)"),
    Mistake("sgd_moving_average", sgd("b = d.copy() if b is None else self.momentum * b + (1 - self.dampening) * d",
                                      "b = self.momentum * (0 if b is None else b) + (1 - self.momentum) * d"),
            "sgd_momentum", "moving-average form"),
    Mistake("sgd_shared_buffer", '''
class SGD:
    def __init__(self, params, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False):
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("bad nesterov")
        self.params, self.lr, self.momentum, self.dampening = params, lr, momentum, dampening
        self.weight_decay, self.nesterov = weight_decay, nesterov
        self.velocity = None

    def step(self, grads):
        for p, g in zip(self.params, grads):
            g = g + self.weight_decay * p
            if self.momentum:
                if self.velocity is None:
                    self.velocity = g.copy()
                else:
                    self.velocity = self.momentum * self.velocity + (1 - self.dampening) * g
                g = g + self.momentum * self.velocity if self.nesterov else self.velocity
            p -= self.lr * g
''', "sgd_momentum", "momentum buffer shared across parameters"),
    Mistake("sgd_buffer_per_shape", sgd("b = self.buffers[i]", "b = self.buffers.get(p.shape)").replace(
        "self.buffers[i] = b", "self.buffers[p.shape] = b").replace("self.buffers = [None] * len(params)", "self.buffers = {}"),
            "sgd_momentum", "momentum buffer shared across parameters of the same shape"),
    Mistake("sgd_one_buffer_restarted", sgd("b = self.buffers[i]", "b = getattr(self, 'buf', None)").replace(
        "b = d.copy() if b is None else", "b = d.copy() if b is None or b.shape != d.shape else").replace(
        "self.buffers[i] = b", "self.buf = b"),
            "sgd_momentum", "you keep ONE buffer and start it afresh"),
    Mistake("sgd_dampening_ignored", sgd("(1 - self.dampening) * d", "d"), "sgd_momentum", "dampening is ignored"),
    Mistake("sgd_buffer_is_the_gradient", sgd("d = g + self.weight_decay * p",
                                              "d = g + self.weight_decay * p if self.weight_decay else g").replace(
        "b = d.copy() if b is None", "b = d if b is None"),
            "sgd_momentum", "momentum buffer is the gradient array itself"),
    Mistake("sgd_buffer_updated_in_place", '''
class SGD:
    def __init__(self, params, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False):
        self.params, self.lr, self.momentum, self.dampening = params, lr, momentum, dampening
        self.weight_decay, self.nesterov = weight_decay, nesterov
        self.bufs = [None] * len(params)

    def step(self, grads):
        for i, (p, g) in enumerate(zip(self.params, grads)):
            if self.weight_decay:
                g = g + self.weight_decay * p
            if self.momentum:
                if self.bufs[i] is None:
                    self.bufs[i] = g
                else:
                    self.bufs[i] *= self.momentum
                    self.bufs[i] += (1 - self.dampening) * g
                g = g + self.momentum * self.bufs[i] if self.nesterov else self.bufs[i]
            p -= self.lr * g
''', "sgd_momentum", "passed at an EARLIER step"),
    Mistake("sgd_nesterov_ignored", sgd("d = d + self.momentum * b if self.nesterov else b", "d = b"),
            "sgd_nesterov", "Nesterov uses g + μ·b, not b"),
    Mistake("sgd_weight_decay_after_momentum", sgd("d = g + self.weight_decay * p", "d = np.asarray(g)").replace(
        "            p -= self.lr * d", "            p -= self.lr * (d + self.weight_decay * p)"),
            "sgd_weight_decay", "weight decay must be added to the gradient before momentum"),
    Mistake("sgd_weight_decay_in_place_on_grad", sgd("d = g + self.weight_decay * p",
                                                     "g += self.weight_decay * p\n            d = g"),
            "sgd_weight_decay", "changed the gradient arrays it was given"),
    Mistake("sgd_weight_decay_doubled", sgd("d = g + self.weight_decay * p", "d = g + 2 * self.weight_decay * p"),
            "sgd_weight_decay", "2λθ"),
    Mistake("sgd_no_nesterov_check", sgd('''        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
''', ""), "sgd_arguments", "must raise ValueError"),
    Mistake("sgd_uses_torch", '''
import torch
class SGD:
    def __init__(self, params, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False):
        self.params = params
        self.tensors = [torch.from_numpy(p) for p in params]  # share memory with the arrays
        self.opt = torch.optim.SGD(self.tensors, lr=lr, momentum=momentum, dampening=dampening,
                                   weight_decay=weight_decay, nesterov=nesterov)

    def step(self, grads):
        for t, g in zip(self.tensors, grads):
            t.grad = torch.from_numpy(np.array(g))
        self.opt.step()
''', "sgd_plain", "numpy exercise", flag="forbidden"),
    # --- train -----------------------------------------------------------------------------
    Mistake("train_batches_once", '''
def train(params, loss_and_grad, X, y, optimizer, batch_size, epochs, rng):
    losses = []
    batches = minibatch_indices(len(X), batch_size, rng)
    for _ in range(epochs):
        for idx in batches:
            loss, grads = loss_and_grad(params, X[idx], y[idx])
            optimizer.step(grads)
            losses.append(loss)
    return losses
''', "train", "calls minibatch_indices once for all epochs"),
    Mistake("train_mean_per_epoch", '''
def train(params, loss_and_grad, X, y, optimizer, batch_size, epochs, rng):
    history = []
    for _ in range(epochs):
        losses = []
        for idx in minibatch_indices(len(X), batch_size, rng):
            loss, grads = loss_and_grad(params, X[idx], y[idx])
            optimizer.step(grads)
            losses.append(loss)
        history.append(float(np.mean(losses)))
    return history
''', "train", "mean loss per epoch instead of every update"),
    Mistake("train_losses_times_batch_size", '''
def train(params, loss_and_grad, X, y, optimizer, batch_size, epochs, rng):
    losses = []
    for _ in range(epochs):
        for idx in minibatch_indices(len(X), batch_size, rng):
            loss, grads = loss_and_grad(params, X[idx], y[idx])
            optimizer.step(grads)
            losses.append(loss * len(idx))
    return losses
''', "train", "multiplied by its batch size"),
    Mistake("train_whole_data", '''
def train(params, loss_and_grad, X, y, optimizer, batch_size, epochs, rng):
    losses = []
    for _ in range(epochs):
        for idx in minibatch_indices(len(X), batch_size, rng):
            loss, grads = loss_and_grad(params, X, y)
            optimizer.step(grads)
            losses.append(loss)
    return losses
''', "train", "whole data set"),
    Mistake("train_own_rng", '''
def train(params, loss_and_grad, X, y, optimizer, batch_size, epochs, rng):
    losses = []
    gen = np.random.default_rng(0)
    for _ in range(epochs):
        for idx in minibatch_indices(len(X), batch_size, gen):
            loss, grads = loss_and_grad(params, X[idx], y[idx])
            optimizer.step(grads)
            losses.append(loss)
    return losses
''', "train", "use the rng you were given"),
    Mistake("train_drops_last_batch", '''
def train(params, loss_and_grad, X, y, optimizer, batch_size, epochs, rng):
    losses = []
    for _ in range(epochs):
        perm = rng.permutation(len(X))
        for k in range(len(X) // batch_size):
            idx = perm[k * batch_size:(k + 1) * batch_size]
            loss, grads = loss_and_grad(params, X[idx], y[idx])
            optimizer.step(grads)
            losses.append(loss)
    return losses
''', "train", "drop the last, shorter batch"),
    Mistake("train_new_rng_each_epoch", '''
def train(params, loss_and_grad, X, y, optimizer, batch_size, epochs, rng):
    losses = []
    for _ in range(epochs):
        for idx in minibatch_indices(len(X), batch_size, np.random.default_rng(0)):
            loss, grads = loss_and_grad(params, X[idx], y[idx])
            optimizer.step(grads)
            losses.append(loss)
    return losses
''', "train", "passes a new generator each epoch (not the rng given to train)"),
    Mistake("train_never_calls_minibatch_indices", '''
def train(params, loss_and_grad, X, y, optimizer, batch_size, epochs, rng):
    losses = []
    for _ in range(epochs):
        for i in range(0, len(X), batch_size):
            idx = np.arange(i, min(i + batch_size, len(X)))
            loss, grads = loss_and_grad(params, X[idx], y[idx])
            optimizer.step(grads)
            losses.append(loss)
    return losses
''', "train", "never calls minibatch_indices"),
]
