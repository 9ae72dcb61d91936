"""The check machinery shared by every assignment.

A *test* (one per nbgrader test cell, e.g. ``mse_loss`` in cell ``test_mse_loss``) is a function
``test(student, ctx)`` that draws inputs from ``ctx.rng``, asks the student's code for outputs
through ``student.call(name, *args)`` / ``student.run(driver, *args)``, computes the PyTorch
reference in *this* process and compares with :func:`expect_close`, raising :class:`CheckFailure`
with a diagnosis a student can act on. It is written once and serves

* the notebook's visible and hidden test cells (``check("mse_loss")``: :class:`LocalStudent`,
  the student's code in the same kernel),
* pytest (the solution and the mistake catalog, also through :class:`LocalStudent`),
* the instructor grader (a student object whose ``run`` executes the *driver* in an isolated
  process and returns plain arrays).

Drivers are module-level functions ``driver(namespace, *args)`` that run next to the student's
code, call it, and return plain data only (see :func:`to_plain`): that is all that ever crosses
from the student's side to the grader's.
"""
from __future__ import annotations

import contextvars
import copy
import inspect
import os
import re
import sys
import threading
import time
import traceback
from _thread import get_ident as _get_ident
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np


class CheckFailure(AssertionError):
    """A check failed. The message is the diagnosis, written for the student."""

    def _render_traceback_(self):  # IPython shows this instead of a traceback, wrapped at word boundaries
        from .kernel import wrap

        lines = str(self).splitlines() or [""]
        out = []
        for i, line in enumerate(lines):
            if not line.startswith(("\u2718", "\u26a0")):
                line = f"\u2718 {line}" if i == 0 else f"  {line}"
            out += wrap(line)
        return out


class Forbidden(CheckFailure):
    """The answer uses what the exercise forbids (a framework in a numpy exercise, a built-in
    normalization in the torch one). The grader flags the submission ``forbidden``."""


# --------------------------------------------------------------------------------------------
# The student's side: drivers and plain values
# --------------------------------------------------------------------------------------------
class Opaque:
    """Stands for a value that is not plain data (an object, a tensor, a function...)."""

    def __init__(self, type_name: str):
        self.type_name = type_name

    def __repr__(self):
        return f"<{self.type_name}>"

    def __eq__(self, other):
        return isinstance(other, Opaque) and other.type_name == self.type_name


def to_plain(obj, _depth: int = 0):
    """Student output as plain data: numpy arrays (copied), Python scalars, str, None, and
    lists/tuples/dicts of those. Anything else becomes :class:`Opaque` naming its type.
    A torch tensor becomes Opaque('torch.Tensor') (numpy answers must return numpy)."""
    if _depth > 8:
        return Opaque("deeply nested value")
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, np.generic):
        return obj.item() if obj.dtype.kind in "biuf" else Opaque(type(obj).__name__)
    if isinstance(obj, np.ndarray):
        if obj.dtype.kind not in "biuf":
            return Opaque(f"ndarray of dtype {obj.dtype}")
        return np.array(obj, copy=True)
    if isinstance(obj, (list, tuple)):  # a namedtuple or other subclass becomes a plain list/tuple
        return (tuple if isinstance(obj, tuple) else list)(to_plain(o, _depth + 1) for o in obj)
    if isinstance(obj, dict):
        return {str(k): to_plain(v, _depth + 1) for k, v in obj.items()}
    mod = type(obj).__module__ or ""
    return Opaque(f"{mod}.{type(obj).__name__}" if mod not in ("builtins", "") else type(obj).__name__)


def _same(a, b) -> bool:
    try:
        return bool(np.array_equal(a, b)) and np.asarray(a).dtype == np.asarray(b).dtype
    except Exception:  # noqa: BLE001 - a student object that can't be compared counts as changed
        return False


def _student_frame_summary(exc: BaseException) -> str:
    """The last traceback line that is in the student's code (not in this package)."""
    here = os.path.dirname(os.path.abspath(__file__))
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if not os.path.abspath(f.filename).startswith(here)]
    if not frames:
        return ""
    f = frames[-1]
    return f"line {f.lineno} in {f.name}" + (f": {f.line.strip()}" if f.line else "")


def subject(driver: Callable, args: tuple) -> str:
    """The student's function or class a driver exercises, to name it in a message: the driver's
    first argument when that is a name (``call_function(ns, "mse_loss", ...)``), else the
    driver's ``subject`` attribute."""
    if args and isinstance(args[0], str) and args[0].isidentifier():
        return args[0]
    return getattr(driver, "subject", "your code")


def execute(driver: Callable, namespace: dict, args: tuple) -> dict:
    """Run ``driver(namespace, *args)`` and report its outcome as plain data (never raises, but
    for a KeyboardInterrupt in a notebook, which stops the cell as usual).

    While a test runs under a framework policy (:func:`framework_policy`, set by :func:`run_test`
    from ``Test.framework``), the driver runs under :class:`FrameworkGuard`: a numpy answer that
    calls into torch (or another deep-learning framework), or a torch answer that calls a built-in
    normalization, ends in a ``Forbidden`` error, whatever the student's code did with exceptions,
    and also when it raised afterwards."""
    t0 = time.perf_counter()
    try:
        policy = _POLICY.get()
        if policy:
            guard = FrameworkGuard(policy)
            try:
                with guard:
                    raw = driver(namespace, *args)
            except Exception:
                guard.verdict(subject(driver, args))  # reaching the framework counts, raise or not
                raise
            guard.verdict(subject(driver, args))
        else:
            raw = driver(namespace, *args)
        value = to_plain(raw)
        return {"value": value, "error": None, "seconds": time.perf_counter() - t0}
    except BaseException as exc:  # noqa: BLE001 - the student's exception is a result, not our crash
        if isinstance(exc, KeyboardInterrupt) and not namespace.get("__autograde_isolated__"):
            raise
        return {
            "value": None,
            "error": {"type": type(exc).__name__, "message": str(exc)[:2000], "where": _student_frame_summary(exc)},
            "seconds": time.perf_counter() - t0,
        }


# --------------------------------------------------------------------------------------------
# Framework use: detected while the student's code runs (the same in a notebook and in the grader)
# --------------------------------------------------------------------------------------------
#: Deep-learning frameworks a numpy answer must not reach (top-level package names).
FRAMEWORKS = ("torch", "torchvision", "torchaudio", "functorch", "tensorflow", "keras", "jax", "jaxlib",
              "flax", "mxnet", "paddle", "mindspore", "theano", "chainer", "cupy")
#: Built-in normalizations a from-scratch torch answer must not call (functions and ATen ops).
NORMALIZATIONS = frozenset({
    "batch_norm", "native_batch_norm", "_native_batch_norm_legit", "_native_batch_norm_legit_no_training",
    "_batch_norm_impl_index", "cudnn_batch_norm", "miopen_batch_norm", "batch_norm_elemt", "batch_norm_stats",
    "layer_norm", "native_layer_norm", "instance_norm", "group_norm", "native_group_norm", "rms_norm",
})
_NORM_MODULE_FILES = ("batchnorm.py", "normalization.py", "instancenorm.py")

_POLICY: contextvars.ContextVar[str] = contextvars.ContextVar("autograde_framework_policy", default="")


class framework_policy:
    """``with framework_policy("numpy"):`` makes :func:`execute` guard the drivers it runs.
    "numpy": no deep-learning framework; "torch": no built-in normalization; "": no guard."""

    def __init__(self, policy: str | None):
        self.policy = policy or ""

    def __enter__(self):
        self._token = _POLICY.set(self.policy)
        return self

    def __exit__(self, *exc):
        _POLICY.reset(self._token)
        return False


def current_policy() -> str:
    """The framework policy of the test now running ("" outside a test)."""
    return _POLICY.get()


def _framework_dirs() -> tuple[str, ...]:
    import importlib.util

    dirs = []
    for name in FRAMEWORKS:
        mod = sys.modules.get(name)
        locations = list(getattr(mod, "__path__", []) or []) if mod is not None else []
        if not locations:
            try:
                spec = importlib.util.find_spec(name)
            except (ImportError, ValueError):
                spec = None
            locations = list(spec.submodule_search_locations or []) if spec is not None else []
        dirs += [os.path.join(os.path.realpath(d), "") for d in locations]
    return tuple(dirs)


_FRAMEWORK_DIRS: tuple[str, ...] | None = None
_AUDIT_INSTALLED = False
_ACTIVE_GUARDS: list = []
# Threads (the grader's student process only, see watch_threads): a profile hook only applies to
# its own thread, so every thread the student's code starts carries _thread_dispatch, which hands
# its calls to the active guard; a thread that runs without it is evasion.
_WATCH_THREADS = False
_WATCHED: set[int] = set()  # threads whose calls reached _thread_dispatch
_UNWATCHED: set[int] = set()  # threads that changed their own profile hook since: never trusted again
_THREADING_FILE = threading.__file__


def _thread_dispatch(frame, event, arg):
    _WATCHED.add(_get_ident())
    if _ACTIVE_GUARDS:
        _ACTIVE_GUARDS[-1]._hook(frame, event, arg)


def watch_threads() -> None:
    """In the grader's student process, before any student code: every thread started afterwards
    (threading, concurrent.futures...) is watched by the framework guard, and a guarded call during
    which an unwatched thread runs (started with _thread, or its hook removed) is Forbidden."""
    global _WATCH_THREADS

    _WATCH_THREADS = True
    threading.setprofile(_thread_dispatch)


def _audit(event: str, args) -> None:  # an audit hook cannot be removed: it watches the guard's hooks
    if event not in ("sys.setprofile", "sys.settrace"):
        return
    try:
        caller = sys._getframe(1).f_code
    except ValueError:  # called from C with no Python frame
        caller = None
    if caller is not None and caller.co_name == "_bootstrap_inner" and caller.co_filename == _THREADING_FILE:
        return  # threading installing threading's hook at a thread's start (threading.setprofile is watched)
    if _WATCH_THREADS:
        _UNWATCHED.add(_get_ident())
    if _ACTIVE_GUARDS and not _ACTIVE_GUARDS[-1]._own_call:
        _ACTIVE_GUARDS[-1].evasion.append(f"it called {event}()")


def _blind_threads() -> set[int]:
    """Threads other than this one that run without _thread_dispatch (when watching)."""
    trusted, me = _WATCHED - _UNWATCHED, _get_ident()
    return {ident for ident, frame in sys._current_frames().items()
            if ident != me and ident not in trusted and not _starting(frame)}


def _starting(frame) -> bool:
    """A thread that threading is still starting (its hook comes just before run()): every frame
    of its stack in threading.py, none of them run()."""
    while frame is not None:
        if frame.f_code.co_filename != _THREADING_FILE or frame.f_code.co_name == "run":
            return False
        frame = frame.f_back
    return True


def _module_of_c(arg) -> str:
    mod = getattr(arg, "__module__", None)
    if isinstance(mod, str) and mod:
        return mod
    owner = getattr(arg, "__self__", None)
    if owner is None:
        return ""
    if type(owner).__name__ == "module":
        return getattr(owner, "__name__", "") or ""
    return getattr(type(owner), "__module__", "") or ""


class FrameworkGuard:
    """A profile hook (``sys.setprofile`` and ``threading.setprofile``) that records calls into a
    framework ("numpy" policy) or into a built-in normalization ("torch" policy) while the
    student's code runs; :meth:`verdict` raises :class:`Forbidden` afterwards, so the student's
    code cannot catch it. An unused import is not a call and is not penalized."""

    def __init__(self, policy: str):
        global _FRAMEWORK_DIRS, _AUDIT_INSTALLED
        self.policy = policy
        self.hits: list[str] = []
        self.evasion: list[str] = []
        self._own_call = False
        self._fn = self._hook  # one bound method, so that `sys.getprofile() is self._fn` holds
        if _FRAMEWORK_DIRS is None:
            _FRAMEWORK_DIRS = _framework_dirs()
        self.dirs = _FRAMEWORK_DIRS
        if not _AUDIT_INSTALLED:
            sys.addaudithook(_audit)
            _AUDIT_INSTALLED = True

    def _is_framework(self, mod: str) -> bool:
        return mod.split(".", 1)[0] in FRAMEWORKS

    def _hook(self, frame, event, arg):
        if len(self.hits) > 3:
            return
        if event == "c_call":
            mod = _module_of_c(arg)
            if not mod or not self._is_framework(mod):
                return
            name = getattr(arg, "__name__", "?")
            if self.policy == "numpy":
                self.hits.append(f"{mod}.{name}")
            elif name in NORMALIZATIONS:
                self.hits.append(f"{mod}.{name}")
        elif event == "call":
            filename = frame.f_code.co_filename
            if filename == _THREADING_FILE and frame.f_code.co_name in ("setprofile", "settrace"):
                self.evasion.append(f"it called threading.{frame.f_code.co_name}()")  # hides later threads
                return
            if not filename.startswith(self.dirs):
                return
            name = frame.f_code.co_name
            if self.policy == "numpy":
                self.hits.append(f"{frame.f_globals.get('__name__', filename)}.{name}")
            elif name in NORMALIZATIONS or (name == "forward" and filename.endswith(_NORM_MODULE_FILES)):
                self.hits.append(f"{frame.f_globals.get('__name__', filename)}.{name}")

    def __enter__(self):
        self._own_call = True
        self._old = sys.getprofile()
        self._old_threading = getattr(threading, "_profile_hook", None)
        # threads started during the call: this guard's hook (or, when watching, the dispatcher)
        threading.setprofile(_thread_dispatch if _WATCH_THREADS else self._fn)
        sys.setprofile(self._fn)
        self._own_call = False
        self._blind_check()
        _ACTIVE_GUARDS.append(self)
        return self

    def _blind_check(self) -> None:
        blind = _blind_threads() if _WATCH_THREADS else ()
        if blind:
            self.evasion.append(f"{len(blind)} thread(s) it started run without the grader's profile hook "
                                f"(started with _thread, or the hook removed)")

    def __exit__(self, *exc):
        if sys.getprofile() is not self._fn:
            self.evasion.append("the profile hook was replaced")
        self._blind_check()
        self._own_call = True
        sys.setprofile(self._old)
        threading.setprofile(self._old_threading)
        self._own_call = False
        if _ACTIVE_GUARDS and _ACTIVE_GUARDS[-1] is self:
            _ACTIVE_GUARDS.pop()
        return False

    def verdict(self, what: str) -> None:
        if self.evasion:
            raise Forbidden(
                f"{what} switched off the grader's framework detection ({'; '.join(dict.fromkeys(self.evasion))}). "
                f"Answers must not touch sys.setprofile/sys.settrace. This test earns no points."
            )
        if not self.hits:
            return
        seen = ", ".join(dict.fromkeys(self.hits[:3]))
        if self.policy == "numpy":
            raise Forbidden(
                f"{what} uses a deep-learning framework ({seen} ran during the call). This is a numpy exercise: "
                f"compute with numpy, not tensors or torch functions. This test earns no points."
            )
        raise Forbidden(
            f"{what} calls a built-in normalization ({seen}). Compute the normalization yourself from "
            f"tensor operations (mean, var, sqrt...). This test earns no points."
        )


class MissingName(NameError):
    pass


def graded(namespace: dict, name: str):
    if name not in namespace:
        raise MissingName(name)
    return namespace[name]


def call_function(namespace: dict, name: str, *args):
    """Driver: call the student's function ``name`` on copies of ``args``.

    Returns ``{"out": <plain output>, "mutated": [index of each argument it changed]}``."""
    fn = graded(namespace, name)
    given = copy.deepcopy(args)
    out = fn(*given)
    mutated = [i for i, (a, g) in enumerate(zip(args, given)) if isinstance(a, np.ndarray) and not _same(a, g)]
    return {"out": out, "mutated": mutated}


# --------------------------------------------------------------------------------------------
# The grader's side
# --------------------------------------------------------------------------------------------
class Student:
    """The student's code, seen from a check. Subclasses say where it runs (``_execute``)."""

    def _execute(self, driver: Callable, args: tuple, what: str) -> dict:  # pragma: no cover - abstract
        """The driver's plain outcome; ``what`` names the student's code in any failure it raises."""
        raise NotImplementedError

    def run(self, driver: Callable, *args, what: str | None = None):
        """Run a driver next to the student's code; return its plain result or raise the
        student's error as a :class:`CheckFailure` with a diagnosis. ``what`` names the student's
        code in messages (default: :func:`subject`, never the driver)."""
        what = what or subject(driver, args)
        outcome = self._execute(driver, args, what)
        err = outcome["error"]
        if err is not None:
            # a driver's own detection, or the grader's process refusing a framework / a normalization
            if err["type"] in ("Forbidden", "FrameworkUnavailable", "NormalizationUnavailable"):
                raise Forbidden(f"{what}: {err['message']}" if err["type"] != "Forbidden" else err["message"])
            raise CheckFailure(describe_error(err, what))
        return outcome["value"]

    def call(self, name: str, *args, argnames: tuple[str, ...] = ()):
        """Call the student's function ``name`` on copies of ``args``; return its output.
        Fails if the function raised or changed one of its inputs in place."""
        res = self.run(call_function, name, *args, what=name)
        if res["mutated"]:
            names = [argnames[i] if i < len(argnames) else f"argument {i + 1}" for i in res["mutated"]]
            raise CheckFailure(
                f"{name} changed its input {', '.join(names)} in place. A loss function must not modify "
                f"its arguments: compute on a copy (e.g. `d = pred - target`, not `pred -= target`)."
            )
        return res["out"]


class LocalStudent(Student):
    """Student code living in a namespace of this process (the notebook kernel, or pytest)."""

    def __init__(self, namespace: dict):
        self.namespace = namespace

    def _execute(self, driver, args, what):
        return execute(driver, self.namespace, args)


def describe_error(err: dict, what: str) -> str:
    kind, msg, where = err["type"], err["message"], err.get("where") or ""
    at = f" ({where})" if where else ""
    if kind == "MissingName":
        return f"`{msg}` is not defined. Run the cell that defines it, and keep the name `{msg}` exactly."
    if kind == "NameError" and re.search(r"name '(np|torch|nn)' is not defined", msg):
        return (f"{what} raised NameError: {msg}{at}. Run the set-up cell at the top of the notebook first "
                "(it imports numpy as np; section 5's cell imports torch and nn), then this function's cell.")
    if kind == "NotImplementedError":
        return f"{what} is not implemented yet: it still raises NotImplementedError{at}. Replace the `raise` with your code."
    return f"{what} raised {kind}: {msg}{at}"


@dataclass
class Context:
    """What a test may use besides the student: the seeded generator, the reference device,
    and whether to run the hidden cases."""

    seed: int
    hidden: bool = False
    rng: np.random.Generator = field(init=False)
    cases: int = 0

    def __post_init__(self):
        self.rng = np.random.default_rng(self.seed)

    @property
    def device(self) -> str:
        from .device import reference_device

        return reference_device()


# --------------------------------------------------------------------------------------------
# Comparing with the reference
# --------------------------------------------------------------------------------------------
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


def tol_for(*arrays) -> Tol:
    return FLOAT32 if any(np.asarray(a).dtype == np.float32 for a in arrays) else FLOAT64


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
            hit = m.shape == got.shape and np.all(np.isfinite(m)) and _close(got, m, Tol(1e-5, 1e-8, ""))
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


# --------------------------------------------------------------------------------------------
# Tests and their registry
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Test:
    """One graded test: nbgrader cell ``test_<id>``; its points live in the solution notebook."""

    id: str
    fn: Callable[[Student, Context], None]
    functions: tuple[str, ...]  # the graded names it calls
    framework: str = "numpy"  # "numpy": no deep-learning framework; "torch": no built-in normalization
    doc: str = ""
    after: tuple[str, ...] = ()  # tests of the same code that come first: a notebook check names them when they fail too

    @property
    def cell_id(self) -> str:
        return f"test_{self.id}"


@dataclass(frozen=True)
class Advice:
    """Feedback that costs no points (e.g. "vectorize this"), given once the tests ``after`` pass.
    ``fn(student, ctx)`` returns a message, or None when there is nothing to say."""
    id: str
    fn: Callable
    after: tuple[str, ...]
    framework: str = "numpy"


class Registry(dict):
    """``id -> Test`` for one assignment, filled by the :meth:`test` decorator; its
    :attr:`advice` list by :meth:`advise`."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.advice: list[Advice] = []

    def test(self, id: str, *, functions: tuple[str, ...] | None = None, framework: str = "numpy",
             after: tuple[str, ...] = ()):
        def deco(fn):
            self[id] = Test(id, fn, tuple(functions or (id,)), framework, inspect.getdoc(fn) or "", tuple(after))
            return fn

        return deco

    def advise(self, id: str, *, after: tuple[str, ...], framework: str = "numpy"):
        def deco(fn):
            self.advice.append(Advice(id, fn, tuple(after), framework))
            return fn

        return deco


def run_advice(advice: Advice, student: Student, seed: int) -> str | None:
    """The advice's message, or None (also when the student's code fails: tests report that)."""
    try:
        with framework_policy(advice.framework):
            return advice.fn(student, Context(seed=seed, hidden=False))
    except CheckFailure:
        return None


@dataclass
class Verdict:
    test: str
    passed: bool
    message: str
    seed: int
    cases: int
    seconds: float
    flag: str = ""  # "forbidden" when the test failed because of forbidden use


def run_test(test: Test, student: Student, seed: int, hidden: bool = False) -> Verdict:
    """Run one test; a CheckFailure becomes a failed verdict with its diagnosis."""
    ctx = Context(seed=seed, hidden=hidden)
    t0 = time.perf_counter()
    try:
        with framework_policy(test.framework):
            test.fn(student, ctx)
        ok, msg, flag = True, "", ""
    except CheckFailure as exc:
        ok, msg, flag = False, str(exc), "forbidden" if isinstance(exc, Forbidden) else ""
    return Verdict(test.id, ok, msg, seed, ctx.cases, time.perf_counter() - t0, flag)


def fresh_seed() -> int:
    return int.from_bytes(os.urandom(4), "little") % 10**9


def prerequisite_failures(tests: Registry, test: Test, student: Student, seed: int) -> list[str]:
    """For a failed test: the tests it builds on (``Test.after``) that fail too on the same seed
    (visible cases), each as one line naming it and its diagnosis."""
    out = []
    for pid in test.after:
        if pid not in tests:
            continue
        pv = run_test(tests[pid], student, seed, hidden=False)
        if not pv.passed:
            first = pv.message.splitlines()[0] if pv.message else ""
            out.append(f"check({pid!r}) fails too on these inputs, and this test runs the same "
                       f"{' and '.join(tests[pid].functions)}: fix that first. It says: {first}")
    return out


def make_check(tests: Registry, assignment: str):
    """The ``check(test_id)`` function the notebooks import from ``autograde.<assignment>``.

    In a notebook a person drives (:func:`autograde.kernel.interactive`), a failing check shows its
    diagnosis as word-wrapped text and returns, so Run All goes on to the cells after it; in a batch
    run (nbgrader's autograde and validate, pytest, a script) it raises :class:`CheckFailure`, so
    the test cell has an error and scores 0. Warnings raised while the student's code runs are
    summarized in the message, not printed; the message says which cell run defined the functions
    under test, and warns when a later run of that cell failed (the check then tested the old one)."""
    from . import kernel

    def check(test_id: str, namespace: dict | None = None, *, hidden: bool = False, seed: int | None = None):
        """Check one of your functions against PyTorch on fresh random inputs.

        ``check("mse_loss")`` runs the visible cases on the functions defined in your notebook.
        A failure says what is wrong (in a notebook) or raises with the diagnosis (in a batch run);
        ``seed=`` (with the same ``hidden``) repeats a run exactly."""
        if test_id not in tests:
            raise ValueError(f"unknown test {test_id!r} for {assignment}; known: {', '.join(tests)}")
        if namespace is None:  # the caller's globals: the notebook's namespace
            namespace = sys._getframe(1).f_globals
        s = fresh_seed() if seed is None else int(seed)
        test = tests[test_id]
        student = LocalStudent(namespace)
        with kernel.record_warnings() as caught:
            v = run_test(test, student, s, hidden=hidden)
            before = None
            if not v.passed and not v.flag:
                before = prerequisite_failures(tests, test, student, s)
        from .device import reference_device

        notes, stale = kernel.origins(test.functions, namespace)
        warned = kernel.summarize_warnings(caught)
        where = f"PyTorch on {reference_device()}, float64; seed {s}"
        if not v.passed:
            again = f"check({test_id!r}, seed={s}" + (", hidden=True)" if hidden else ")")
            body = [v.message, *(before or []), *([warned] if warned else []), *notes, f"({where}; repeat with {again})"]
            if kernel.interactive():
                kernel.show("\n".join([*stale, "\u2718 " + body[0], *body[1:]]), "warn" if stale else "fail")
                return None
            raise CheckFailure("\n".join([*stale, "\u2718 " + body[0], *body[1:]] if stale else body))
        label = "hidden cases" if hidden else f"{v.cases} cases"
        print(f"\u2714 {test_id}: {label} passed ({where})")
        extra = [*notes, *([warned] if warned else [])]
        if extra:
            print("\n".join(kernel.wrap("  " + " ".join(extra))))
        if stale:
            kernel.show("\n".join(stale), "warn")

    def ready() -> None:
        """The set-up cell's last line: one line saying the checks work (and on what)."""
        from .device import reference_device, torch

        # the device only in a kernel: the grader's forked student processes never probe CUDA
        on = f" on {reference_device()}" if kernel.ipython() is not None else ""
        print(f"checks ready: PyTorch {torch().__version__.split('+')[0]}{on} ({assignment}, {len(tests)} checks)")

    def validate(notebook: str | None = None, timeout: float = 300):
        """Run the grader's checks (``python -m autograde validate``) on this notebook's SAVED file,
        in a separate process, and show the verdicts; first say when the saved file differs from
        the functions you ran. Save (Ctrl+S) before you run it."""
        kernel.validate(tests, assignment, notebook, sys._getframe(1).f_globals, timeout=timeout)

    check.tests = tests
    check.ready = ready
    check.validate = validate
    return check
