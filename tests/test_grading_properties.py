"""Property-based tests (Hypothesis): whatever a student process sends or returns, and whatever a
submitted file holds, the grader's side fails only in the ways it handles (a WireError for the
wire, a CheckFailure for a comparison, an InvalidNotebook for a file): never an exception that
would make the submission a grader error."""
from __future__ import annotations

import json
import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from autograde import core, notebook
from autograde.grading import grader, wire

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_scalars = st.none() | st.booleans() | st.integers(min_value=-(2**80), max_value=2**80) | \
    st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=20)
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=5) |
                           st.dictionaries(st.text(max_size=8), inner, max_size=5), max_leaves=30)

arrays = st.builds(
    lambda dtype, shape, seed: np.random.default_rng(seed).standard_normal(shape).astype(dtype),
    st.sampled_from(["float64", "float32", "int64", "int8", "uint16", "bool"]),
    st.lists(st.integers(0, 4), max_size=3).map(tuple), st.integers(0, 2**32 - 1))
plain_scalars = st.none() | st.booleans() | st.integers(min_value=-(2**500), max_value=2**500) | \
    st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=10) | \
    st.builds(core.Opaque, st.text(max_size=10))
plain_values = st.recursive(plain_scalars | arrays, lambda inner: st.lists(inner, max_size=4) |
                            st.tuples(inner, inner) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
                            max_leaves=20)


@SETTINGS
@given(st.binary(max_size=400))
def test_unpack_takes_any_bytes(frame):
    try:
        msg = wire.unpack(frame)
    except wire.WireError:
        return
    assert isinstance(msg, dict)


@SETTINGS
@given(json_values, st.lists(st.binary(max_size=64), max_size=3))
def test_decode_takes_any_tree(tree, buffers):
    try:
        wire.decode(tree, buffers)
    except wire.WireError:
        pass


@SETTINGS
@given(json_values, st.lists(st.binary(max_size=64), max_size=3))
def test_a_frame_with_any_header_decodes_or_fails_cleanly(header, buffers):
    head = json.dumps({"value": header, "$buffers": [len(b) for b in buffers]}).encode()
    frame = struct.pack("!I", len(head)) + head + b"".join(buffers)
    try:
        msg = wire.unpack(frame)
        wire.decode(msg.get("value"), msg.get("buffers", []))
    except wire.WireError:
        pass


@SETTINGS
@given(plain_values)
def test_plain_values_round_trip(value):
    tree, buffers = wire.encode(value)
    msg = wire.unpack(wire.pack({"value": tree}, buffers))
    back = wire.decode(msg["value"], msg.get("buffers", []))

    def same(a, b):
        if isinstance(a, np.ndarray):
            return isinstance(b, np.ndarray) and a.dtype == b.dtype and a.shape == b.shape and \
                np.array_equal(a, b, equal_nan=a.dtype.kind == "f")
        if isinstance(a, float) and a != a:
            return isinstance(b, float) and b != b
        if isinstance(a, (list, tuple)):
            return type(a) is type(b) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
        if isinstance(a, dict):
            return isinstance(b, dict) and list(a) == list(b) and all(same(a[k], b[k]) for k in a)
        return a == b and type(a) is type(b)

    assert same(value, back), (value, back)


@SETTINGS
@given(plain_values, st.booleans())
def test_any_returned_value_is_compared_or_explained(got, scalar):
    want = np.float64(0.5) if scalar else np.linspace(-1, 1, 6).reshape(2, 3)
    try:
        core.expect_close(got, want, what="f", tol=core.FLOAT64, scalar=scalar,
                          diagnoses={"twice the reference": 2 * want, "always negative": lambda g: bool(np.all(g < 0))})
    except core.CheckFailure as exc:
        assert str(exc)


cells = st.fixed_dictionaries({"cell_type": st.sampled_from(["code", "markdown", "raw", 3]),
                               "source": st.one_of(st.text(max_size=30), st.lists(st.text(max_size=10), max_size=3),
                                                   json_values),
                               "metadata": json_values | st.fixed_dictionaries({"nbgrader": json_values}),
                               "outputs": json_values})
notebooks = st.fixed_dictionaries({"cells": st.lists(cells | json_values, max_size=4),
                                   "nbformat": st.sampled_from([4, 4, 3, "4", None]),
                                   "nbformat_minor": st.integers(0, 6), "metadata": json_values}) | json_values


@SETTINGS
@given(notebooks)
def test_any_notebook_json_parses_or_is_invalid(nb):
    data = json.dumps(nb).encode()
    try:
        grader.parse(data, "nb.ipynb", {"mse_loss"})
    except notebook.InvalidNotebook:
        pass


@SETTINGS
@given(st.binary(max_size=300))
def test_any_bytes_parse_or_are_invalid(data):
    try:
        grader.parse(data, "nb.ipynb", {"mse_loss"})
    except notebook.InvalidNotebook:
        pass


@pytest.mark.parametrize("depth", [500, 5000, 50000])
def test_deep_nesting_is_an_invalid_notebook(depth):
    with pytest.raises(notebook.InvalidNotebook):
        grader.parse(("[" * depth + "]" * depth).encode(), "nb.ipynb", set())
