"""Recorded-candidate pool for benchmarks/ahc_bench.py: AHC039 C++ programs of varied quality.

Written for tttd (not taken from any contest entry), from the plain grid baseline
(``tttd/tasks/ahc/baselines/ahc039_grid.cpp``). Every program is one template with parameters:
the grid it counts fish on (``G`` x ``G`` cells), the best rectangle of cells found by a scan,
then an optional hill climb of the rectangle's four edges on the exact points (``ITERS`` random
moves of up to ``STEP``, each scored in full: more iterations = more CPU and usually a better
score), and an optional shrink that makes a program deliberately weak. Two carry bugs that fail
on some cases (a crash, a degenerate polygon), as real candidates do.
"""

from __future__ import annotations

TEMPLATE = r"""
#include <bits/stdc++.h>
using namespace std;
const int G = %(g)d, ITERS = %(iters)d, STEP = %(step)d, SHRINK = %(shrink)d, BUG = %(bug)d;
int n; vector<int> X, Y;
int count_in(int x0, int y0, int x1, int y1) {
    int s = 0;
    for (int i = 0; i < 2 * n; i++)
        if (X[i] >= x0 && X[i] <= x1 && Y[i] >= y0 && Y[i] <= y1) s += i < n ? 1 : -1;
    return s;
}
int main() {
    if (scanf("%%d", &n) != 1) return 1;
    X.resize(2 * n); Y.resize(2 * n);
    for (int i = 0; i < 2 * n; i++) scanf("%%d %%d", &X[i], &Y[i]);
    if (BUG == 1 && X[0] %% 11 == 0) { volatile int *p = nullptr; *p = 1; }
    const int W = (100000 + G - 1) / G;
    vector<vector<int>> cnt(G, vector<int>(G, 0)), pre(G + 1, vector<int>(G + 1, 0));
    for (int i = 0; i < 2 * n; i++) cnt[min(G - 1, X[i] / W)][min(G - 1, Y[i] / W)] += i < n ? 1 : -1;
    for (int i = 0; i < G; i++) for (int j = 0; j < G; j++)
        pre[i + 1][j + 1] = pre[i][j + 1] + pre[i + 1][j] - pre[i][j] + cnt[i][j];
    int best = INT_MIN, bx0 = 0, by0 = 0, bx1 = 1, by1 = 1;
    for (int x0 = 0; x0 < G; x0++) for (int x1 = x0 + 1; x1 <= G; x1++)
        for (int y0 = 0; y0 < G; y0++) for (int y1 = y0 + 1; y1 <= G; y1++) {
            int s = pre[x1][y1] - pre[x0][y1] - pre[x1][y0] + pre[x0][y0];
            if (s > best) { best = s; bx0 = x0; by0 = y0; bx1 = x1; by1 = y1; }
        }
    int r[4] = {bx0 * W, by0 * W, min(100000, bx1 * W), min(100000, by1 * W)};
    if (SHRINK) { int cx = (r[0] + r[2]) / 2, cy = (r[1] + r[3]) / 2;
        r[0] = (r[0] + cx) / 2; r[2] = (r[2] + cx) / 2; r[1] = (r[1] + cy) / 2; r[3] = (r[3] + cy) / 2; }
    mt19937 rng(12345);
    int cur = count_in(r[0], r[1], r[2], r[3]);
    for (int it = 0; it < ITERS; it++) {
        int k = rng() %% 4, d = (int)(rng() %% (2 * STEP + 1)) - STEP, old = r[k];
        r[k] = max(0, min(100000, r[k] + d));
        if (r[0] >= r[2] || r[1] >= r[3]) { r[k] = old; continue; }
        int s = count_in(r[0], r[1], r[2], r[3]);
        if (s >= cur) cur = s; else r[k] = old;
    }
    if (BUG == 2 && Y[1] %% 9 == 0) r[2] = r[0];
    printf("4\n%%d %%d\n%%d %%d\n%%d %%d\n%%d %%d\n", r[0], r[1], r[2], r[1], r[2], r[3], r[0], r[3]);
}
"""

#: name -> parameters; varied quality and CPU (iters)
CANDIDATES: dict[str, dict] = {
    "g5": dict(g=5, iters=0, step=0, shrink=0, bug=0),
    "g8": dict(g=8, iters=0, step=0, shrink=0, bug=0),
    "g10": dict(g=10, iters=0, step=0, shrink=0, bug=0),
    "g16": dict(g=16, iters=0, step=0, shrink=0, bug=0),
    "g20": dict(g=20, iters=0, step=0, shrink=0, bug=0),
    "g25": dict(g=25, iters=0, step=0, shrink=0, bug=0),
    "g32": dict(g=32, iters=0, step=0, shrink=0, bug=0),
    "g40": dict(g=40, iters=0, step=0, shrink=0, bug=0),
    "g50": dict(g=50, iters=0, step=0, shrink=0, bug=0),
    "g10_shrink": dict(g=10, iters=0, step=0, shrink=1, bug=0),
    "g20_shrink": dict(g=20, iters=0, step=0, shrink=1, bug=0),
    "g10_hc200": dict(g=10, iters=200, step=2000, shrink=0, bug=0),
    "g20_hc200": dict(g=20, iters=200, step=1000, shrink=0, bug=0),
    "g20_hc1000": dict(g=20, iters=1000, step=1000, shrink=0, bug=0),
    "g20_hc1000_s300": dict(g=20, iters=1000, step=300, shrink=0, bug=0),
    "g25_hc500": dict(g=25, iters=500, step=800, shrink=0, bug=0),
    "g32_hc1000": dict(g=32, iters=1000, step=500, shrink=0, bug=0),
    "g40_hc2000": dict(g=40, iters=2000, step=400, shrink=0, bug=0),
    "g50_hc3000": dict(g=50, iters=3000, step=300, shrink=0, bug=0),
    "g16_shrink_hc1000": dict(g=16, iters=1000, step=1500, shrink=1, bug=0),
    "bug_crash": dict(g=20, iters=200, step=1000, shrink=0, bug=1),
    "bug_degenerate": dict(g=25, iters=500, step=800, shrink=0, bug=2),
}


def source(name: str) -> str:
    return TEMPLATE % CANDIDATES[name]
