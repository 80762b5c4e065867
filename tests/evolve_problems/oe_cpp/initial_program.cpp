// Toy OpenEvolve-style problem in C++: print a number close to the hidden target.
#include <cstdio>

// EVOLVE-BLOCK-START
double guess() { return 3.0; }
// EVOLVE-BLOCK-END

int main() { std::printf("%.6f\n", guess()); return 0; }
