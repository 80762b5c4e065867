"""A user's own contest-style problem, as the README describes: print a + b (score 100 if right)."""

import random

import tttd
from tttd.tasks.ahc import AhcTask, CaseScore


@tttd.register_task("toy_sum")
class ToySum(AhcTask):
    """Toy contest: read two integers, print their sum."""

    problem_id = "toy_sum"
    target = 100.0
    reward_scale = 100.0

    def statement(self) -> str:
        return "# Toy sum\nRead two integers a b from stdin and print a + b."

    def generate_case(self, seed: int) -> str:
        rng = random.Random(seed)
        return f"{rng.randint(-10**9, 10**9)} {rng.randint(-10**9, 10**9)}\n"

    def score(self, input_text: str, output) -> CaseScore:
        a, b = map(int, input_text.split())
        text = output.decode("utf-8", "replace") if isinstance(output, bytes) else output
        toks = text.split()
        if len(toks) != 1 or toks[0].lstrip("-").isdigit() is False:
            return CaseScore(0, "expected one integer")
        return CaseScore(100 if int(toks[0]) == a + b else 10)
