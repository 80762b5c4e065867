"""Trusted scorers of AHC039 and AHC058, written from AHC.md 1.4-1.5 and 2.3-2.5.

``score_case(problem, input_text, output_text)`` returns a :class:`CaseScore`: the case's score,
and for a rejected output the tester's message (``wrong answer: MSG`` without the prefix) with
score 0. Every rule of the official tester runs in its order and the first failure wins, with the
same message text. ``output_text`` may be ``bytes`` (invalid UTF-8 is ``not utf-8``) or ``str``.

These run in the trusted process on the candidate's captured stdout; nothing the candidate says
about its own score is ever read.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

#: Unicode White_Space (Rust's char::is_whitespace); U+001C..U+001F are NOT in it (Python's
#: str.split() would treat them as whitespace).
WHITESPACE = ("\t\n\x0b\x0c\r \x85\xa0\u1680" + "".join(chr(c) for c in range(0x2000, 0x200B))
              + "\u2028\u2029\u202f\u205f\u3000")
_SPLIT = re.compile("[" + re.escape(WHITESPACE) + "]+")
_INT = re.compile(r"[+-]?[0-9]+\Z")
_UINT = re.compile(r"\+?[0-9]+\Z")
I32 = (-(2**31), 2**31 - 1)
I64 = (-(2**63), 2**63 - 1)
U64 = (0, 2**64 - 1)


@dataclass(frozen=True)
class CaseScore:
    """A case's score; ``error`` is the tester's rejection message (then ``score`` is 0)."""

    score: int
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


class _Reject(Exception):
    pass


def split_tokens(text: str) -> list[str]:
    """Rust's ``split_whitespace``: tokens separated by Unicode White_Space."""
    return [t for t in _SPLIT.split(text) if t]


def _parse_int(tok: str, kind: tuple[int, int], unsigned: bool = False) -> int:
    if not (_UINT if unsigned else _INT).match(tok):
        raise _Reject(f"Parse error: {tok}")
    v = int(tok)
    if not kind[0] <= v <= kind[1]:
        raise _Reject(f"Parse error: {tok}")
    return v


def _ranged(v: int, lo: int, hi: int) -> int:
    if not lo <= v <= hi:
        raise _Reject(f"Out of range: {v}")
    return v


def _decode(output: str | bytes) -> str:
    if isinstance(output, (bytes, bytearray, memoryview)):
        try:
            return bytes(output).decode("utf-8")
        except UnicodeDecodeError:
            raise _Reject("not utf-8") from None
    return output


# ------------------------------------------------------------------------------------ AHC039

@lru_cache(maxsize=8)
def _fish039(input_text: str) -> tuple[np.ndarray, np.ndarray]:
    nums = np.array(input_text.split(), dtype=np.int64)
    n = int(nums[0])
    pts = nums[1:1 + 4 * n].reshape(2 * n, 2)
    return pts[:n].copy(), pts[n:].copy()


def _inside_reference(pts: np.ndarray, poly: np.ndarray) -> np.ndarray:
    """Which points are inside the rectilinear polygon (AHC.md 1.5): on an edge's closed bounding
    box, or an odd number of horizontal edges above with min(x) <= x < max(x). Brute force over
    all point/edge pairs; :func:`_inside` computes the same faster (the tests compare them)."""
    p, q = poly, np.roll(poly, -1, axis=0)
    lox, hix = np.minimum(p[:, 0], q[:, 0]), np.maximum(p[:, 0], q[:, 0])
    loy, hiy = np.minimum(p[:, 1], q[:, 1]), np.maximum(p[:, 1], q[:, 1])
    horiz = p[:, 1] == q[:, 1]
    hx0, hx1, hy = lox[horiz], hix[horiz], p[horiz, 1]
    out = np.zeros(len(pts), dtype=bool)
    step = max(1, 2_000_000 // max(1, len(poly)))
    for s in range(0, len(pts), step):
        x, y = pts[s:s + step, 0:1], pts[s:s + step, 1:2]
        on_edge = ((lox <= x) & (x <= hix) & (loy <= y) & (y <= hiy)).any(axis=1)
        cross = ((hy > y) & (hx0 <= x) & (x < hx1)).sum(axis=1)
        out[s:s + step] = on_edge | (cross % 2 == 1)
    return out


def _inside(pts: np.ndarray, poly: np.ndarray) -> np.ndarray:
    """:func:`_inside_reference`, by x-slabs: between two consecutive vertex x-coordinates the
    horizontal edges covering [x, x+1) are fixed, so a point's crossing count is a binary search
    among their sorted heights; only points sharing an x (y) with a vertical (horizontal) edge can
    lie on an edge."""
    p, q = poly, np.roll(poly, -1, axis=0)
    lox, hix = np.minimum(p[:, 0], q[:, 0]), np.maximum(p[:, 0], q[:, 0])
    loy, hiy = np.minimum(p[:, 1], q[:, 1]), np.maximum(p[:, 1], q[:, 1])
    horiz = p[:, 1] == q[:, 1]
    x, y = pts[:, 0], pts[:, 1]
    # crossings: slab k is [xs[k], xs[k+1]); a horizontal edge covers it iff x0 <= xs[k] < x1
    xs = np.unique(poly[:, 0])
    slab = np.searchsorted(xs, x, side="right") - 1  # -1: left of every vertex
    cross = np.zeros(len(pts), dtype=np.int64)
    hx0, hx1, hy = lox[horiz], hix[horiz], p[horiz, 1]
    order = np.argsort(slab, kind="stable")
    bounds = np.searchsorted(slab[order], np.arange(len(xs) + 1))
    for k in range(len(xs) - 1):
        lo, hi = bounds[k], bounds[k + 1]
        if lo == hi:
            continue
        ys = np.sort(hy[(hx0 <= xs[k]) & (xs[k] < hx1)])
        idx = order[lo:hi]
        cross[idx] = len(ys) - np.searchsorted(ys, y[idx], side="right")
    inside = cross % 2 == 1
    # on an edge: vertical edges (x equal, y within) and horizontal ones (y equal, x within)
    vert = ~horiz
    for mask, a, b, lo_b, hi_b, key in ((vert, x, y, loy, hiy, lox), (horiz, y, x, lox, hix, loy)):
        cand = np.nonzero(np.isin(a, key[mask]))[0]
        if len(cand) == 0:
            continue
        ea, elo, ehi = key[mask], lo_b[mask], hi_b[mask]
        for s in range(0, len(cand), 4096):
            c = cand[s:s + 4096]
            hit = ((a[c, None] == ea) & (elo <= b[c, None]) & (b[c, None] <= ehi)).any(axis=1)
            inside[c[hit]] = True
    return inside


def score_ahc039(input_text: str, output: str | bytes) -> CaseScore:
    try:
        tokens = split_tokens(_decode(output))
        last = None
        pos = 0
        while pos < len(tokens):
            m = _ranged(_parse_int(tokens[pos], I32), 4, 1000)
            pos += 1
            if pos + 2 * m > len(tokens):
                for tok in tokens[pos:]:  # a malformed or out-of-range token before EOF wins
                    _ranged(_parse_int(tok, I64), 0, 100000)
                raise _Reject("Unexpected EOF")
            vals = [_ranged(_parse_int(t, I64), 0, 100000) for t in tokens[pos:pos + 2 * m]]
            pos += 2 * m
            last = vals
        if last is None:
            return CaseScore(1)
        poly = np.array(last, dtype=np.int64).reshape(-1, 2)
        length = _check_polygon(poly)
        if length > 400000:
            raise _Reject(f"The length is too long: {length}.")
        mack, sard = _fish039(input_text)
        a = int(_inside(mack, poly).sum())
        b = int(_inside(sard, poly).sum())
        return CaseScore(max(0, a - b + 1))
    except _Reject as e:
        return CaseScore(0, str(e))


def _check_polygon(poly: np.ndarray) -> int:
    """The edge pass and the pair pass (AHC.md 1.4 steps 4-5); returns the total length."""
    m = len(poly)
    pts = [(int(x), int(y)) for x, y in poly]
    length = 0
    for i in range(m):
        p, q, r = pts[i], pts[(i + 1) % m], pts[(i + 2) % m]
        if p == q:
            raise _Reject("Two consecutive vertices share the same coordinates.")
        if p[0] == q[0]:
            length += abs(p[1] - q[1])
            if r[0] == q[0] and (p[1] - q[1]) * (r[1] - q[1]) > 0:
                raise _Reject("The polygon is self-intersecting.")
        elif p[1] == q[1]:
            length += abs(p[0] - q[0])
            if r[1] == q[1] and (p[0] - q[0]) * (r[0] - q[0]) > 0:
                raise _Reject("The polygon is self-intersecting.")
        else:
            raise _Reject(f"The {i}-th edge is not parallel to the axes. "
                          f"(({p[0]}, {p[1]}) - ({q[0]}, {q[1]}))")
    q = np.roll(poly, -1, axis=0)
    lox, hix = np.minimum(poly[:, 0], q[:, 0]), np.maximum(poly[:, 0], q[:, 0])
    loy, hiy = np.minimum(poly[:, 1], q[:, 1]), np.maximum(poly[:, 1], q[:, 1])
    # closed boxes meet iff max(lo) <= min(hi) on both axes, i.e. lo_i <= hi_j and lo_j <= hi_i
    meet = ((lox[:, None] <= hix[None, :]) & (lox[None, :] <= hix[:, None])
            & (loy[:, None] <= hiy[None, :]) & (loy[None, :] <= hiy[:, None]))
    idx = np.arange(m)
    for shift in (0, 1, m - 1):  # the edge itself and its two neighbours are not checked
        meet[idx, (idx + shift) % m] = False
    if meet.any():
        raise _Reject("The polygon is self-intersecting.")
    return length


# ------------------------------------------------------------------------------------ AHC058

@lru_cache(maxsize=256)
def _parse058(input_text: str) -> tuple[int, int, int, int, list[int], list[list[int]]]:
    v = [int(t) for t in input_text.split()]
    n, levels, turns, k = v[:4]
    a = v[4:4 + n]
    c = [v[4 + n + i * n: 4 + n + (i + 1) * n] for i in range(levels)]
    return n, levels, turns, k, a, c


def _wrap(v: int) -> int:
    return ((v + 2**63) & (2**64 - 1)) - 2**63


def score_ahc058(input_text: str, output: str | bytes) -> CaseScore:
    n, levels, turns, k, a, c = _parse058(input_text)
    try:
        text = _decode(output)
        actions: list[tuple[int, int] | None] = []
        for raw in text.split("\n"):
            if len(actions) >= turns:
                break
            line = raw.strip(WHITESPACE)
            if not line or line.startswith("#"):
                continue
            toks = split_tokens(line)
            level = _ranged(_parse_int(toks[0], I32), -1, levels - 1)
            used = 1
            if level == -1:
                act = None
            else:
                if len(toks) < 2:
                    raise _Reject("Unexpected EOF")
                j = _ranged(_parse_int(toks[1], U64, unsigned=True), 0, n - 1)
                used = 2
                act = (level, j)
            if len(toks) > used:
                raise _Reject(f"Too many tokens: {line}")
            actions.append(act)
        if len(actions) < turns:
            raise _Reject(f"Not enough actions: expected {turns}, got {len(actions)}")
        b = [[1] * n for _ in range(levels)]
        p = [[0] * n for _ in range(levels)]
        apples = k
        for t, act in enumerate(actions):
            if act is not None:
                i, j = act
                cost = _wrap(c[i][j] * (p[i][j] + 1))
                if apples < cost:
                    raise _Reject(f"Not enough apples at turn {t}: have {apples}, need {cost}")
                apples = _wrap(apples - cost)
                p[i][j] += 1
            for i in range(levels):
                bi, pi = b[i], p[i]
                if i == 0:
                    for j in range(n):
                        if pi[j]:
                            apples = _wrap(apples + _wrap(_wrap(a[j] * bi[j]) * pi[j]))
                else:
                    below = b[i - 1]
                    for j in range(n):
                        if pi[j]:
                            below[j] = _wrap(below[j] + _wrap(bi[j] * pi[j]))
        if apples <= 0:
            raise _Reject(f"Non-positive apples at the end: {apples}")
        from tttd.tasks.ahc.rng import round_half_away

        return CaseScore(round_half_away(100000.0 * math.log2(float(apples))))
    except _Reject as e:
        return CaseScore(0, str(e))


SCORERS = {"ahc039": score_ahc039, "ahc058": score_ahc058}


def score_case(problem: str, input_text: str, output_text: str | bytes) -> CaseScore:
    """Score one case of ``problem`` ("ahc039" or "ahc058") like the official tester."""
    if problem not in SCORERS:
        raise ValueError(f"unknown AHC problem {problem!r}; known: {', '.join(sorted(SCORERS))}")
    return SCORERS[problem](input_text, output_text)
