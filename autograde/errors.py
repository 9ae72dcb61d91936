"""The exceptions both sides of the trust boundary know: a failed check, forbidden use, and a
driver's own diagnosis."""
from __future__ import annotations

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


class DriverProblem(Exception):
    """Raised by a driver that finds something wrong which is not an exception of the student's
    code (a forward pass that returns one value instead of ``(out, cache)``...): the message is the
    diagnosis, shown as it is."""


class Forbidden(CheckFailure):
    """The answer uses what the exercise forbids (a framework in a numpy exercise, a built-in
    normalization in the torch one). The grader flags the submission ``forbidden``."""
