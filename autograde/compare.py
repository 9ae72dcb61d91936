"""Comparing with the reference (grader side): tolerances with their reasons, and
:func:`expect_close`, whose diagnoses name a known mistake when the answer matches it."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import CheckFailure
from .plain import Opaque


@dataclass(frozen=True)
class Tol:
    """A tolerance and the reason for it (the reason is shown when a check fails)."""

    rtol: float
    atol: float
    why: str


# float64: a correct numpy answer differs from the float64 torch reference by summation order
# only (~1e-15 relative); 1e-7 leaves room for any correct formula and is far below every
# catalogued mistake (all off by >= 1e-3 relative on the drawn inputs).
FLOAT64 = Tol(1e-7, 1e-9, "float64 inputs: a correct answer matches to ~1e-15; we allow 1e-7 relative")
# float32: the answer may be computed in float32 (eps 1.2e-7) with sums over up to ~1e4 terms.
FLOAT32 = Tol(1e-4, 1e-5, "float32 inputs: float32 rounding over the sums allows ~1e-4 relative")


# a mistake model names the student's mistake when the answer matches what it computes on the same
# inputs; looser than the verdict's tolerance (the student's formula may round differently from the
# model's), far tighter than the distance between catalogued mistakes (>= 1e-3 relative)
DIAGNOSIS = Tol(1e-5, 1e-8, "a known mistake's output, up to rounding")


def tol_for(*arrays) -> Tol:
    return FLOAT32 if any(np.asarray(a).dtype == np.float32 for a in arrays) else FLOAT64


def scaled(tol: Tol, want) -> Tol:
    """tol with its atol taken relative to the largest |value| of the reference (>= 1)."""
    m = float(np.max(np.abs(want))) if np.size(want) else 1.0
    return Tol(tol.rtol, tol.atol * max(1.0, m), tol.why)


def _close(got: np.ndarray, want: np.ndarray, tol: Tol) -> bool:
    return got.shape == want.shape and bool(np.allclose(got, want, rtol=tol.rtol, atol=tol.atol, equal_nan=False))


def as_numeric(got, what: str, scalar: bool = False) -> np.ndarray:
    """The student's output as a float64 array, or a CheckFailure that says what came back."""
    if got is None:
        raise CheckFailure(f"{what} returned None. Did you forget the `return` statement?")
    if isinstance(got, Opaque):
        hint = " Numpy exercises must return numpy values, not tensors." if "torch" in got.type_name else ""
        raise CheckFailure(f"{what} returned a {got.type_name}; expected {'a float' if scalar else 'a numpy array'}.{hint}")
    if isinstance(got, (list, tuple, dict, str)):
        raise CheckFailure(f"{what} returned a {type(got).__name__}; expected {'a float' if scalar else 'a numpy array'}.")
    try:
        arr = np.asarray(got, dtype=np.float64)
    except (OverflowError, ValueError, TypeError) as exc:  # e.g. 10**400, or a ragged list
        raise CheckFailure(f"{what} returned a value that is not a number of ordinary size "
                           f"({type(exc).__name__}: {str(exc)[:100]}); expected {'a float' if scalar else 'a numpy array'}.") from None
    if scalar and arr.shape != ():
        raise CheckFailure(
            f"{what} returned an array of shape {arr.shape}; expected one number (a float). "
            "Did you forget to average over the batch?"
        )
    return arr


def expect_close(got, want, *, what: str, tol: Tol, diagnoses: dict[str, Any] | None = None,
                 case: str = "", scalar: bool = False) -> None:
    """Fail unless ``got`` matches ``want`` within ``tol``.

    ``diagnoses`` maps a message to what a known mistake would have produced on the same
    inputs (an array) or to a predicate ``f(got) -> bool``; the first that matches the student's
    output names the mistake. Otherwise the message reports the largest error and where."""
    want = np.asarray(want, dtype=np.float64)
    in_case = f" on {case}" if case else ""
    got = as_numeric(got, what, scalar=scalar)
    if _close(got, want, tol):
        return
    for message, model in (diagnoses or {}).items():
        if callable(model):
            hit = bool(model(got))
        else:
            m = np.asarray(model, dtype=np.float64)
            hit = m.shape == got.shape and np.all(np.isfinite(m)) and _close(got, m, DIAGNOSIS)
        if hit:
            raise CheckFailure(f"{what} is wrong{in_case}: {message}")
    if got.shape != want.shape:
        raise CheckFailure(f"{what} has shape {got.shape}{in_case}; expected {want.shape}.")
    if not np.all(np.isfinite(got)) and np.all(np.isfinite(want)):
        raise CheckFailure(f"{what} contains inf or nan{in_case}, where PyTorch gives finite values. "
                           "Something overflows: look for exp() of a large number or a division by zero.")
    err = np.abs(got - want)
    i = np.unravel_index(int(np.argmax(err)), err.shape) if err.ndim else ()
    ratio = _constant_ratio(got, want)
    hint = f" Your values are {ratio:.4g} times the reference everywhere: a wrong scale factor?" if ratio else ""
    at = f" at index {tuple(int(k) for k in i)}" if i else ""
    raise CheckFailure(
        f"{what} does not match PyTorch{in_case}: largest difference {float(err[i]):.3g}{at} "
        f"(yours {float(got[i]):.6g}, expected {float(want[i]):.6g}; tolerance rtol={tol.rtol:g}, atol={tol.atol:g}: {tol.why}).{hint}"
    )


def _constant_ratio(got: np.ndarray, want: np.ndarray) -> float | None:
    mask = np.abs(want) > 1e-8
    if got.shape != want.shape or mask.sum() < 2:  # one number is always a "constant ratio"
        return None
    r = got[mask] / want[mask]
    if np.all(np.isfinite(r)) and np.ptp(r) <= 1e-6 * max(1.0, abs(float(r.mean()))) and abs(r.mean() - 1) > 1e-6:
        return float(r.mean())
    return None
