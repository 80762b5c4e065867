// A plain AHC039 baseline written for tttd: split the square into a 20x20 grid, count
// mackerels minus sardines per cell, and output the single best rectangle of cells found by a
// brute-force scan over all cell rectangles (perimeter always within the limit).
#include <bits/stdc++.h>
using namespace std;
int main() {
    int n; scanf("%d", &n);
    const int G = 20, W = 5000;
    static int cnt[G][G];
    for (int i = 0; i < 2 * n; i++) {
        int x, y; scanf("%d %d", &x, &y);
        int gx = min(G - 1, x / W), gy = min(G - 1, y / W);
        cnt[gx][gy] += i < n ? 1 : -1;
    }
    static int pre[G + 1][G + 1];
    for (int i = 0; i < G; i++) for (int j = 0; j < G; j++)
        pre[i + 1][j + 1] = pre[i][j + 1] + pre[i + 1][j] - pre[i][j] + cnt[i][j];
    int best = INT_MIN, bx0 = 0, by0 = 0, bx1 = 1, by1 = 1;
    for (int x0 = 0; x0 < G; x0++) for (int x1 = x0 + 1; x1 <= G; x1++)
        for (int y0 = 0; y0 < G; y0++) for (int y1 = y0 + 1; y1 <= G; y1++) {
            int s = pre[x1][y1] - pre[x0][y1] - pre[x1][y0] + pre[x0][y0];
            if (s > best) { best = s; bx0 = x0; by0 = y0; bx1 = x1; by1 = y1; }
        }
    int X0 = bx0 * W, Y0 = by0 * W, X1 = min(100000, bx1 * W), Y1 = min(100000, by1 * W);
    printf("4\n%d %d\n%d %d\n%d %d\n%d %d\n", X0, Y0, X1, Y0, X1, Y1, X0, Y1);
}
