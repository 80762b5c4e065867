"""The wire between the speed kit's controller and its worker (two processes in one jail).

Self-contained (stdlib; numpy/torch only when the data has them): the controller executes this
source privately and the worker's script starts with it, so both ends speak the same format
without importing tttd (the project checkout is not visible in the jail).

Messages: a 4-byte big-endian length, then that many bytes of JSON (at most :data:`MAX_MSG`).
Data: a tree of plain values whose arrays and tensors live in one shared region (an mmap'd file
on the CPU, a CUDA buffer shared by an IPC handle on a GPU), at 64-byte aligned offsets:

- ``{"t": "nd", "dtype": "<f8", "shape": [..], "off": N}`` a numpy array;
- ``{"t": "pt", "dtype": "float32", "shape": [..], "off": N}`` a torch tensor (on the region's device);
- ``{"t": "list"|"tuple", "v": [..]}``, ``{"t": "dict", "k": [..], "v": [..]}``;
- ``{"t": "s", "v": x}`` a scalar (None, bool, int, float, str).

The writer copies (``put``); the worker reads zero-copy views (``get(.., copy=False)``); the
controller reads private copies (``get(.., copy=True)``) and validates every node, since the
worker's answers are hostile: offsets outside the region, absurd shapes, unknown dtypes or a tree
too deep or too large are a :class:`WireError`.
"""

import json as _json
import os as _os
import struct as _struct
import sys as _sys

MAX_MSG = 1 << 20
MAX_NODES = 100_000
MAX_DEPTH = 32
ALIGN = 64
TORCH_DTYPES = ("float16", "bfloat16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "bool",
                "complex64", "complex128")


class WireError(Exception):
    """A malformed message or data tree (from the hostile end)."""


def pack_msg(obj) -> bytes:
    data = _json.dumps(obj, separators=(",", ":")).encode()
    return _struct.pack(">I", len(data)) + data


def write_all(fd, data) -> None:
    mv = memoryview(data)
    while mv:
        mv = mv[_os.write(fd, mv):]


def read_msg(fd):
    """Blocking read of one message (the worker's side); None at end of file."""
    head = _read_exact(fd, 4)
    if head is None:
        return None
    n = _struct.unpack(">I", head)[0]
    if n > MAX_MSG:
        raise WireError(f"message of {n} bytes")
    body = _read_exact(fd, n)
    if body is None:
        return None
    return _json.loads(body)


def _read_exact(fd, n):
    chunks, left = [], n
    while left:
        b = _os.read(fd, left)
        if not b:
            return None
        chunks.append(b)
        left -= len(b)
    return b"".join(chunks)


def _align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


def nbytes_of(x) -> int:
    """Bytes the arrays/tensors of ``x`` take in the region (aligned)."""
    np = _sys.modules.get("numpy")
    torch = _sys.modules.get("torch")
    if torch is not None and isinstance(x, torch.Tensor):
        return _align(x.numel() * x.element_size())
    if np is not None and isinstance(x, np.ndarray):
        return _align(x.nbytes)
    if isinstance(x, (list, tuple)):
        return sum(nbytes_of(v) for v in x)
    if isinstance(x, dict):
        return sum(nbytes_of(v) for v in x.values())
    return 0


class Region:
    """The shared bytes: ``buf`` is a writable buffer (mmap) on the CPU or a CUDA uint8 tensor."""

    def __init__(self, buf, size: int, cuda: bool = False):
        self.buf, self.size, self.cuda = buf, size, cuda
        self._u8 = None  # CPU: one byte view of the whole region, made at the first write

    def _bytes(self, off: int, n: int):
        torch = _sys.modules.get("torch")
        if self.cuda:
            return self.buf[off:off + n]
        if torch is not None:
            return torch.frombuffer(self.buf, dtype=torch.uint8, count=n, offset=off) if n else None
        return None

    def put(self, x, off: int, end: int):
        """Copy ``x`` into [off, end): (tree, next offset). Raises WireError when it does not fit."""
        np = _sys.modules.get("numpy")
        torch = _sys.modules.get("torch")
        t = type(x)
        if x is None or t in (bool, int, float, str):
            return {"t": "s", "v": x}, off
        if np is not None and isinstance(x, np.generic):
            return {"t": "s", "v": x.item()}, off
        if torch is not None and isinstance(x, torch.Tensor):
            n = x.numel() * x.element_size()
            if off + n > end:
                raise WireError(f"the data ({n} bytes at {off}) does not fit the shared region ({end} bytes)")
            dtype = str(x.dtype).replace("torch.", "")
            if n:
                src = x.detach().contiguous().reshape(-1).view(torch.uint8)
                if self.cuda:
                    self.buf[off:off + n].copy_(src)
                else:
                    self._bytes(off, n).copy_(src.cpu())
            return {"t": "pt", "dtype": dtype, "shape": list(x.shape), "off": off}, _align(off + n)
        if np is not None and isinstance(x, np.ndarray):
            a = np.ascontiguousarray(x)
            if a.dtype.kind not in "biufc":
                raise WireError(f"numpy dtype {a.dtype} is not numeric data")
            n = a.nbytes
            if off + n > end:
                raise WireError(f"the data ({n} bytes at {off}) does not fit the shared region ({end} bytes)")
            if n:
                if self.cuda:
                    self.buf[off:off + n].copy_(torch.from_numpy(a.reshape(-1).view(np.uint8)))
                else:
                    if self._u8 is None:
                        self._u8 = np.frombuffer(self.buf, dtype=np.uint8, count=self.size)
                    self._u8[off:off + n] = a.reshape(-1).view(np.uint8)
            return {"t": "nd", "dtype": a.dtype.str, "shape": list(a.shape), "off": off}, _align(off + n)
        if t in (list, tuple):
            items = []
            for v in x:
                node, off = self.put(v, off, end)
                items.append(node)
            return {"t": t.__name__, "v": items}, off
        if t is dict:
            ks, vs = [], []
            for k, v in x.items():
                if type(k) is not str:
                    raise WireError("dict keys must be str")
                node, off = self.put(v, off, end)
                ks.append(k)
                vs.append(node)
            return {"t": "dict", "k": ks, "v": vs}, off
        raise WireError(f"a {t.__module__}.{t.__name__} is not data (plain arrays, tensors, numbers, "
                        "tuples, lists and dicts only; subclasses and lazy objects are refused)")

    def get(self, tree, copy: bool, lo: int = 0, hi: int | None = None):
        """The data of ``tree``; every array must lie within [lo, hi)."""
        hi = self.size if hi is None else hi
        count = [0]
        return self._get(tree, copy, lo, hi, count, 0)

    def _get(self, node, copy, lo, hi, count, depth):
        count[0] += 1
        if count[0] > MAX_NODES or depth > MAX_DEPTH:
            raise WireError("the data tree is too large or too deep")
        if type(node) is not dict:
            raise WireError("malformed data tree")
        t = node.get("t")
        if t == "s":
            v = node.get("v")
            if v is not None and type(v) not in (bool, int, float, str):
                raise WireError("malformed scalar")
            return v
        if t in ("list", "tuple"):
            items = node.get("v")
            if type(items) is not list:
                raise WireError("malformed sequence")
            out = [self._get(v, copy, lo, hi, count, depth + 1) for v in items]
            return out if t == "list" else tuple(out)
        if t == "dict":
            ks, vs = node.get("k"), node.get("v")
            if type(ks) is not list or type(vs) is not list or len(ks) != len(vs) or \
                    not all(type(k) is str for k in ks):
                raise WireError("malformed dict")
            return {k: self._get(v, copy, lo, hi, count, depth + 1) for k, v in zip(ks, vs)}
        if t in ("nd", "pt"):
            return self._array(node, t, copy, lo, hi)
        raise WireError(f"unknown node type {t!r:.40}")

    def _array(self, node, t, copy, lo, hi):
        shape, off, dt = node.get("shape"), node.get("off"), node.get("dtype")
        if type(shape) is not list or len(shape) > 16 or not all(type(s) is int and 0 <= s < 2**40 for s in shape):
            raise WireError("malformed shape")
        if type(off) is not int or off < lo or off % ALIGN:
            raise WireError(f"offset {off!r:.40} outside the output region")
        numel = 1
        for s in shape:
            numel *= s
        if t == "pt":
            import torch

            if dt not in TORCH_DTYPES:
                raise WireError(f"dtype {dt!r:.40} is not allowed")
            dtype = getattr(torch, dt)
            n = numel * torch.empty((), dtype=dtype).element_size()
            if off + n > hi:
                raise WireError(f"a tensor of {n} bytes at {off} lies outside the region")
            if not n:
                return torch.empty(shape, dtype=dtype, device="cuda" if self.cuda else "cpu")
            raw = self.buf[off:off + n] if self.cuda else self._bytes(off, n)
            view = raw.view(dtype).view(shape)
            return view.clone() if copy else view
        import numpy as np

        try:
            dtype = np.dtype(dt)
        except TypeError:
            raise WireError(f"dtype {dt!r:.40} is not allowed") from None
        if dtype.kind not in "biufc" or type(dt) is not str:
            raise WireError(f"dtype {dt!r:.40} is not allowed")
        n = numel * dtype.itemsize
        if off + n > hi:
            raise WireError(f"an array of {n} bytes at {off} lies outside the region")
        if self.cuda:
            raw = self.buf[off:off + n].cpu().numpy() if n else np.empty(0, np.uint8)
            return raw.view(dtype).reshape(shape)
        a = np.frombuffer(self.buf, dtype=dtype, count=numel, offset=off).reshape(shape) if n else \
            np.empty(shape, dtype=dtype)
        return a.copy() if copy else a
