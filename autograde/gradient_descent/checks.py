"""Checks for `gradient_descent`: minibatch_indices, the SGD class (against torch.optim.SGD) and the
training loop (against a torch autograd + torch.optim.SGD loop on the same batches).

The inputs are cases.py's (fresh random draws from each test's seeded generator, chosen so that
the usual mistakes show).

SGD is run on the student's side by :func:`drivers.optimizer_steps`, which keeps the arrays it put in
``params`` and reports their values after every step, whether the list's elements were replaced
and whether the gradients it passed were changed. ``train`` gets a reference optimizer and the
reference batching, so that it is graded on the loop alone.

The ``diagnoses`` are what known mistakes compute on the same inputs (:mod:`.mistakes`, numpy);
when the student's whole trajectory matches one, the failure names that mistake.
"""
from __future__ import annotations

import math

import numpy as np

from ..core import FLOAT64, CheckFailure, Opaque, Registry, expect_close
from ..execution import construct
from . import drivers
from .cases import (argument_cases, batch_cases, sgd_momentum_cases, sgd_nesterov_cases, sgd_plain_cases,
                    sgd_weight_decay_cases, show, train_cases)
from .mistakes import BUFFER_IS_GRAD, GRADS_CHANGED, NOT_IN_PLACE, REBIND, SHARED, sgd_mistakes, simulate
from . import reference as ref

TESTS = Registry()

MODEL_TOL = (1e-6, 1e-9)  # a mistake's trajectory "matches" within this (float64, a few steps)


# ---------------------------------------------------------------------------------------------
# minibatch_indices
# ---------------------------------------------------------------------------------------------
def _choice_batches(n, b, seed, calls):
    """What ``rng.choice(n, n, replace=False)`` cut into chunks would give (a different draw)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(calls):
        p = rng.choice(n, n, replace=False)
        out.append([p[i:i + b] for i in range(0, n, b)])
    return out


def _check_structure(batches, n, b, case, call):
    """A list of 1-D integer arrays whose concatenation is a permutation of range(n), in chunks of b."""
    at = f"{case} (call {call})"
    if isinstance(batches, Opaque):
        hint = (" Return a list, not a generator: build it with a list comprehension."
                if "generator" in batches.type_name else "")
        raise CheckFailure(f"minibatch_indices returned a {batches.type_name} on {at}; expected a list of index "
                           f"arrays.{hint}")
    if not isinstance(batches, list):
        raise CheckFailure(f"minibatch_indices returned a {type(batches).__name__} on {at}; expected a list of index "
                           "arrays, one per batch.")
    for k, idx in enumerate(batches):
        if not isinstance(idx, np.ndarray):
            raise CheckFailure(f"batch {k} is a {type(idx).__name__ if not isinstance(idx, Opaque) else idx.type_name} on "
                               f"{at}; each batch must be a numpy array of indices (a slice of the permutation).")
        if idx.dtype.kind not in "iu" or idx.ndim != 1:
            raise CheckFailure(f"batch {k} has dtype {idx.dtype} and shape {idx.shape} on {at}; each batch must be a "
                               "1-D array of integer indices.")
    flat = np.concatenate(batches) if batches else np.zeros(0, dtype=np.int64)
    sizes = [len(idx) for idx in batches]
    want_sizes = [min(b, n - i) for i in range(0, n, b)]
    if not np.array_equal(np.sort(flat), np.arange(n)):
        if n % b and sizes == want_sizes[:-1] and len(np.unique(flat)) == len(flat) and np.all((flat >= 0) & (flat < n)):
            raise CheckFailure(f"minibatch_indices is wrong on {at}: you drop the last, shorter batch. When batch_size "
                               f"does not divide n, the epoch ends with a batch of n % batch_size = {n % b} indices, so "
                               "that every example is seen once per epoch.")
        values, counts = np.unique(flat, return_counts=True)
        what = []
        if np.any(counts > 1):
            what.append(f"{int(np.sum(counts > 1))} indices appear more than once")
        missing = np.setdiff1d(np.arange(n), flat)
        if len(missing):
            what.append(f"{len(missing)} of 0..{n - 1} are missing")
        if np.any((values < 0) | (values >= n)):
            what.append("some are outside 0..n-1")
        raise CheckFailure(f"minibatch_indices is wrong on {at}: every index 0..n-1 must appear exactly once per epoch; "
                           f"in yours {', '.join(what)}. Sample without replacement: cut rng.permutation(n).")
    if sizes != want_sizes:
        split = len(sizes) > 1 and max(sizes) - min(sizes) <= 1
        hint = (" np.array_split makes near-equal pieces; slice perm[i:i + batch_size] instead." if split else "")
        raise CheckFailure(f"minibatch_indices is wrong on {at}: the batches must hold batch_size = {b} indices each, "
                           f"only the last one fewer: sizes {_short(want_sizes)}; yours have sizes {_short(sizes)}.{hint}")
    return flat


def _short(xs, k=8):
    return "[" + ", ".join(map(str, xs[:k])) + (", ...]" if len(xs) > k else "]")


@TESTS.test("minibatch_indices")
def minibatch_indices(student, ctx):
    """One epoch is rng.permutation(n) cut in order into chunks of batch_size (the last shorter);
    consecutive calls with one rng draw consecutive permutations (reshuffling)."""
    for case, n, b, calls in batch_cases(ctx):
        ctx.cases += 1
        seed = int(ctx.rng.integers(2**31))
        got = run(student, drivers.minibatch_calls, n, b, seed, calls, what="minibatch_indices", case=case)
        want = ref.epoch_batches(n, b, seed, calls)
        flats = [_check_structure(g["batches"], n, b, case, k + 1) for k, g in enumerate(got)]
        wflats = [np.concatenate(w) for w in want]
        if all(np.array_equal(f, w) for f, w in zip(flats, wflats)):
            continue
        for k, (f, w) in enumerate(zip(flats, wflats)):
            if np.array_equal(f, np.arange(n)) and not np.array_equal(w, f):
                raise CheckFailure(f"minibatch_indices is wrong on {case} (call {k + 1}): you sort/do not shuffle the "
                                   "indices (they come out as 0, 1, ..., n-1). Cut rng.permutation(n) in order, so every "
                                   "epoch visits the examples in a new random order.")
        same = all(np.array_equal(f, flats[0]) for f in flats)
        if calls > 1 and same and not all(np.array_equal(w, wflats[0]) for w in wflats):
            raise CheckFailure(f"minibatch_indices is wrong on {case}: you reuse one permutation for every epoch (two "
                               "calls with the same rng returned the same batches). Draw a fresh rng.permutation(n) on "
                               "every call: do not cache it, and do not make a new generator from a fixed seed.")
        for k, (g, f, w) in enumerate(zip(got, flats, wflats)):
            if np.array_equal(f, w):
                continue
            at = f"{case} (call {k + 1})"
            if not g["rng_used"]:
                raise CheckFailure(f"minibatch_indices is wrong on {at}: your permutation does not come from the rng "
                                   "argument (its state did not move). Use rng.permutation(n), not np.random.permutation "
                                   "(numpy's global generator) or a generator of your own.")
            wb = want[k]
            if all(np.array_equal(np.sort(x), y) for x, y in zip(g["batches"], [np.sort(z) for z in wb])):
                raise CheckFailure(f"minibatch_indices is wrong on {at}: you sort the indices within each batch. Keep "
                                   "the permutation's order: batch k is perm[k * batch_size:(k + 1) * batch_size].")
            choice = _choice_batches(n, b, seed, calls)[k]
            if np.array_equal(f, np.concatenate(choice)):
                raise CheckFailure(f"minibatch_indices is wrong on {at}: rng.choice(n, n, replace=False) is a different "
                                   "draw from rng.permutation(n); the exercise (and the grader) use rng.permutation(n).")
            raise CheckFailure(f"minibatch_indices is wrong on {at}: the batches are not rng.permutation(n) cut in order "
                               f"(expected batch 0 = {_short(list(wb[0]))}, yours {_short(list(g['batches'][0]))}). Draw "
                               "exactly one rng.permutation(n) per call and take batch k = perm[k*B:(k+1)*B].")


# ---------------------------------------------------------------------------------------------
# SGD: one trajectory per case, against torch.optim.SGD's
# ---------------------------------------------------------------------------------------------
def run(student, driver, *args, what: str, case: str = "", broadcast_hint: str = ""):
    """student.run (whose failures name the student's code ``what``, not the driver), with the case
    and a hint added to a failure."""
    try:
        return student.run(driver, *args, what=what)
    except CheckFailure as exc:  # Forbidden too: keep the type, the grader flags it
        msg = str(exc)
        if case:
            msg += f"\nOn {case}."
        if broadcast_hint and "broadcast" in msg:
            msg += f" Hint: {broadcast_hint}"
        raise type(exc)(msg) from None


def _all_close(got, want, rtol, atol) -> bool:
    return all(g.shape == w.shape and np.allclose(g, w, rtol=rtol, atol=atol) for gs, ws in zip(got, want)
               for g, w in zip(gs, ws))


def check_sgd_case(student, case):
    """Run the student's SGD on one case and compare its trajectory with torch.optim.SGD's."""
    hint = SHARED if case["hyper"].get("momentum") else ""
    res = run(student, drivers.optimizer_steps, "SGD", case["params"], case["grads"], case["hyper"], case["reuse"], what="SGD",
              case=case["desc"], broadcast_hint=hint)
    want = ref.sgd_trajectory(case["params"], case["grads"], **case["hyper"])
    got = res["trajectory"]
    for t in range(len(got)):
        if res["earlier_changed"][t]:
            raise CheckFailure(f"SGD is wrong on {case['desc']}, step {t + 1}: {BUFFER_IS_GRAD}")
        if res["grads_changed"][t]:
            raise CheckFailure(f"SGD is wrong on {case['desc']}, step {t + 1}: {GRADS_CHANGED}")
    if _all_close(got, want, FLOAT64.rtol, FLOAT64.atol):
        return
    t, i = next((t, i) for t in range(len(want)) for i in range(len(want[t]))
                if not np.allclose(got[t][i], want[t][i], rtol=FLOAT64.rtol, atol=FLOAT64.atol))
    where = f"{case['desc']}; params[{i}] after step {t + 1}"
    before = case["params"][i] if t == 0 else got[t - 1][i]
    if res["replaced"][t][i]:
        raise CheckFailure(f"SGD is wrong on {where}: {REBIND}")
    if np.array_equal(got[t][i], before):
        raise CheckFailure(f"SGD is wrong on {where}: {NOT_IN_PLACE}")
    for message, mistake in sgd_mistakes(case).items():
        try:
            model = simulate(case["params"], case["grads"], case["hyper"], mistake, reuse=case["reuse"])
        except ValueError:
            continue
        if _all_close(got, model, *MODEL_TOL):
            raise CheckFailure(f"SGD is wrong on {where} (and the other steps): {message}")
    expect_close(got[t][i], want[t][i], what=f"params[{i}] after step {t + 1}", tol=FLOAT64, case=case["desc"])


def _run_sgd_cases(student, ctx, cases):
    for case in cases:
        ctx.cases += 1
        check_sgd_case(student, case)


# ---------------------------------------------------------------------------------------------
# SGD tests
# ---------------------------------------------------------------------------------------------
@TESTS.test("sgd_plain", functions=("SGD",))
def sgd_plain(student, ctx):
    """SGD without momentum: θ ← θ - lr·g, in place, as torch.optim.SGD (dampening is ignored
    without momentum)."""
    _run_sgd_cases(student, ctx, sgd_plain_cases(ctx))


@TESTS.test("sgd_momentum", functions=("SGD",))
def sgd_momentum(student, ctx):
    """Momentum (b_1 = g, b_t = μ b_(t-1) + (1 - τ) g_t, θ ← θ - lr·b_t), with and without
    dampening, one buffer per parameter, gradient arrays refilled between steps."""
    _run_sgd_cases(student, ctx, sgd_momentum_cases(ctx))


@TESTS.test("sgd_nesterov", functions=("SGD",))
def sgd_nesterov(student, ctx):
    """Nesterov momentum as torch.optim.SGD: θ ← θ - lr (g_t + μ b_t)."""
    _run_sgd_cases(student, ctx, sgd_nesterov_cases(ctx))


@TESTS.test("sgd_weight_decay", functions=("SGD",))
def sgd_weight_decay(student, ctx):
    """Weight decay as torch.optim.SGD: g ← g + λθ before momentum, alone and with momentum."""
    _run_sgd_cases(student, ctx, sgd_weight_decay_cases(ctx))


@TESTS.test("sgd_arguments", functions=("SGD",))
def sgd_arguments(student, ctx):
    """Like torch.optim.SGD, SGD(..., nesterov=True) raises ValueError unless momentum > 0 and
    dampening == 0."""
    hypers, wants = zip(*argument_cases(ctx))
    ctx.cases += len(hypers)
    got = run(student, construct, "SGD", list(hypers), what="SGD")
    for hyper, g, w in zip(hypers, got, wants):
        call = f"SGD([p], {show(hyper)})"
        if w and g != w:
            raise CheckFailure(f"{call} must raise ValueError, as torch.optim.SGD does (Nesterov momentum requires a "
                               f"momentum > 0 and zero dampening); yours {'raised ' + g if g else 'raised nothing'}.")
        if not w and g:
            raise CheckFailure(f"{call} raised {g}; these arguments are valid.")


# ---------------------------------------------------------------------------------------------
# train
# ---------------------------------------------------------------------------------------------
def _check_minibatch_calls(mb, case):
    """train called minibatch_indices(len(X), batch_size, rng) once per epoch, with the rng it was given
    (``mb``: the driver's record of those calls). Called once train's batches are known to be wrong."""
    if mb is None:
        return
    n, b, epochs = len(case["X"]), case["batch_size"], case["epochs"]
    at = case["desc"]
    call = "minibatch_indices(len(X), batch_size, rng)"
    if not mb:
        raise CheckFailure(f"train is wrong on {at}: train never calls minibatch_indices, it makes its batches some other "
                           f"way, and they are not the expected ones. Call {call} at the start of every epoch and loop "
                           "over the batches it returns.")
    if any(not c["given_rng"] for c in mb):
        if len(mb) == epochs and epochs > 1 and all(c["new_rng"] for c in mb):
            raise CheckFailure(f"train is wrong on {at}: train passes a new generator each epoch (not the rng given to "
                               f"train) to minibatch_indices, so the batches are not those of the rng you were given. "
                               f"Use the rng you were given: {call}.")
        raise CheckFailure(f"train is wrong on {at}: train passes minibatch_indices a generator that is not the rng given "
                           f"to train. Use the rng you were given: {call}, once per epoch.")
    if len(mb) == 1 and epochs > 1:
        raise CheckFailure(f"train is wrong on {at}: train calls minibatch_indices once for all epochs, so every "
                           f"epoch reuses the first epoch's batches. Call {call} at the start of every epoch, so the data "
                           "is reshuffled.")
    if len(mb) != epochs:
        raise CheckFailure(f"train is wrong on {at}: train calls minibatch_indices {len(mb)} times for {epochs} epochs; "
                           f"call {call} exactly once at the start of every epoch.")
    bad = next((c for c in mb if c["n"] != n or c["batch_size"] != b), None)
    if bad is not None:
        raise CheckFailure(f"train is wrong on {at}: train calls minibatch_indices(n={bad['n']}, batch_size="
                           f"{bad['batch_size']}, rng); expected n = len(X) = {n} and batch_size = {b}.")


def _check_calls(got, case, batches):
    """loss_and_grad got one call per batch of minibatch_indices(len(X), batch_size, rng), each epoch."""
    n, b, epochs = len(case["X"]), case["batch_size"], case["epochs"]
    nb, total = math.ceil(n / b), math.ceil(n / b) * epochs
    calls = got["calls"]
    at = case["desc"]
    if not calls:
        raise CheckFailure(f"train is wrong on {at}: it never calls loss_and_grad.")
    if b < n and any(len(c) == n for c in calls):
        raise CheckFailure(f"train is wrong on {at}: you pass the whole data set to loss_and_grad, not the batch: call "
                           "loss_and_grad(params, X[idx], y[idx]) for each batch idx.")
    if any(np.any(c < 0) for c in calls):
        raise CheckFailure(f"train is wrong on {at}: loss_and_grad got rows that are not rows of X (changed, reshaped or "
                           "a single row): pass X[idx], with idx the batch's index array.")
    if not all(got["y_ok"]):
        raise CheckFailure(f"train is wrong on {at}: the targets you pass to loss_and_grad are not the batch's targets: "
                           "use y[idx] with the same idx as X[idx].")
    if not all(got["same_params"]):
        raise CheckFailure(f"train is wrong on {at}: call loss_and_grad with the params list you were given (the "
                           "optimizer updates those very arrays in place), not a copy.")
    want = [idx for epoch in batches for idx in epoch]
    if len(calls) == len(want) and all(np.array_equal(c, w) for c, w in zip(calls, want)):
        return
    if n % b and len(calls) == (n // b) * epochs:
        raise CheckFailure(f"train is wrong on {at}: you drop the last, shorter batch of each epoch ({n % b} examples): "
                           "loop over every batch that minibatch_indices returns.")
    _check_minibatch_calls(got.get("minibatch_calls"), case)
    if len(calls) == 2 * total:
        raise CheckFailure(f"train is wrong on {at}: you call loss_and_grad twice per batch. Call it once per batch, "
                           "`loss, grads = loss_and_grad(params, X[idx], y[idx])`, step with grads, record that loss.")
    if len(calls) != total:
        raise CheckFailure(f"train is wrong on {at}: loss_and_grad was called {len(calls)} times; expected one call per "
                           f"batch, ceil(N / batch_size) · epochs = {nb} · {epochs} = {total}.")
    k = next(k for k, (c, w) in enumerate(zip(calls, want)) if not np.array_equal(c, w))
    raise CheckFailure(f"train is wrong on {at}: epoch {k // nb + 1}, batch {k % nb} is not the batch of "
                       f"minibatch_indices(len(X), batch_size, rng) (expected indices {_short(list(want[k]))}, got "
                       f"{_short(list(calls[k]))}). Loop over the batches that minibatch_indices returns, in order, and call "
                       "loss_and_grad(params, X[idx], y[idx]) once for each.")


def _losses_array(losses, case) -> np.ndarray:
    """What train returned as a float array, or a CheckFailure saying what came back instead."""
    at = case["desc"]
    if isinstance(losses, np.ndarray) and losses.ndim == 1:
        losses = list(losses)
    if not isinstance(losses, (list, tuple)):
        kind = losses.type_name if isinstance(losses, Opaque) else type(losses).__name__
        hint = " Return a list, not a generator (no `yield`)." if "generator" in kind else ""
        raise CheckFailure(f"train returned {'None (no return statement?)' if losses is None else 'a ' + kind} on "
                           f"{at}; expected a list of floats, the loss of every update.{hint}")
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) or (isinstance(v, np.ndarray) and v.size == 1)
               for v in losses):
        raise CheckFailure(f"train returned a list whose items are not numbers on {at}; expected the float loss of every "
                           "update.")
    return np.array([float(np.asarray(v).ravel()[0]) if isinstance(v, np.ndarray) else float(v) for v in losses])


def _check_losses(got, want, case, nb, sizes=None):
    """``sizes``: the number of examples in each update's batch, in order (for the diagnoses)."""
    at = case["desc"]
    total, epochs = len(want), case["epochs"]
    per_epoch = want.reshape(epochs, nb) if nb * epochs == total else None
    if len(got) != total:
        if per_epoch is not None and len(got) == epochs:
            if np.allclose(got, per_epoch.mean(axis=1), rtol=1e-6):
                raise CheckFailure(f"train is wrong on {at}: train returns the mean loss per epoch instead of every "
                                   f"update. Return the list of the losses of all {total} updates, in order.")
            if np.allclose(got, per_epoch[:, -1], rtol=1e-6):
                raise CheckFailure(f"train is wrong on {at}: train returns one loss per epoch (the last batch's) instead "
                                   f"of every update. Return the losses of all {total} updates, in order.")
        raise CheckFailure(f"train returned {len(got)} losses on {at}; expected {total}, the loss of every update "
                           f"(ceil(N / batch_size) · epochs).")
    diagnoses = {
        "you record the running mean of the losses; record each update's loss as loss_and_grad returns it.":
            np.cumsum(want) / np.arange(1, total + 1),
    }
    if sizes is not None and len(sizes) == total and np.any(np.asarray(sizes) != 1):
        diagnoses["you record each loss multiplied by its batch size (the sum of the per-example losses); "
                  "loss_and_grad already returns the MEAN over the batch: record it as it is."] = want * np.asarray(sizes)
    expect_close(got, want, what="the losses train returns", tol=FLOAT64, case=at, diagnoses=diagnoses)


@TESTS.test("train", functions=("train",))
def train(student, ctx):
    """train equals a torch autograd + torch.optim.SGD loop on the batches of minibatch_indices
    (rng.permutation per epoch): the same rows in every call of loss_and_grad, one optimizer step per
    batch, the loss of every update returned, the same final parameters."""
    for case in train_cases(ctx):
        ctx.cases += 1
        n, b, epochs = len(case["X"]), case["batch_size"], case["epochs"]
        nb = math.ceil(n / b)
        got = run(student, drivers.train_run, case["model"], case["params"], case["X"], case["y"], case["hyper"], b,
                  epochs, case["seed"], what="train", case=case["desc"])
        want = ref.train(case["model"], case["params"], case["X"], case["y"], case["hyper"], b, epochs, case["seed"])
        losses = _losses_array(got["losses"], case)
        batches = ref.epoch_batches(n, b, case["seed"], epochs)
        _check_calls(got, case, batches)
        if got["steps"] != nb * epochs:
            if got["steps"] == 0:
                raise CheckFailure(f"train is wrong on {case['desc']}: it never calls optimizer.step(grads). Update the "
                                   "parameters with the optimizer you are given, once per batch.")
            raise CheckFailure(f"train is wrong on {case['desc']}: optimizer.step was called {got['steps']} times; "
                               f"expected once per batch, {nb * epochs}.")
        if got["foreign_grads"]:
            raise CheckFailure(f"train is wrong on {case['desc']}: optimizer.step did not get the gradients that "
                               "loss_and_grad had just returned. Pass them as they are, optimizer.step(grads): the "
                               "optimizer applies the learning rate.")
        _check_losses(losses, want["losses"], case, nb, [len(idx) for epoch in batches for idx in epoch])
        for i, (g, w) in enumerate(zip(got["final"], want["final"])):
            expect_close(g, w, what=f"params[{i}] after train", tol=FLOAT64, case=case["desc"])
