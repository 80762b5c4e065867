"""Recorded-candidate pool for benchmarks/ahc_bench.py: AHC058 C++ programs of varied quality.

Written for tttd (not taken from any contest entry). Every program is one template with
parameters: which machine levels it considers, how it values a purchase (a payback horizon), a
purchase threshold, when it stops buying, and an optional randomised search (``tries`` random
perturbations of those parameters, each simulated in full, best plan printed; more tries = more
CPU and usually a better score). Some are deliberately weak (level 0 only, early stop, high
threshold) and two carry bugs that fail on some cases (a crash, a short answer), as real
candidates do.
"""

from __future__ import annotations

TEMPLATE = r"""
#include <cstdio>
#include <cmath>
#include <vector>
#include <random>
#include <utility>
int N, L, T; long long K, A[10], C[4][10];
const int MAXLEV = %(maxlev)d, STOP = %(stop)d, TRIES = %(tries)d, BUG = %(bug)d;
const double H = %(h)r, THRESH = %(thresh)r, NOISE = %(noise)r;
double run(double h, double thresh, double noise, std::mt19937_64 &rng, std::vector<std::pair<int,int>> &plan) {
    long long B[4][10], P[4][10];
    for (int i = 0; i < 4; i++) for (int j = 0; j < 10; j++) { B[i][j] = 1; P[i][j] = 0; }
    long long apples = K;
    std::uniform_real_distribution<double> u(0.0, 1.0);
    plan.clear();
    for (int t = 0; t < T; t++) {
        double R = T - t - 1, best = thresh; int bi = -1, bj = -1;
        if (t < STOP) for (int i = 0; i <= MAXLEV; i++) for (int j = 0; j < N; j++) {
            long long cost = C[i][j] * (P[i][j] + 1);
            if (cost > apples) continue;
            double g;
            if (i == 0) g = A[j] * (double)B[0][j] * R;
            else if (i == 1) g = A[j] * (double)P[0][j] * B[1][j] * R * R / 2;
            else if (i == 2) g = A[j] * (double)P[0][j] * P[1][j] * B[2][j] * R * R * R / 6;
            else g = A[j] * (double)P[0][j] * P[1][j] * P[2][j] * B[3][j] * R * R * R * R / 24;
            double v = g * h / cost * (1.0 + noise * (u(rng) - 0.5));
            if (v > best) { best = v; bi = i; bj = j; }
        }
        if (bi >= 0) { apples -= C[bi][bj] * (P[bi][bj] + 1); P[bi][bj]++; }
        plan.push_back({bi, bj});
        for (int i = 0; i < 4; i++) for (int j = 0; j < N; j++) {
            if (i == 0) apples += A[j] * B[0][j] * P[0][j];
            else B[i - 1][j] += B[i][j] * P[i][j];
        }
    }
    return std::log2((double)apples);
}
int main() {
    if (scanf("%%d %%d %%d %%lld", &N, &L, &T, &K) != 4) return 1;
    for (int j = 0; j < N; j++) scanf("%%lld", &A[j]);
    for (int i = 0; i < L; i++) for (int j = 0; j < N; j++) scanf("%%lld", &C[i][j]);
    if (BUG == 1 && A[N - 1] > 90) { volatile int *p = nullptr; *p = 1; }
    std::mt19937_64 rng(12345);
    std::vector<std::pair<int,int>> plan, best_plan;
    double best = run(H, THRESH, TRIES ? 0.0 : NOISE, rng, best_plan);
    std::uniform_real_distribution<double> u(0.0, 1.0);
    for (int k = 0; k < TRIES; k++) {
        double h = H * std::exp(u(rng) - 0.5), th = THRESH * std::exp(u(rng) - 0.5);
        double s = run(h, th, NOISE, rng, plan);
        if (s > best) { best = s; best_plan = plan; }
    }
    int lines = (int)best_plan.size();
    if (BUG == 2 && C[3][0] %% 7 == 0) lines--;
    for (int t = 0; t < lines; t++) {
        if (best_plan[t].first < 0) puts("-1"); else printf("%%d %%d\n", best_plan[t].first, best_plan[t].second);
    }
}
"""

#: name -> parameters; varied quality and CPU (tries)
CANDIDATES: dict[str, dict] = {
    "l0_greedy": dict(maxlev=0, stop=500, tries=0, bug=0, h=1.0, thresh=1.0, noise=0.0),
    "l0_short_horizon": dict(maxlev=0, stop=500, tries=0, bug=0, h=0.3, thresh=1.0, noise=0.0),
    "l0_stop200": dict(maxlev=0, stop=200, tries=0, bug=0, h=1.0, thresh=1.0, noise=0.0),
    "l0_stop50": dict(maxlev=0, stop=50, tries=0, bug=0, h=1.0, thresh=1.0, noise=0.0),
    "l0_picky": dict(maxlev=0, stop=500, tries=0, bug=0, h=1.0, thresh=20.0, noise=0.0),
    "l1_greedy": dict(maxlev=1, stop=500, tries=0, bug=0, h=1.0, thresh=1.0, noise=0.0),
    "l1_t10": dict(maxlev=1, stop=500, tries=0, bug=0, h=1.0, thresh=10.0, noise=0.0),
    "l2_h0.2_t3": dict(maxlev=2, stop=500, tries=0, bug=0, h=0.2, thresh=3.0, noise=0.0),
    "l3_greedy": dict(maxlev=3, stop=500, tries=0, bug=0, h=1.0, thresh=1.0, noise=0.0),
    "l3_h0.5_t30": dict(maxlev=3, stop=500, tries=0, bug=0, h=0.5, thresh=30.0, noise=0.0),
    "l3_h2_t200": dict(maxlev=3, stop=500, tries=0, bug=0, h=2.0, thresh=200.0, noise=0.0),
    "l3_stop450": dict(maxlev=3, stop=450, tries=0, bug=0, h=1.0, thresh=1.0, noise=0.0),
    "l3_rand20": dict(maxlev=3, stop=500, tries=20, bug=0, h=1.0, thresh=1.0, noise=0.2),
    "l3_rand100": dict(maxlev=3, stop=500, tries=100, bug=0, h=1.0, thresh=1.0, noise=0.2),
    "l3_rand400": dict(maxlev=3, stop=500, tries=400, bug=0, h=1.0, thresh=1.0, noise=0.3),
    "l3_noisy": dict(maxlev=3, stop=500, tries=0, bug=0, h=1.0, thresh=1.0, noise=1.5),
    "l2_rand100": dict(maxlev=2, stop=500, tries=100, bug=0, h=1.5, thresh=1.0, noise=0.3),
    "l1_rand50": dict(maxlev=1, stop=500, tries=50, bug=0, h=1.0, thresh=1.0, noise=0.5),
    "l3_rand100_b": dict(maxlev=3, stop=500, tries=100, bug=0, h=0.8, thresh=2.0, noise=0.5),
    "l3_t0.05": dict(maxlev=3, stop=500, tries=0, bug=0, h=1.0, thresh=0.05, noise=0.0),
    "bug_crash": dict(maxlev=3, stop=500, tries=0, bug=1, h=1.0, thresh=1.0, noise=0.0),
    "bug_short": dict(maxlev=3, stop=500, tries=20, bug=2, h=1.0, thresh=1.0, noise=0.2),
}


def source(name: str) -> str:
    return TEMPLATE % CANDIDATES[name]
