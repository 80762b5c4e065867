// A plain AHC058 baseline written for tttd: each turn, buy the level-0 machine with the best
// immediate payback (production gain per apple spent) if affordable within a deadline, else wait.
#include <bits/stdc++.h>
using namespace std;
int main() {
    int n, l, t; long long k;
    cin >> n >> l >> t >> k;
    vector<long long> a(n);
    for (auto &x : a) cin >> x;
    vector<vector<long long>> c(l, vector<long long>(n));
    for (auto &row : c) for (auto &x : row) cin >> x;
    vector<long long> p(n, 0);
    long long apples = k;
    for (int turn = 0; turn < t; turn++) {
        int best = -1; double best_ratio = 0;
        for (int j = 0; j < n; j++) {
            long long cost = c[0][j] * (p[j] + 1);
            double gain = (double)a[j] * (t - turn - 1);
            if (cost <= apples && gain > cost && gain / cost > best_ratio) { best_ratio = gain / cost; best = j; }
        }
        if (best >= 0) { apples -= c[0][best] * (p[best] + 1); p[best]++; printf("0 %d\n", best); }
        else puts("-1");
        for (int j = 0; j < n; j++) apples += a[j] * p[j];
    }
}
