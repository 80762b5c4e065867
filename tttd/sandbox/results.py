"""Data crossing the sandbox boundary, on the trusted side: encode inputs, strictly decode results.

Results never touch the host filesystem: the harness streams one *frame* through a pipe that the
parent reads while the run goes on, stopping (and rejecting the run) as soon as more than the
task's declared maximum (``limits.result_mb``) has arrived, so an oversized result is never held
in full nor decoded. A frame is::

    b"TTR1" + token (16 ASCII bytes) + JSON length (8 bytes, big-endian) + JSON + payload

Program mode: the JSON is ``{"value": tree, "arrays": [{"dtype", "shape"}, ...]}`` where each
numpy array in ``tree`` is the placeholder ``{"__tttd_array__": i}``; the payload is the arrays'
raw little-endian bytes, concatenated. Command mode: the JSON is ``{"exit": int|null, "signal":
int|null, "result": "absent"|"present"|reason}`` and the payload is the command's result file.

Decoding (:func:`decode_frame`, :func:`decode_program`, :func:`decode_command`) never raises
anything but :class:`BadData` (with a reason): truncated or forged frames, a wrong token, absurd
shapes or dtypes (numeric/bool whitelist only), sizes that disagree with dtype x shape, JSON too
deep, too long or with too many elements; no pickle, no eval.

NaN and +-inf: allowed as data. The JSON tokens ``NaN``, ``Infinity`` and ``-Infinity`` decode to
``float('nan')``, ``float('inf')`` and ``float('-inf')`` (always; nothing else non-standard is
accepted); arrays keep their NaN/inf values. Verifiers that need finite data call
:func:`finite_array` (or :func:`math.isfinite`) themselves.
"""

from __future__ import annotations

import json
import math
import os
import struct
from typing import Any

ARRAY_KEY = "__tttd_array__"
ALLOWED_DTYPES = frozenset(
    ["|b1", "|i1", "|u1"]
    + [f"<{k}{n}" for k in "iu" for n in (2, 4, 8)]
    + ["<f2", "<f4", "<f8", "<c8", "<c16"]
)
MAX_DEPTH = 64
MAX_ELEMENTS = 2_000_000
MAX_JSON_BYTES = 16 * 2**20
MAX_DIMS = 32
MAX_DIM = 2**40  # any single dimension larger than this is absurd (and overflows numpy)
MAGIC = b"TTR1"
TOKEN_LEN = 16
HEADER_LEN = len(MAGIC) + TOKEN_LEN + 8
FRAME_OVERHEAD = 1 << 20  # beyond result_mb: the frame header and the JSON of array headers
_CONSTANTS = {"NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf")}


class BadData(ValueError):
    """Returned data that breaks the format, a size limit or a type rule."""


def _parse_constant(token: str) -> float:
    return _CONSTANTS[token]


def _is_ndarray(x: Any) -> bool:
    t = type(x)
    return t.__module__ == "numpy" and t.__name__ == "ndarray"


def encode_inputs(tree: Any, arrays: list, what: str, depth: int = 0) -> Any:
    """Trusted inputs (args, injected globals) -> JSON-able tree; arrays appended to ``arrays``.

    Raises ValueError naming ``what`` for anything that is not data.
    """
    if depth > MAX_DEPTH:
        raise ValueError(f"{what}: nested deeper than {MAX_DEPTH} levels")
    if tree is None or isinstance(tree, (bool, int, float, str)):
        return tree
    if isinstance(tree, (list, tuple)):
        return [encode_inputs(v, arrays, what, depth + 1) for v in tree]
    if isinstance(tree, dict):
        out = {}
        for k, v in tree.items():
            if not isinstance(k, str):
                raise ValueError(f"{what}: dict keys must be str, got {type(k).__name__}")
            if k == ARRAY_KEY:
                raise ValueError(f"{what}: the key {ARRAY_KEY!r} is reserved")
            out[k] = encode_inputs(v, arrays, what, depth + 1)
        return out
    if _is_ndarray(tree) or type(tree).__module__ == "numpy":
        import numpy as np

        arr = np.asarray(tree)
        if arr.ndim == 0 and not _is_ndarray(tree):  # numpy scalar -> Python scalar
            return encode_inputs(arr.item(), arrays, what, depth)
        arr = np.ascontiguousarray(arr, dtype=arr.dtype.newbyteorder("<") if arr.dtype.byteorder == ">" else arr.dtype)
        if arr.dtype.str not in ALLOWED_DTYPES:
            raise ValueError(f"{what}: numpy dtype {arr.dtype} is not numeric/bool data")
        arrays.append(arr)
        return {ARRAY_KEY: len(arrays) - 1}
    raise ValueError(f"{what}: {type(tree).__name__} is not data (JSON values and numpy arrays only)")


def check_tree(tree: Any, arrays: list | None = None) -> Any:
    """Check a parsed JSON tree (depth, element count) and replace array placeholders by
    ``arrays[i]`` (each used at most once). Iterative: never recurses on candidate data."""
    count = 0
    used: set[int] = set()

    def sub(x: Any) -> Any:
        if type(x) is dict and ARRAY_KEY in x:
            i = x[ARRAY_KEY]
            if arrays is None or len(x) != 1 or type(i) is not int or not 0 <= i < len(arrays) or i in used:
                raise BadData(f"bad array reference {x!r:.80}")
            used.add(i)
            return arrays[i]
        return x

    root = [sub(tree)]
    stack = [(root, 0)]
    while stack:
        container, depth = stack.pop()
        items = container.items() if type(container) is dict else enumerate(container)
        for k, v in list(items):
            count += 1
            if count > MAX_ELEMENTS:
                raise BadData(f"returned data has more than {MAX_ELEMENTS} elements")
            if type(v) in (dict, list):
                v = sub(v)
                container[k] = v
                if type(v) in (dict, list):
                    if depth + 1 > MAX_DEPTH:
                        raise BadData(f"returned data nested deeper than {MAX_DEPTH} levels")
                    stack.append((v, depth + 1))
            elif not (v is None or type(v) in (bool, int, float, str)):
                if not _is_ndarray(v):
                    raise BadData(f"unexpected {type(v).__name__} in returned data")
    return root[0]


def parse_json(text: bytes | memoryview, max_bytes: int = MAX_JSON_BYTES) -> Any:
    """Strictly parse candidate-written JSON (bounded size; NaN/Infinity allowed). BadData otherwise."""
    if len(text) > max_bytes:
        raise BadData(f"JSON of {len(text)} bytes is over the limit of {max_bytes}")
    try:
        return json.loads(bytes(text), parse_constant=_parse_constant)
    except RecursionError:
        raise BadData(f"JSON nested deeper than the parser allows (limit {MAX_DEPTH})") from None
    except (ValueError, UnicodeDecodeError, TypeError) as e:
        raise BadData(f"malformed JSON: {str(e)[:200]}") from None


def decode_frame(buf: bytes | bytearray, token: str, max_json: int = MAX_JSON_BYTES) -> tuple[Any, memoryview]:
    """Split a frame into (parsed JSON document, payload view). BadData for anything malformed."""
    if len(buf) == 0:
        raise BadData("no result")
    if len(buf) < HEADER_LEN or bytes(buf[:len(MAGIC)]) != MAGIC:
        raise BadData("the result frame is truncated or forged (bad header)")
    if bytes(buf[len(MAGIC):len(MAGIC) + TOKEN_LEN]) != token.encode("ascii"):
        raise BadData("the result frame carries the wrong token")
    (n,) = struct.unpack_from(">Q", buf, len(MAGIC) + TOKEN_LEN)
    if n > min(max_json, len(buf) - HEADER_LEN):
        raise BadData(f"the result frame announces {n} bytes of JSON, more than it holds or allows")
    view = memoryview(buf)
    doc = parse_json(view[HEADER_LEN:HEADER_LEN + n], max_json)
    return doc, view[HEADER_LEN + n:]


def decode_program(doc: Any, payload: memoryview) -> Any:
    """A program-mode result: the value with its arrays (numpy views on the received buffer)."""
    try:
        return _decode_program(doc, payload)
    except BadData:
        raise
    except Exception as e:  # anything the checks above missed is still only bad data
        raise BadData(f"undecodable result ({type(e).__name__}: {str(e)[:200]})") from None


def _decode_program(doc: Any, payload: memoryview) -> Any:
    import numpy as np

    if type(doc) is not dict or set(doc) != {"value", "arrays"} or type(doc["arrays"]) is not list:
        raise BadData("result document has the wrong shape")
    metas = doc["arrays"]
    if len(metas) > 10_000:
        raise BadData("too many arrays in the result")
    arrays, offset = [], 0
    for i, meta in enumerate(metas):
        if type(meta) is not dict or set(meta) != {"dtype", "shape"}:
            raise BadData(f"bad header for array {i}")
        dtype, shape = meta["dtype"], meta["shape"]
        if type(dtype) is not str or dtype not in ALLOWED_DTYPES:
            raise BadData(f"array dtype {dtype!r:.40} is not allowed (numeric/bool only)")
        if type(shape) is not list or len(shape) > MAX_DIMS \
                or any(type(s) is not int or not 0 <= s <= MAX_DIM for s in shape):
            raise BadData(f"bad array shape {shape!r:.80}")
        dt = np.dtype(dtype)
        nbytes = math.prod(shape) * dt.itemsize
        if offset + nbytes > len(payload):
            raise BadData(f"array {i} {dtype}{tuple(shape)} needs {nbytes} bytes; the result holds "
                          f"{len(payload) - offset} more")
        arrays.append(np.frombuffer(payload[offset:offset + nbytes], dtype=dt).reshape(shape))
        offset += nbytes
    if offset != len(payload):
        raise BadData(f"{len(payload) - offset} unexpected bytes after the arrays")
    return check_tree(doc["value"], arrays)


def decode_command(doc: Any, payload: memoryview, max_json: int = MAX_JSON_BYTES) -> tuple[dict, Any, str]:
    """A command-mode report: ({"exit", "signal", "result"}, parsed result file or None, reason the
    result file was rejected or ""). BadData only when the report itself is malformed."""
    if type(doc) is not dict or set(doc) != {"exit", "signal", "result"} \
            or not all(doc[k] is None or type(doc[k]) is int for k in ("exit", "signal")) \
            or type(doc["result"]) is not str:
        raise BadData("command report has the wrong shape")
    if doc["result"] != "present":
        if len(payload):
            raise BadData("unexpected bytes after the command report")
        return doc, None, "" if doc["result"] == "absent" else doc["result"][:300]
    try:
        return doc, check_tree(parse_json(payload, max_json)), ""
    except BadData as e:
        return doc, None, str(e)
    except Exception as e:
        return doc, None, f"undecodable result file ({type(e).__name__})"


def finite_array(x: Any, name: str = "value", ndim: int | None = None):
    """``x`` as a float64 array, or ValueError if it is not numeric, has NaN/inf, or the wrong
    number of dimensions. For verifiers, on data returned from the sandbox."""
    import numpy as np

    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{name} is not a numeric array: {e}") from None
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimension(s), got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return arr


def _read_exact(fd: int, size: int) -> bytes:
    chunks, left = [], size
    while left > 0:
        b = os.read(fd, min(left, 1 << 20))
        if not b:
            break
        chunks.append(b)
        left -= len(b)
    return b"".join(chunks)


def read_tail(fd: int, cap: int) -> tuple[str, int]:
    """The last ``cap`` bytes of an open file, decoded leniently, and how many bytes were cut
    before them. Never reads more than ``cap`` bytes."""
    size = os.fstat(fd).st_size
    start = max(0, size - cap)
    os.lseek(fd, start, os.SEEK_SET)
    data = _read_exact(fd, min(cap, size - start))
    return data.decode("utf-8", errors="replace"), start
