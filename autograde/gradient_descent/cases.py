"""Input cases for `gradient_descent`'s checks, drawn from each test's seeded ``ctx.rng``; the
visible cases first, then the hidden ones when ``ctx.hidden``. Each case names itself in words.

The visible cases already hold the inputs that expose the usual mistakes: n not a multiple of
batch_size (the short last batch), two epochs from one generator (reshuffling), batch_size 1 and
n; several parameter arrays, two of the same shape (a momentum buffer shared across parameters),
dampening with and without momentum, gradient arrays refilled in place between steps as PyTorch
refills ``p.grad`` (a momentum buffer that is the gradient array itself), 7 steps per trajectory
(the first, undampened momentum step and the later ones).
"""
from __future__ import annotations

STEPS = 7  # per visible trajectory: the first (undampened) momentum step and six more


# ---------------------------------------------------------------------------------------------
# minibatch_indices
# ---------------------------------------------------------------------------------------------
def batch_cases(ctx):
    """(description, n, batch_size, calls); the seed of the generator is drawn per case."""
    r = ctx.rng
    b = int(r.integers(3, 8))
    n = int(r.integers(4, 8)) * b + int(r.integers(1, b - 1))  # remainder <= b - 2: not a near-equal split
    yield f"n = {n}, batch_size = {b} (the last batch has {n % b}), two epochs from one rng", n, b, 2
    n = int(r.integers(5, 12))
    yield f"batch_size = 1 (stochastic gradient descent), n = {n}, two epochs", n, 1, 2
    n = int(r.integers(6, 15))
    yield f"batch_size = n = {n} (full-batch gradient descent: one batch, still shuffled), two epochs", n, n, 2
    b = int(r.integers(2, 6))
    n = int(r.integers(3, 7)) * b
    yield f"n = {n}, a multiple of batch_size = {b}, three epochs", n, b, 3
    if ctx.hidden:
        yield "n = 1000, batch_size = 64, three epochs", 1000, 64, 3
        yield "n = 1, batch_size = 1", 1, 1, 2
        n = int(r.integers(10, 30))
        yield f"batch_size = n - 1 = {n - 1} (a last batch of one)", n, n - 1, 2



# ---------------------------------------------------------------------------------------------
# SGD: {"desc", "params", "grads" ([step][i]), "hyper" (SGD's keyword arguments), "reuse"}
# ---------------------------------------------------------------------------------------------
def shapes3(r, big=False):
    """Three parameter arrays: a weight matrix, a bias and a second matrix of the first's shape."""
    d, k = (int(r.integers(10, 30)), int(r.integers(5, 15))) if big else (int(r.integers(2, 6)), int(r.integers(2, 5)))
    return [(d, k), (k,), (d, k)]


def sgd_case(r, desc, hyper, steps=STEPS, reuse=False, big=False, shapes=None):
    shapes = shapes or shapes3(r, big)
    params = [r.normal(size=s) for s in shapes]
    grads = [[r.normal(size=s) for s in shapes] for _ in range(steps)]
    return {"desc": f"{desc}: SGD(params, {show(hyper)}), params of shapes {shapes}, {steps} steps", "params": params,
            "grads": grads, "hyper": hyper, "reuse": reuse}


def show(hyper: dict) -> str:
    """Keyword arguments as they would be written: lr=0.123, nesterov=True."""
    return ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in hyper.items())


def lr(r):
    return float(r.uniform(0.05, 0.3))


def mu(r):
    """momentum in [0.75, 0.95]: far from every dampening drawn below and from 1 - dampening."""
    return float(r.uniform(0.75, 0.95))


def tau(r):
    return float(r.uniform(0.3, 0.6))


def wd(r):
    return float(r.uniform(0.05, 0.3))


def sgd_plain_cases(ctx):
    r = ctx.rng
    yield sgd_case(r, "plain SGD", {"lr": lr(r)})
    yield sgd_case(r, "dampening without momentum (PyTorch ignores it)", {"lr": lr(r), "dampening": tau(r)})
    if ctx.hidden:
        yield sgd_case(r, "lr = 1, larger arrays", {"lr": 1.0}, steps=10, big=True)
        yield sgd_case(r, "a single scalar-like parameter", {"lr": lr(r)}, shapes=[(1,)])


def sgd_momentum_cases(ctx):
    r = ctx.rng
    yield sgd_case(r, "momentum", {"lr": lr(r), "momentum": mu(r)})
    yield sgd_case(r, "momentum with dampening", {"lr": lr(r), "momentum": mu(r), "dampening": tau(r)})
    yield sgd_case(r, "momentum, the same gradient arrays refilled before every step (as PyTorch refills p.grad)",
                   {"lr": lr(r), "momentum": mu(r)}, reuse=True)
    if ctx.hidden:
        yield sgd_case(r, "momentum 0.99 with dampening 0.9, larger arrays",
                       {"lr": 0.05, "momentum": 0.99, "dampening": 0.9}, steps=10, big=True)
        yield sgd_case(r, "dampening = 1 (after the first step the buffer only decays)",
                       {"lr": lr(r), "momentum": mu(r), "dampening": 1.0})
        yield sgd_case(r, "momentum with dampening, gradient arrays refilled",
                       {"lr": lr(r), "momentum": mu(r), "dampening": tau(r)}, reuse=True)


def sgd_nesterov_cases(ctx):
    r = ctx.rng
    yield sgd_case(r, "Nesterov momentum", {"lr": lr(r), "momentum": mu(r), "nesterov": True})
    yield sgd_case(r, "Nesterov momentum, gradient arrays refilled", {"lr": lr(r), "momentum": mu(r), "nesterov": True},
                   reuse=True)
    if ctx.hidden:
        yield sgd_case(r, "Nesterov momentum 0.99, larger arrays", {"lr": 0.05, "momentum": 0.99, "nesterov": True},
                       steps=10, big=True)
        yield sgd_case(r, "Nesterov momentum with weight decay",
                       {"lr": lr(r), "momentum": mu(r), "weight_decay": wd(r), "nesterov": True})


def sgd_weight_decay_cases(ctx):
    r = ctx.rng
    yield sgd_case(r, "weight decay", {"lr": lr(r), "weight_decay": wd(r)})
    yield sgd_case(r, "weight decay with momentum", {"lr": lr(r), "momentum": mu(r), "weight_decay": wd(r)})
    yield sgd_case(r, "weight decay with momentum and dampening", {"lr": lr(r), "momentum": mu(r),
                                                                   "dampening": tau(r), "weight_decay": wd(r)})
    if ctx.hidden:
        yield sgd_case(r, "weight decay with Nesterov momentum",
                       {"lr": lr(r), "momentum": mu(r), "weight_decay": wd(r), "nesterov": True})
        yield sgd_case(r, "weight decay with momentum, gradient arrays refilled",
                       {"lr": lr(r), "momentum": mu(r), "weight_decay": wd(r)}, reuse=True)
        yield sgd_case(r, "weight decay 1e-4, larger arrays", {"lr": 0.1, "momentum": 0.9, "weight_decay": 1e-4},
                       steps=10, big=True)


def argument_cases(ctx):
    """(SGD's keyword arguments, the exception torch.optim.SGD raises or None)."""
    r = ctx.rng
    lr_, mu_, tau_ = lr(r), mu(r), tau(r)
    yield {"lr": lr_, "nesterov": True}, "ValueError"
    yield {"lr": lr_, "momentum": mu_, "dampening": tau_, "nesterov": True}, "ValueError"
    yield {"lr": lr_, "momentum": mu_, "nesterov": True}, None
    yield {"lr": lr_, "momentum": mu_, "dampening": tau_}, None


# ---------------------------------------------------------------------------------------------
# train
# ---------------------------------------------------------------------------------------------
def train_cases(ctx):
    """{"desc", "model", "params", "X", "y", "hyper", "batch_size", "epochs", "seed"}."""
    r = ctx.rng

    def case(desc, model, n, d, k, b, epochs, hyper):
        X = r.normal(size=(n, d))
        y = r.normal(size=(n, k)) if model == "least_squares" else r.integers(0, k, size=n)
        params = [0.5 * r.normal(size=(d, k)), 0.5 * r.normal(size=k)]
        return {"desc": f"{desc}: {model}, N = {n}, D = {d}, batch_size = {b}, {epochs} epochs, SGD({show(hyper)})",
                "model": model, "params": params, "X": X, "y": y, "hyper": hyper, "batch_size": b, "epochs": epochs,
                "seed": int(r.integers(2**31))}

    b = int(r.integers(4, 8))
    n = int(r.integers(4, 7)) * b + int(r.integers(1, b))
    yield case("mini-batches, the last one shorter", "least_squares", n, int(r.integers(3, 6)), int(r.integers(1, 3)),
               b, 3, {"lr": 0.05})
    yield case("batch_size = 1 (SGD)", "least_squares", int(r.integers(6, 10)), 3, 2, 1, 2, {"lr": 0.05, "momentum": 0.9})
    n = int(r.integers(10, 20))
    yield case("batch_size = N (full batch)", "softmax_regression", n, 4, 3, n, 4, {"lr": 0.5})
    if ctx.hidden:
        yield case("softmax regression", "softmax_regression", int(r.integers(60, 100)), 6, 5, 16, 3,
                   {"lr": 0.2, "momentum": 0.9, "weight_decay": 1e-3, "nesterov": True})
        yield case("momentum with dampening and weight decay", "least_squares", 50, 4, 2, 7, 2,
                   {"lr": 0.05, "momentum": 0.5, "dampening": 0.3, "weight_decay": 0.01})

