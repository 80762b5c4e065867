"""Data crossing the sandbox boundary, on the trusted side: encode inputs, strictly decode results.

Format (never pickle): a JSON document ``{"value": tree, "arrays": [{"dtype", "shape"}, ...]}``
where each numpy array in ``tree`` is the placeholder ``{"__tttd_array__": i}`` and its raw
little-endian bytes lie in the file ``<name>.<i>.bin`` next to the document. The trusted side picks
file names itself (from the index), checks every file is a regular file (no symlink, no FIFO) and
that its size is what dtype x shape says *before* reading it, and accepts only numeric/bool dtypes
from a whitelist. JSON text is bounded in bytes, nesting depth and element count.

NaN and +-inf: allowed as data. The JSON tokens ``NaN``, ``Infinity`` and ``-Infinity`` decode to
``float('nan')``, ``float('inf')`` and ``float('-inf')`` (always; nothing else non-standard is
accepted); arrays keep their NaN/inf values. Verifiers that need finite data call
:func:`finite_array` (or :func:`math.isfinite`) themselves.
"""

from __future__ import annotations

import json
import math
import os
import stat
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


def open_regular(path: str, max_bytes: int) -> tuple[int, int]:
    """Open ``path`` for reading only if it is a regular file (no symlink/FIFO) of at most
    ``max_bytes``; returns (fd, size). Raises BadData otherwise, FileNotFoundError if absent."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise BadData(f"{os.path.basename(path)} is not a regular file")
        if st.st_size > max_bytes:
            raise BadData(f"{os.path.basename(path)} has {st.st_size} bytes, over the limit of {max_bytes}")
        return fd, st.st_size
    except BaseException:
        os.close(fd)
        raise


def _read_exact(fd: int, size: int) -> bytes:
    chunks, left = [], size
    while left > 0:
        b = os.read(fd, min(left, 1 << 20))
        if not b:
            break
        chunks.append(b)
        left -= len(b)
    return b"".join(chunks)


def read_json(path: str, max_bytes: int) -> Any:
    """Strictly parse a candidate-written JSON file (bounded size, depth, element count)."""
    fd, size = open_regular(path, min(max_bytes, MAX_JSON_BYTES))
    try:
        text = _read_exact(fd, size)
    finally:
        os.close(fd)
    try:
        return json.loads(text, parse_constant=_parse_constant)
    except RecursionError:
        raise BadData(f"JSON nested deeper than the parser allows (limit {MAX_DEPTH})") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise BadData(f"malformed JSON: {e}") from None


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


def read_result(workdir: str, name: str, max_bytes: int) -> Any:
    """Decode the harness's result ``<name>.json`` (+ ``<name>.<i>.bin``) from ``workdir``."""
    doc = read_json(os.path.join(workdir, name + ".json"), max_bytes)
    if type(doc) is not dict or set(doc) != {"value", "arrays"} or type(doc["arrays"]) is not list:
        raise BadData("result document has the wrong shape")
    metas = doc["arrays"]
    if len(metas) > 10_000:
        raise BadData("too many arrays in the result")
    arrays, total = [], 0
    for i, meta in enumerate(metas):
        arrays.append(_read_array(workdir, f"{name}.{i}.bin", meta, max_bytes - total))
        total += arrays[-1].nbytes
    return check_tree(doc["value"], arrays)


def _read_array(workdir: str, fname: str, meta: Any, budget: int):
    import numpy as np

    if type(meta) is not dict or set(meta) != {"dtype", "shape"}:
        raise BadData(f"bad array header for {fname}")
    dtype, shape = meta["dtype"], meta["shape"]
    if dtype not in ALLOWED_DTYPES:
        raise BadData(f"array dtype {dtype!r:.40} is not allowed (numeric/bool only)")
    if type(shape) is not list or len(shape) > MAX_DIMS or any(type(s) is not int or s < 0 for s in shape):
        raise BadData(f"bad array shape {shape!r:.80}")
    dt = np.dtype(dtype)
    nbytes = math.prod(shape) * dt.itemsize
    if nbytes > budget:
        raise BadData(f"arrays in the result exceed the result limit ({nbytes} bytes for {fname})")
    fd, size = open_regular(os.path.join(workdir, fname), budget)
    try:
        if size != nbytes:
            raise BadData(f"{fname} has {size} bytes, expected {nbytes} for {dtype}{tuple(shape)}")
        buf = bytearray(nbytes)
        view, got = memoryview(buf), 0
        while got < nbytes:
            n = os.readv(fd, [view[got:]])
            if n == 0:
                raise BadData(f"{fname} is shorter than announced")
            got += n
    finally:
        os.close(fd)
    return np.frombuffer(buf, dtype=dt).reshape(shape)


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


def read_tail(fd: int, cap: int) -> tuple[str, int]:
    """The last ``cap`` bytes of an open file, decoded leniently, and how many bytes were cut
    before them. Never reads more than ``cap`` bytes."""
    size = os.fstat(fd).st_size
    start = max(0, size - cap)
    os.lseek(fd, start, os.SEEK_SET)
    data = _read_exact(fd, min(cap, size - start))
    return data.decode("utf-8", errors="replace"), start
