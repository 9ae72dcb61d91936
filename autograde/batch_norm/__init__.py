"""Assignment `batch_norm`: batch normalization forward/backward (numpy, also spatial) and a torch
``BatchNorm1d`` module written from basic tensor operations (Ioffe & Szegedy, 2015).

Notebook use: ``from autograde.batch_norm import check, validate`` then ``check("batchnorm_forward_train")``.
``bn_mlp.ipynb`` takes the student's own module with :func:`student_batchnorm1d`.
"""
import contextlib
import io
from pathlib import Path

from .. import lazy_check

__getattr__ = lazy_check("batch_norm")  # check and validate, on first use


def student_batchnorm1d(notebook: str = "batch_norm.ipynb"):
    """The ``BatchNorm1d`` class defined in ``notebook`` (by default batch_norm.ipynb in the current
    folder, i.e. next to the calling notebook): runs that notebook's code cells, not its check cells,
    in a fresh namespace and returns the class. Raises with an explanation when it is missing or
    still a stub."""
    from ..notebook import exec_cells, read, student_cells

    path = Path(notebook)
    if not path.is_file():
        raise FileNotFoundError(f"{notebook} is not in {Path.cwd()}: keep bn_mlp.ipynb next to batch_norm.ipynb.")
    with contextlib.redirect_stdout(io.StringIO()):  # that notebook's prints (timings, demos) are not news here
        ns, errors = exec_cells(student_cells(read(path)), filename=path.name)
    cls = ns.get("BatchNorm1d")
    if cls is None:
        raise NameError(f"{notebook} defines no BatchNorm1d" + (f" (cells that failed: {'; '.join(errors)})" if errors else ""))
    try:
        cls(2)
    except NotImplementedError:
        raise NotImplementedError(f"BatchNorm1d in {notebook} is not implemented yet: finish it there first.") from None
    return cls
