"""The PUCT score of DESIGN.md as pure functions over arrays (no archive state).

``score(s) = Q(s) + c * scale * P(s) * sqrt(1 + T) / (1 + n(s))``: Q the best child value (own
value until a child exists), P a linear rank prior, scale the value range of non-root states
(floored), n visits, T the total. Values are ORIENTED (higher is better); NaN marks an empty root,
which never outranks a real state (see :func:`puct_scores`). :mod:`tttd.archive` uses these.
"""

from __future__ import annotations

import math

import numpy as np

SCALE_FLOOR = 1e-6




def rank_prior(values: np.ndarray) -> np.ndarray:
    """Linear rank prior: rank 0 = best value; ``P_i = (N - rank_i) / (N (N + 1) / 2)``.

    NaN values (empty roots) take the last ranks; ties are broken stably (earlier index first).
    """
    v = np.asarray(values, dtype=np.float64)
    n = v.size
    if n == 0:
        return np.zeros(0)
    key = np.where(np.isnan(v), np.inf, -v)
    order = np.argsort(key, kind="stable")
    rank = np.empty(n, dtype=np.float64)
    rank[order] = np.arange(n, dtype=np.float64)
    return (n - rank) / (n * (n + 1) / 2.0)


def value_scale(values: np.ndarray, is_root: np.ndarray) -> float:
    """max - min of the values of non-root states if any, else of all non-NaN values; >= 1e-6."""
    v = np.asarray(values, dtype=np.float64)
    roots = np.asarray(is_root, dtype=bool)
    pool = v[~roots & ~np.isnan(v)]
    if pool.size == 0:
        pool = v[~np.isnan(v)]
    if pool.size == 0:
        return SCALE_FLOOR
    return max(float(pool.max() - pool.min()), SCALE_FLOOR)


def puct_scores(
    values: np.ndarray,
    best_child: np.ndarray,
    visits: np.ndarray,
    is_root: np.ndarray,
    total: float,
    c: float = 1.0,
) -> np.ndarray:
    """PUCT score of every state (higher = pick first).

    ``values``: each state's own ORIENTED value (higher is better), NaN for an empty root;
    ``best_child``: best direct child's oriented value, NaN if none; ``visits``: n(s);
    ``is_root``: bool mask; ``total``: T.

    Real states: ``Q + c * scale * P * sqrt(1 + T) / (1 + n)`` with ``Q = best_child`` if set,
    else the own value. Empty roots (NaN value) must never outrank a real state, so their score is
    placed strictly below the lowest real score, ordered among themselves by their exploration
    term: ``score = min_real - gap - (E_max - E_i)`` with ``E`` the exploration term and ``gap =
    1 + |min_real| * 1e-6``; with no real state at all their score is just ``E``. (At extreme
    magnitudes rounding can tie empty roots with each other; :meth:`Archive.select` additionally
    sorts empty roots after real states, so they never outrank one.)
    """
    v = np.asarray(values, dtype=np.float64)
    m = np.asarray(best_child, dtype=np.float64)
    n = np.asarray(visits, dtype=np.float64)
    roots = np.asarray(is_root, dtype=bool)
    if not (v.shape == m.shape == n.shape == roots.shape) or v.ndim != 1:
        raise ValueError(
            f"values, best_child, visits, is_root must be 1-D of one length; got shapes "
            f"{v.shape}, {m.shape}, {n.shape}, {roots.shape}"
        )
    if v.size == 0:
        return np.zeros(0)
    empty = np.isnan(v)
    if (empty & ~roots).any():
        raise ValueError("only roots may have no value (NaN); a non-root state has NaN")
    scale = value_scale(v, roots)
    prior = rank_prior(v)
    explore = c * scale * prior * math.sqrt(1.0 + float(total)) / (1.0 + n)
    q = np.where(np.isnan(m), v, m)
    scores = q + explore
    if empty.any():
        real = ~empty
        e_empty = explore[empty]
        if real.any():
            low = float(scores[real].min())
            gap = 1.0 + abs(low) * 1e-6
            scores[empty] = low - gap - (e_empty.max() - e_empty)
        else:
            scores[empty] = e_empty
    return scores
