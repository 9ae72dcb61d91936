"""Plain data (student side): what a driver may hand back across the trust boundary.

Numpy arrays (copied), Python scalars, str, None, and lists/tuples/dicts of those; anything else
becomes an :class:`Opaque` naming its type. :mod:`autograde.grading.wire` encodes exactly this.
"""
from __future__ import annotations

import numpy as np


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


def same(a, b) -> bool:
    """Equal values and dtypes (a student object that cannot be compared counts as different)."""
    try:
        return bool(np.array_equal(a, b)) and np.asarray(a).dtype == np.asarray(b).dtype
    except Exception:  # noqa: BLE001 - a student object that can't be compared counts as changed
        return False
