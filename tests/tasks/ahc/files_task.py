"""A contest-style task whose program is several C++ files (issue 37): print a + b, with the
addition in its own translation unit and a read-only header."""

import random

import tttd
from tttd.tasks.ahc import AhcTask, CaseScore

FILES = {
    "main.cpp": '#include <cstdio>\n#include "lib/add.h"\n'
                'int main() { long long a, b; if (scanf("%lld %lld", &a, &b) != 2) return 1;\n'
                '  printf("%lld\\n", add(a, b)); }\n',
    "lib/add.h": "long long add(long long a, long long b);\n",
    "lib/add.cpp": '#include "add.h"\nlong long add(long long a, long long b) { return a - b; }\n',
}


@tttd.register_task("toy_sum_files")
class ToySumFiles(AhcTask):
    """Toy contest over several files: read two integers, print their sum."""

    problem_id = "toy_sum_files"
    target = 100.0
    reward_scale = 100.0
    initial_files = FILES
    readonly_files = ("lib/add.h",)

    def statement(self) -> str:
        return "# Toy sum\nRead two integers a b from stdin and print a + b."

    def generate_case(self, seed: int) -> str:
        rng = random.Random(seed)
        return f"{rng.randint(-10**9, 10**9)} {rng.randint(-10**9, 10**9)}\n"

    def score(self, input_text: str, output) -> CaseScore:
        a, b = map(int, input_text.split())
        text = output.decode("utf-8", "replace") if isinstance(output, bytes) else output
        toks = text.split()
        if len(toks) != 1 or not toks[0].lstrip("-").isdigit():
            return CaseScore(0, "expected one integer")
        return CaseScore(100 if int(toks[0]) == a + b else 10)
