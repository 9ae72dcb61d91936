"""What crosses between the grader and a student process, and how.

* grader -> student: pickle (the grader is trusted; the student process may read it).
* student -> grader: **plain data only**, as one JSON header plus raw array buffers. The grader
  decodes it with :func:`decode` which never unpickles and never calls student code: numbers,
  strings, None, lists, tuples, dicts with string keys, numpy arrays whose dtype is bool, int,
  uint or float (at most 8 bytes an item; byte order and shape checked against the buffer
  length) and :class:`autograde.plain.Opaque` placeholders. Sizes, nesting and counts are capped.

A frame is ``!I`` header length, the header (JSON, UTF-8), then the buffers the header lists.
"""
from __future__ import annotations

import json
import math
import pickle
import socket
import struct

import numpy as np

from ..plain import Opaque

OUTPUT = ("stdout", "stderr")  # the student process's output, new text of which rides on its messages
MAX_FRAME = 256 * 2**20  # bytes of one student -> grader message (header + buffers)
MAX_HEADER = 8 * 2**20
MAX_NODES = 100_000
MAX_DEPTH = 12
MAX_NDIM = 16
ALLOWED_KINDS = "biuf"


class WireError(Exception):
    """A student -> grader message that is not well-formed plain data."""


class TooLarge(WireError):
    pass


# ---------------------------------------------------------------------------------------------
# student side: encode
# ---------------------------------------------------------------------------------------------
def encode(obj) -> tuple[dict, list[bytes]]:
    """Plain data (see :func:`autograde.plain.to_plain`) as a JSON-able tree plus buffers."""
    buffers: list[bytes] = []
    total = [0]

    def enc(o, depth):
        if depth > MAX_DEPTH:
            return {"$opaque": "deeply nested value"}
        if o is None or isinstance(o, (bool, str)):
            return str.__str__(o) if isinstance(o, str) else o
        if isinstance(o, int):
            return {"$int": str(int(o))} if abs(int(o)) > 2**63 else int(o)
        if isinstance(o, float):
            f = float(o)
            return f if math.isfinite(f) else {"$float": repr(f)}
        if isinstance(o, np.ndarray):
            a = o if o.flags.c_contiguous else o.copy(order="C")  # (ascontiguousarray makes 0-d arrays 1-d)
            if a.dtype.kind not in ALLOWED_KINDS or a.dtype.itemsize > 8:
                return {"$opaque": f"ndarray of dtype {a.dtype}"}
            data = a.tobytes()
            total[0] += len(data)
            if total[0] > MAX_FRAME - MAX_HEADER:
                raise TooLarge(f"the output is larger than {MAX_FRAME // 2**20} MiB")
            buffers.append(data)
            return {"$nd": len(buffers) - 1, "dtype": a.dtype.str, "shape": [int(s) for s in a.shape]}
        if isinstance(o, tuple):
            return {"$tuple": [enc(v, depth + 1) for v in o]}
        if isinstance(o, list):
            return [enc(v, depth + 1) for v in o]
        if isinstance(o, dict):
            return {"$dict": [[str(k), enc(v, depth + 1)] for k, v in o.items()]}
        if isinstance(o, Opaque):
            return {"$opaque": str(o.type_name)[:200]}
        return {"$opaque": type(o).__name__[:200]}

    return enc(obj, 0), buffers


def pack(header: dict, buffers: list[bytes] = ()) -> bytes:
    header = dict(header, **{"$buffers": [len(b) for b in buffers]})
    head = json.dumps(header, allow_nan=False).encode()
    if len(head) > MAX_HEADER:
        raise TooLarge("the output's description is too large")
    return struct.pack("!I", len(head)) + head + b"".join(buffers)


# ---------------------------------------------------------------------------------------------
# grader side: decode
# ---------------------------------------------------------------------------------------------
def clean(text: str) -> str:
    """A string from the student's side made safe to write anywhere (no lone surrogates)."""
    return text.encode("utf-8", "replace").decode("utf-8")


def decode(tree, buffers: list[bytes]):
    """The inverse of :func:`encode`, validating everything (raises :class:`WireError`)."""
    count = [0]
    used = set()

    def dec(t, depth):
        count[0] += 1
        if count[0] > MAX_NODES or depth > MAX_DEPTH + 2:
            raise WireError("too many or too deeply nested values")
        if t is None or isinstance(t, bool):
            return t
        if isinstance(t, str):
            return clean(t)
        if isinstance(t, int):
            return int(t)
        if isinstance(t, float):
            return float(t)
        if isinstance(t, list):
            return [dec(v, depth + 1) for v in t]
        if not isinstance(t, dict) or len(t) == 0:
            raise WireError(f"unexpected value of type {type(t).__name__}")
        if "$nd" in t:
            return _array(t, buffers, used)
        if set(t) == {"$tuple"} and isinstance(t["$tuple"], list):
            return tuple(dec(v, depth + 1) for v in t["$tuple"])
        if set(t) == {"$dict"} and isinstance(t["$dict"], list):
            out = {}
            for kv in t["$dict"]:
                if not (isinstance(kv, list) and len(kv) == 2 and isinstance(kv[0], str)):
                    raise WireError("malformed dict")
                out[kv[0]] = dec(kv[1], depth + 1)
            return out
        if set(t) == {"$opaque"} and isinstance(t["$opaque"], str):
            return Opaque(clean(t["$opaque"][:200]))
        if set(t) == {"$float"} and t["$float"] in ("nan", "inf", "-inf"):
            return float(t["$float"])
        if set(t) == {"$int"} and isinstance(t["$int"], str) and len(t["$int"]) < 400:
            try:
                return int(t["$int"])
            except ValueError:
                raise WireError("malformed integer") from None
        raise WireError("unexpected object")

    return dec(tree, 0)


def _array(t: dict, buffers: list[bytes], used: set) -> np.ndarray:
    if set(t) != {"$nd", "dtype", "shape"}:
        raise WireError("malformed array")
    i, dt, shape = t["$nd"], t["dtype"], t["shape"]
    if not (isinstance(i, int) and not isinstance(i, bool) and 0 <= i < len(buffers)) or i in used:
        raise WireError("bad array buffer reference")
    used.add(i)
    if not (isinstance(dt, str) and len(dt) <= 4 and dt[:1] in "<>|=" and dt[1:2] in ALLOWED_KINDS and dt[2:].isdigit()):
        raise WireError(f"array dtype {dt!r} not allowed")
    dtype = np.dtype(dt)
    if dtype.kind not in ALLOWED_KINDS or dtype.itemsize > 8 or dtype.fields is not None or dtype.hasobject:
        raise WireError(f"array dtype {dt!r} not allowed")
    if not (isinstance(shape, list) and len(shape) <= MAX_NDIM
            and all(isinstance(s, int) and not isinstance(s, bool) and 0 <= s < 2**40 for s in shape)):
        raise WireError("bad array shape")
    n = 1
    for s in shape:
        n *= s
    if n * dtype.itemsize != len(buffers[i]):
        raise WireError("array shape and buffer size disagree")
    return np.frombuffer(buffers[i], dtype=dtype).reshape(tuple(shape)).astype(dtype.newbyteorder("="), copy=True)


def unpack(frame: bytes) -> dict:
    """One student -> grader frame (without its length prefix) as a header dict with the
    ``$buffers`` replaced by the buffers themselves under ``buffers``."""
    if len(frame) < 4:
        raise WireError("short frame")
    (hlen,) = struct.unpack("!I", frame[:4])
    if hlen > MAX_HEADER or 4 + hlen > len(frame):
        raise WireError("bad header length")
    try:
        header = json.loads(frame[4:4 + hlen].decode("utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise WireError(f"header is not JSON ({type(exc).__name__})") from None
    if not isinstance(header, dict) or not isinstance(header.get("$buffers"), list):
        raise WireError("header is not a message")
    lens = header.pop("$buffers")
    if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in lens):
        raise WireError("bad buffer lengths")
    if 4 + hlen + sum(lens) != len(frame):
        raise WireError("buffers do not match the frame length")
    pos, buffers = 4 + hlen, []
    for n in lens:
        buffers.append(frame[pos:pos + n])
        pos += n
    header["buffers"] = buffers
    return header


# ---------------------------------------------------------------------------------------------
# framing on a socket
# ---------------------------------------------------------------------------------------------
def send_frame(sock: socket.socket, payload: bytes) -> None:
    """``!Q`` length + payload."""
    sock.sendall(struct.pack("!Q", len(payload)) + payload)


def recv_exact(sock: socket.socket, n: int) -> bytes:
    chunks, got = [], 0
    while got < n:
        chunk = sock.recv(min(n - got, 1 << 20))
        if not chunk:
            raise EOFError("connection closed")
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def recv_frame_blocking(sock: socket.socket, limit: int = 1 << 34) -> bytes:
    (n,) = struct.unpack("!Q", recv_exact(sock, 8))
    if n > limit:
        raise TooLarge(f"frame of {n} bytes")
    return recv_exact(sock, n)


def recv_pickle(sock: socket.socket):
    """Student side: read a grader -> student request (pickle: the grader is trusted)."""
    return pickle.loads(recv_frame_blocking(sock))


def error(kind, message, where="") -> dict:
    """The one shape of an error record that crosses from the student's side (type, message,
    where: clean strings of at most 2000 characters), also when built from what the student's side sent."""
    return {"type": clean(str(kind or ""))[:100], "message": clean(str(message or ""))[:2000],
            "where": clean(str(where or ""))[:2000]}


def error_record(exc: BaseException, where: str = "") -> dict:
    """:func:`error` for an exception."""
    try:
        message = str(exc)
    except BaseException:  # noqa: BLE001 - a student exception whose __str__ raises
        message = "(its message could not be read)"
    return error(type(exc).__name__, message, where)


# ---------------------------------------------------------------------------------------------
# framing: grader -> student requests, and the grader's reading of frames (non-blocking)
# ---------------------------------------------------------------------------------------------
def request_frame(obj) -> bytes:
    """A grader -> student request: ``!Q`` length + pickle (read by :func:`recv_pickle`)."""
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    return struct.pack("!Q", len(data)) + data


class FrameBuffer:
    """Bytes read from a student process, cut into frames (``!Q`` length + payload); a frame
    announced larger than :data:`MAX_FRAME` raises :class:`TooLarge` before it is buffered."""

    def __init__(self):
        self.buf = bytearray()

    def feed(self, chunk: bytes) -> None:
        self.buf += chunk

    def next(self) -> bytes | None:
        if len(self.buf) < 8:
            return None
        (n,) = struct.unpack("!Q", self.buf[:8])
        if n > MAX_FRAME:
            raise TooLarge(f"a message of {n} bytes")
        if len(self.buf) < 8 + n:
            return None
        frame = bytes(self.buf[8:8 + n])
        del self.buf[:8 + n]
        return frame
