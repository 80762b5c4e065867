"""A contest-style task whose program is several C++ files (issue 37): the toy sum of
``contest_task.py`` (its statement, cases and score), with the addition in its own translation
unit and a read-only header."""

import tttd
from tests.tasks.ahc.contest_task import ToySum

FILES = {
    "main.cpp": '#include <cstdio>\n#include "lib/add.h"\n'
                'int main() { long long a, b; if (scanf("%lld %lld", &a, &b) != 2) return 1;\n'
                '  printf("%lld\\n", add(a, b)); }\n',
    "lib/add.h": "long long add(long long a, long long b);\n",
    "lib/add.cpp": '#include "add.h"\nlong long add(long long a, long long b) { return a - b; }\n',
}


@tttd.register_task("toy_sum_files")
class ToySumFiles(ToySum):
    """Toy contest over several files: read two integers, print their sum."""

    problem_id = "toy_sum_files"
    initial_files = FILES
    readonly_files = ("lib/add.h",)
