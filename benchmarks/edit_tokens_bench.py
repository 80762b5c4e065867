"""Tokens per valid answer: SEARCH/REPLACE diffs vs whole programs (issue 22).

A scripted policy (no model) makes the same N small edits to a root program: each changes one
integer literal (seeded choice, value +1) and is written three ways:

- **whole**: the complete new program in a code fence (tttd's default answer format);
- **diff**: one SEARCH/REPLACE block holding the changed line and the line before it;
- **sloppy diff**: the same block with its indentation stripped and trailing spaces added (what
  models get wrong most often; tttd.edits still applies it).

Each answer is parsed by the AHC task run with ``edits=diff`` (SEARCH/REPLACE edits of the parent,
whole programs accepted), the parent being the root program, and each distinct resulting program
is evaluated once by the task (compiled with g++, run on cases 0-1), so an answer counts as valid
only when it parses to a program the task judges valid. Tokens are
counted with the BPE tokenizer of tttd's tiny model (``--tokenizer DIR`` for another
``tokenizer.json``). The figure printed is tokens per valid answer for each format and the ratio
whole / diff.

    python benchmarks/edit_tokens_bench.py [--edits 8] [--seed 0] [--tokenizer DIR]
"""

from __future__ import annotations

import argparse
import random
import re
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROGRAMS = {  # name -> (task, options, root file)
    "ahc039_grid.cpp": ("ahc039", {"cases": "0-1"}, ROOT / "tttd/tasks/ahc/baselines/ahc039_grid.cpp"),
    "ahc058_greedy.cpp": ("ahc058", {"cases": "0-1"}, ROOT / "tttd/tasks/ahc/baselines/ahc058_greedy.cpp"),
}
_INT = re.compile(r"(?<![\w.])(\d+)(?![\w.])")


def load_tokenizer(path: str | None):
    from tokenizers import Tokenizer

    if path is None:
        from tttd.policy.tiny import build_tiny_model

        path = str(build_tiny_model("tiny", progress=False, pretrain_steps=0))
    return Tokenizer.from_file(str(Path(path) / "tokenizer.json"))


def mutations(code: str, n: int, seed: int) -> list[tuple[int, str]]:
    """(line index, new line) for n edits of integer literals outside #include lines."""
    lines = code.split("\n")
    spots = [(i, m) for i, line in enumerate(lines) if not line.lstrip().startswith("#") and i > 0
             for m in _INT.finditer(line)]
    rng = random.Random(seed)
    picked = rng.sample(spots, min(n, len(spots)))
    out = []
    for i, m in picked:
        line = lines[i]
        out.append((i, line[:m.start()] + str(int(m.group(1)) + 1) + line[m.end():]))
    return out


def answers(code: str, i: int, new_line: str) -> dict[str, str]:
    lines = code.split("\n")
    whole = "\n".join(lines[:i] + [new_line] + lines[i + 1:])
    before = lines[max(0, i - 1):i + 1]
    after = lines[max(0, i - 1):i] + [new_line]
    diff = "<<<<<<< SEARCH\n" + "\n".join(before) + "\n=======\n" + "\n".join(after) + "\n>>>>>>> REPLACE\n"
    sloppy = ("<<<<<<< SEARCH\n" + "\n".join(x.strip() + "  " for x in before) + "\n=======\n"
              + "\n".join(x.strip() for x in after) + "\n>>>>>>> REPLACE\n")
    return {"whole": f"```cpp\n{whole}\n```\n", "diff": diff, "sloppy diff": sloppy}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--edits", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tokenizer", help="folder holding tokenizer.json (default: tttd's tiny model)")
    ap.add_argument("--smoke", action="store_true", help="one edit of each root: checks that the command runs; not a measurement")
    args = ap.parse_args()
    if args.smoke:
        args.edits = 1

    from tttd.executor import LocalExecutor
    from tttd.registry import get_task
    from tttd.types import State

    tok = load_tokenizer(args.tokenizer)
    t0 = time.perf_counter()
    totals: dict[str, list[int]] = {}
    with LocalExecutor(workers=1) as pool:
        for name, (task_name, options, path) in PROGRAMS.items():
            task = get_task(task_name, **options, edits="diff")
            code = path.read_text().rstrip("\n")
            state = State(id="root", value=1.0, artifact={"code": code})  # the parent of every answer
            verdicts: dict[str, bool] = {}

            def valid(program: str) -> bool:
                if program not in verdicts:
                    cand = task.parse(f"```cpp\n{program}\n```", state)
                    ev = task.evaluate(cand, task.launch(cand, pool.submit, state).result(), state)
                    verdicts[program] = ev.valid
                return verdicts[program]

            per: dict[str, list[int]] = {}
            for i, new_line in mutations(code, args.edits, args.seed):
                for fmt, text in answers(code, i, new_line).items():
                    cand = task.parse(text, state)
                    ok = cand.error is None and valid(cand.code)
                    tokens = len(tok.encode(text).ids)
                    per.setdefault(fmt, [0, 0, 0])
                    per[fmt][0] += tokens
                    per[fmt][1] += int(ok)
                    per[fmt][2] += 1
            print(f"{name}: {len(code)} characters, {len(tok.encode(code).ids)} tokens, "
                  f"{per['whole'][2]} edits")
            for fmt, (tokens, ok, n) in per.items():
                rate = tokens / ok if ok else float("inf")
                print(f"  {fmt:12s} {ok}/{n} valid, {tokens / n:8.1f} tokens per answer, "
                      f"{rate:8.1f} tokens per valid answer")
                agg = totals.setdefault(fmt, [0, 0, 0])
                agg[0] += tokens
                agg[1] += ok
                agg[2] += n
    print("all programs:")
    for fmt, (tokens, ok, n) in totals.items():
        print(f"  {fmt:12s} {ok}/{n} valid, {tokens / max(ok, 1):8.1f} tokens per valid answer")
    w, d = totals["whole"], totals["diff"]
    print(f"ratio whole/diff tokens per valid answer: {(w[0] / max(w[1], 1)) / (d[0] / max(d[1], 1)):.2f}"
          f"  ({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
