"""Reading nbgrader's submissions tree (grader side), as regular files only.

A submission folder is the student's: it may hold links (to the solutions, to a classmate's
folder) and special files (a FIFO that blocks a reader forever). Nothing here follows a link or
opens anything but a regular file for reading, and every read is size-capped.
"""
from __future__ import annotations

import os
import stat
from pathlib import Path

MAX_NOTEBOOK_BYTES = 32 * 2**20  # a notebook costs ~2.3x its size in memory per process that reads it
MAX_FILES_BYTES = 64 * 2**20


class UnsafeFile(Exception):
    """A link, a special file or an oversized file where a submission's regular file should be."""


def read_regular(path: Path, limit: int) -> bytes:
    """A file's bytes, only if it is a regular file: links are not followed, a FIFO or device is
    not opened for reading (O_NONBLOCK, then fstat), and at most ``limit`` bytes are read."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
    except OSError as exc:
        if os.path.islink(path):
            raise UnsafeFile(f"{path.name} is a link") from None
        raise UnsafeFile(f"{path.name} cannot be read ({exc.strerror})") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise UnsafeFile(f"{path.name} is not a regular file")
        if st.st_size > limit:
            raise UnsafeFile(f"{path.name} is larger than {limit // 2**20} MiB")
        chunks, got = [], 0
        while got <= limit:
            chunk = os.read(fd, min(1 << 20, limit + 1 - got))
            if not chunk:
                break
            chunks.append(chunk)
            got += len(chunk)
        if got > limit:
            raise UnsafeFile(f"{path.name} is larger than {limit // 2**20} MiB")
        return b"".join(chunks)
    finally:
        os.close(fd)


def real_folder(path: Path | None) -> bool:
    """A folder that is itself one, not a link to one."""
    try:
        return path is not None and stat.S_ISDIR(os.lstat(path).st_mode)
    except OSError:
        return False


def read_files(folder: Path | None, limit: int = MAX_FILES_BYTES,
               known: dict[str, bytes | None] | None = None) -> dict[str, bytes]:
    """Every regular file of a submission folder (relative path -> bytes), for the student
    process's working folder, as nbgrader would run the notebook inside it. Hidden folders,
    checkpoints, links and special files are left out (never followed); so is whatever exceeds
    ``limit`` bytes in all. ``known`` holds files already read (e.g. :func:`read_notebooks`)."""
    known = known or {}
    out: dict[str, bytes] = {}
    if not real_folder(folder):
        return out
    total = 0
    for top, dirs, files in os.walk(folder, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and real_folder(Path(top) / d))
        for name in sorted(files):
            p = Path(top) / name
            rel = p.relative_to(folder).as_posix()
            if name.startswith("."):
                continue
            try:
                data = known.get(rel) or read_regular(p, limit - total)
            except UnsafeFile:
                continue
            out[rel] = data
            total += len(data)
    return out


def read_notebooks(folder: Path | None, limit: int = MAX_NOTEBOOK_BYTES) -> tuple[dict[str, bytes | None], list[str]]:
    """(the .ipynb files of a submission folder: bytes, empty for one that cannot be read or is too
    large, which grades as an invalid notebook; what is unsafe there: links and special files,
    which are not read at all, or a folder that is a link)."""
    out: dict[str, bytes | None] = {}
    unsafe: list[str] = []
    if folder is None:
        return out, unsafe
    if os.path.islink(folder):
        return out, [f"{folder.name}/ is a link"]
    if not real_folder(folder):
        return out, unsafe
    for p in sorted(folder.glob("*.ipynb")):
        try:
            out[p.name] = read_regular(p, limit)
        except UnsafeFile as exc:
            if "larger than" in str(exc) or "cannot be read" in str(exc):
                out[p.name] = b""
            else:  # a link or a special file is not the student's notebook: not graded, flagged
                unsafe.append(str(exc))
    return out, unsafe
