"""Problem statements shown in the prompts (written for tttd from AHC.md, not copied).

Only what the official statements say (rules, scoring, input format and how inputs are generated):
no hint derived from results (how well strong solutions score), which neither the contest nor the
authors' prompt gives (issue 20)."""

AHC039 = """\
# AHC039 "Purse Seine Fishing" (AtCoder Heuristic Contest 039)

There are N = 5000 mackerels and N = 5000 sardines at distinct integer points of the square
0 <= x, y <= 100000. Build ONE net: a simple polygon whose edges are all parallel to the axes,
with at most 1000 vertices, every coordinate an integer in [0, 100000], and total perimeter at most
400000. Score of a case: max(0, a - b + 1), where a (b) is the number of mackerels (sardines)
inside the polygon or on its boundary. Maximise the total over many cases.

Input (stdin):
```
N
x_0 y_0
...
x_{2N-1} y_{2N-1}
```
Points 0..N-1 are mackerels, N..2N-1 sardines. Each group is a mixture of 10-25 Gaussian
clusters (centres in [20000, 80000]^2, standard deviations 1000-5000).

Output (stdout): one or more polygons; only the LAST one is scored, but every one must be valid
tokens. Each polygon is a vertex count m (4 <= m <= 1000) followed by m lines `x y`, listed
clockwise or counter-clockwise. Consecutive vertices must differ and every edge must be
horizontal or vertical; the polygon must not touch or cross itself (non-adjacent edges may not
even touch); the perimeter must be <= 400000. An invalid polygon makes the case (and the whole
submission) score 0.
"""

AHC058 = """\
# AHC058 "Apple Production" (AtCoder Heuristic Contest 058)

You run an apple business for T = 500 turns with N = 10 kinds of machines at L = 4 levels.
Machine (i, j) (level i, id j) can be bought repeatedly; its k-th purchase costs C[i][j] * k
apples (the price grows linearly with how many you already own, P[i][j]). Start with K = 1 apple,
B[i][j] = 1 and P[i][j] = 0 for all machines.

Each turn t = 0..T-1: first do at most one action, either nothing or buy one machine (i, j) if you
can afford C[i][j] * (P[i][j] + 1) apples; then production happens, for i = 0..3 in order, j = 0..9:
- level 0: apples += A[j] * B[0][j] * P[0][j];
- level i >= 1: B[i-1][j] += B[i][j] * P[i][j] (higher levels multiply the machines below).
Score of a case: round(100000 * log2(apples at the end)). Maximise the total over many cases.

Input (stdin):
```
N L T K
A_0 ... A_{N-1}
C_{0,0} ... C_{0,N-1}
...
C_{L-1,0} ... C_{L-1,N-1}
```
A is non-decreasing with A_0 = 1 and A_j <= 100; 1 <= C[i][j] <= 1.25e12, C[0][0] = 1; level-i
prices are about A_j * 500^i times a factor in [1, 100].

Output (stdout): exactly T lines, one action per turn: `-1` (do nothing) or `i j` (buy machine
(i, j)). Buying what you cannot afford, a malformed line or fewer than T actions makes the case
(and the whole submission) score 0.
"""

STATEMENTS = {"ahc039": AHC039, "ahc058": AHC058}
