"""The random primitives of the two AHC generators, ported from their Rust definitions.

The official generators use ``ChaCha20Rng::seed_from_u64`` (rand_chacha 0.3.1) and rand 0.8.5 /
rand_distr 0.4.3 samplers. This module reimplements exactly the parts they use (AHC.md section 3)
so that :mod:`tttd.tasks.ahc.generators` reproduces the public inputs byte for byte:

- :class:`ChaCha` is the keystream as consecutive little-endian u32 words (blocks computed with
  numpy, many at a time, so a 120 kB AHC039 case takes milliseconds, not seconds);
- ``int_incl``, ``f64``, ``u52``, ``unif_incl``, ``weighted`` and ``normal`` are the samplers.

The Ziggurat tables of ``normal`` are computed here from their defining recurrence (Marsaglia and
Tsang's construction with R = 3.654152885361008796 and V = 0.00492867323399, 256 layers), which
is how rand_distr generated its table file; the digest test over all 150 AHC039 public inputs
checks that the result is bit-identical where it matters.
"""

from __future__ import annotations

import bisect
import math
import struct

import numpy as np

_M64 = (1 << 64) - 1
_M32 = (1 << 32) - 1


def _pcg_key(seed: int) -> list[int]:
    """rand_core's ``seed_from_u64``: 8 PCG32 outputs form the 32-byte key (as 8 LE u32 words)."""
    st = seed & _M64
    words = []
    for _ in range(8):
        st = (st * 6364136223846793005 + 11634580027462260723) & _M64
        xs = (((st >> 18) ^ st) >> 27) & _M32
        rot = st >> 59
        words.append(((xs >> rot) | (xs << ((32 - rot) & 31))) & _M32)
    return words


def _rotl(x: np.ndarray, n: int) -> np.ndarray:
    return (x << np.uint32(n)) | (x >> np.uint32(32 - n))


def chacha20_blocks(key: list[int], first: int, count: int) -> np.ndarray:
    """``count`` ChaCha20 blocks (20 rounds, 64-bit counter from ``first``, nonce 0) as a flat
    uint32 array of 16 * count words, in stream order."""
    ctr = np.arange(first, first + count, dtype=np.uint64)
    init = np.empty((16, count), dtype=np.uint32)
    init[0:4] = np.array([0x61707865, 0x3320646E, 0x79622D32, 0x6B206574], dtype=np.uint32)[:, None]
    init[4:12] = np.array(key, dtype=np.uint32)[:, None]
    init[12] = (ctr & np.uint64(_M32)).astype(np.uint32)
    init[13] = (ctr >> np.uint64(32)).astype(np.uint32)
    init[14] = 0
    init[15] = 0
    x = [init[i].copy() for i in range(16)]

    def qr(a: int, b: int, c: int, d: int) -> None:
        x[a] += x[b]; x[d] = _rotl(x[d] ^ x[a], 16)  # noqa: E702
        x[c] += x[d]; x[b] = _rotl(x[b] ^ x[c], 12)  # noqa: E702
        x[a] += x[b]; x[d] = _rotl(x[d] ^ x[a], 8)  # noqa: E702
        x[c] += x[d]; x[b] = _rotl(x[b] ^ x[c], 7)  # noqa: E702

    for _ in range(10):
        qr(0, 4, 8, 12); qr(1, 5, 9, 13); qr(2, 6, 10, 14); qr(3, 7, 11, 15)  # noqa: E702
        qr(0, 5, 10, 15); qr(1, 6, 11, 12); qr(2, 7, 8, 13); qr(3, 4, 9, 14)  # noqa: E702
    out = np.stack(x) + init
    return out.T.reshape(-1)


class ChaCha:
    """``ChaCha20Rng::seed_from_u64(seed)`` read as a stream of u32 words."""

    CHUNK = 256  # blocks computed per refill

    def __init__(self, seed: int):
        self._key = _pcg_key(seed)
        self._next_block = 0
        self._buf: list[int] = []
        self._pos = 0

    def _refill(self) -> None:
        rest = self._buf[self._pos:]
        blocks = chacha20_blocks(self._key, self._next_block, self.CHUNK)
        self._next_block += self.CHUNK
        self._buf = rest + blocks.tolist()
        self._pos = 0

    def u32(self) -> int:
        if self._pos >= len(self._buf):
            self._refill()
        v = self._buf[self._pos]
        self._pos += 1
        return v

    def u64(self) -> int:
        if self._pos + 1 >= len(self._buf):
            self._refill()
        lo, hi = self._buf[self._pos], self._buf[self._pos + 1]
        self._pos += 2
        return lo | (hi << 32)


# ------------------------------------------------------------------------------ float helpers

def _bits_to_f64(bits: int) -> float:
    return struct.unpack("<d", struct.pack("<Q", bits))[0]


def _f64_to_bits(x: float) -> int:
    return struct.unpack("<Q", struct.pack("<d", x))[0]


def _step_down(x: float) -> float:
    """The next smaller positive double (rand's ``decrease_masked``: bits - 1)."""
    return _bits_to_f64(_f64_to_bits(x) - 1)


def round_half_away(x: float) -> int:
    """Rust's ``f64::round``: half away from zero (Python's round() is half to even)."""
    t = math.trunc(x)
    if abs(x - t) >= 0.5:
        t += 1 if x > 0 else -1
    return int(t)


_ONE_MINUS_EPS = 1.0 - 2.0 ** -52  # rand's max_rand for f64 samplers


# ------------------------------------------------------------------------------ samplers

def int_incl(r: ChaCha, lo: int, hi: int) -> int:
    """``gen_range(lo..=hi)`` for i32 (widening-multiply rejection sampling on u32)."""
    rng = (hi - lo + 1) & _M32
    zone = ((rng << (32 - rng.bit_length())) - 1) & _M32
    while True:
        p = r.u32() * rng
        if (p & _M32) <= zone:
            return lo + (p >> 32)


def f64(r: ChaCha) -> float:
    """``gen::<f64>()``: 53 high bits, in [0, 1)."""
    return (r.u64() >> 11) * (2.0 ** -53)


_P52, _P51, _P53 = 2.0 ** -52, 2.0 ** -51, 2.0 ** -53


def u52(r: ChaCha) -> float:
    """A double in [1, 2) from 52 random bits, minus 1.0 (= m * 2^-52 exactly, m the 52 bits)."""
    return (r.u64() >> 12) * _P52


def _float_scale(lo: float, hi: float, inclusive: bool) -> float:
    s = (hi - lo) / _ONE_MINUS_EPS if inclusive else (hi - lo)
    while (s * _ONE_MINUS_EPS + lo > hi) if inclusive else (s * _ONE_MINUS_EPS + lo >= hi):
        s = _step_down(s)
    return s


def unif_incl(r: ChaCha, lo: float, hi: float) -> float:
    """``gen_range(lo..=hi)`` for f64."""
    return u52(r) * _float_scale(lo, hi, True) + lo


class Weighted:
    """``WeightedIndex::new(w)`` (f64 weights) and its ``sample``."""

    def __init__(self, weights: list[float]):
        total = weights[0]
        cum = []
        for w in weights[1:]:
            cum.append(total)
            total += w
        self.cum, self.total = cum, total
        self.scale = _float_scale(0.0, total, False)

    def sample(self, r: ChaCha) -> int:
        z = u52(r) * self.scale + 0.0
        return bisect.bisect_right(self.cum, z)  # partition_point(c <= z)


# ------------------------------------------------------------------------------ normal (Ziggurat)

ZIG_NORM_R = 3.654152885361008796
_ZIG_NORM_V = 0.00492867323399


def _ziggurat_tables() -> tuple[list[float], list[float]]:
    n = 256
    x = [0.0] * (n + 1)
    x[0] = _ZIG_NORM_V / math.exp(-ZIG_NORM_R * ZIG_NORM_R / 2.0)
    x[1] = ZIG_NORM_R
    for i in range(2, n):
        x[i] = math.sqrt(-2.0 * math.log(_ZIG_NORM_V / x[i - 1] + math.exp(-x[i - 1] * x[i - 1] / 2.0)))
    x[n] = 0.0
    f = [math.exp(-v * v / 2.0) for v in x]
    return x, f


ZIG_NORM_X, ZIG_NORM_F = _ziggurat_tables()


def normal(r: ChaCha) -> float:
    """``StandardNormal`` of rand_distr 0.4.3 (symmetric Ziggurat)."""
    X, F = ZIG_NORM_X, ZIG_NORM_F
    while True:
        b = r.u64()
        i = b & 0xFF
        u = (b >> 12) * _P51 - 1.0  # = double(bits (b>>12) | 2.0's exponent) - 3.0, exactly
        x = u * X[i]
        if abs(x) < X[i + 1]:
            return x
        if i == 0:
            xx, yy = 1.0, 0.0
            while -2.0 * yy < xx * xx:
                o1 = (r.u64() >> 12) * _P52 + _P53  # [1, 2) - (1 - 2^-53), exactly
                o2 = (r.u64() >> 12) * _P52 + _P53
                xx = math.log(o1) / ZIG_NORM_R
                yy = math.log(o2)
            return xx - ZIG_NORM_R if u < 0.0 else ZIG_NORM_R - xx
        if F[i + 1] + (F[i] - F[i + 1]) * f64(r) < math.exp(-x * x / 2.0):
            return x
