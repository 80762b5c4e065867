"""The tasks ``ahc039`` and ``ahc058``: a C++ program scored over the public cases (SPEC 5.7).

As in the paper (AHC.md 5): the candidate is compiled once and run on the 150 public cases
(seeds 0-149, generated exactly by :mod:`tttd.tasks.ahc.generators`), in parallel, stopping at
the first case that is not accepted. value = performance = the mean per-case score; reward =
performance / 1500 (AHC039) or / 3e6 (AHC058) when every case is accepted, else 0. Roots are
empty programs (the paper's default roots, value "none yet").

Options (``--task-option KEY=VALUE``):
- ``cases``: which seeds, e.g. ``"0-149"`` (default), ``"0-9"``, ``"3,7,11"`` or a count ``20``
  (seeds 0..19). Fewer cases make a cheaper, noisier task; values are means over these cases.
- ``race``: stage ends for racing, e.g. ``"10,40"``: a candidate whose parent has per-case
  scores runs 10 cases, goes on to 40 only if a paired test on those cases says it can still
  match its parent (``race_z`` standard errors, default 2), and so on. Raced-out candidates are
  not archived; their reward is the mean of the cases they ran (scaled like the rest). Off by
  default (the paper's evaluation). ``benchmarks/ahc_bench.py`` measures what it saves.
- ``parallel``: how many cases of one candidate may run at once (default: one per core).
- ``inputs_dir``: read ``NNNN.txt`` from this folder instead of generating the cases.
- ``cxx``: the C++ compiler (default ``$TTTD_CXX``, g++-12, g++).
"""

from __future__ import annotations

import concurrent.futures as cf
import os
import re
from pathlib import Path
from typing import Any, Callable

import numpy as np

from tttd.task import Objective, Task, artifact_key, extract_code_block, register_task, tail
from tttd.tasks.ahc import cpp
from tttd.tasks.ahc.generators import generate
from tttd.tasks.ahc.runner import Outcome, evaluate_candidate, parse_stages
from tttd.tasks.ahc.statements import STATEMENTS
from tttd.types import Candidate, Evaluation, Message, Program, State

CPP_FENCES = ("cpp", "c++", "cc", "cxx")
_STATUS = {"WA": "wrong_answer", "RE": "runtime_error", "TLE": "timeout", "MLE": "memory",
           "OLE": "output_limit", "IE": "error"}
_MAIN = re.compile(r"(int|void)\s+main", re.IGNORECASE)


def parse_cases(spec: Any) -> list[int]:
    """``"0-149"`` / ``"0,3,5"`` / ``20`` / ``[0, 3]`` -> a list of distinct seeds, in order."""
    if isinstance(spec, bool):
        raise ValueError(f"cases must be seeds like '0-149', got {spec!r}")
    if isinstance(spec, int):
        if spec < 1:
            raise ValueError(f"cases must be >= 1, got {spec}")
        return list(range(spec))
    if isinstance(spec, (list, tuple)):
        seeds = [int(s) for s in spec]
    else:
        seeds = []
        for part in str(spec).replace(" ", "").split(","):
            m = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
            if not m:
                raise ValueError(f"cases must look like '0-149' or '0,3,5', got {spec!r}")
            lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
            if hi < lo:
                raise ValueError(f"empty case range {part!r}")
            seeds += range(lo, hi + 1)
    if not seeds or len(set(seeds)) != len(seeds) or min(seeds) < 0:
        raise ValueError(f"cases must be distinct non-negative seeds, got {spec!r}")
    return seeds


def _cache_dir(problem: str) -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "tttd" / "ahc" / problem


def load_inputs(problem: str, seeds: list[int], inputs_dir: str | None = None) -> list[str]:
    """The input texts of ``seeds``: from ``inputs_dir``, else generated (cached on disk)."""
    out = []
    for seed in seeds:
        if inputs_dir:
            path = Path(inputs_dir) / f"{seed:04d}.txt"
            if not path.is_file():
                raise ValueError(f"missing input file {path}")
            out.append(path.read_text())
            continue
        path = _cache_dir(problem) / f"{seed:04d}.txt"
        try:
            out.append(path.read_text())
            continue
        except OSError:
            pass
        text = generate(problem, seed)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".tmp{os.getpid()}")
            tmp.write_text(text)
            os.replace(tmp, path)
        except OSError:
            pass  # a read-only cache only costs regeneration
        out.append(text)
    return out


class AhcTask(Task):
    """A C++ program scored over AtCoder-style cases (compile once, one jailed run per case)."""

    problem_id = ""
    target = 0.0
    reward_scale = 1.0
    objective = Objective(direction="maximize", transform="identity", failure_reward=0.0)
    code_language = "cpp"
    program_suffixes = (".cpp", ".cc", ".cxx")
    output_tail_chars = 1000
    presets = {"paper": {"steps": 50, "groups": 8, "group_size": 64, "learning_rate": 4e-5,
                         "lora_rank": 32, "max_tokens": 26000, "temperature": 1.0, "kl_coef": 0.1,
                         "objective": "entropic", "reuse": "puct"}}

    def __init__(self, cases: Any = "0-149", race: Any = None, race_z: float = 2.0,
                 parallel: int | None = None, inputs_dir: str | None = None, cxx: str | None = None):
        self.seeds = parse_cases(cases)
        self.stages = parse_stages(race, len(self.seeds))
        self.race_z = float(race_z)
        self.parallel = int(parallel or os.cpu_count() or 1)
        if self.parallel < 1:
            raise ValueError(f"parallel must be >= 1, got {parallel}")
        self.inputs_dir = inputs_dir
        self.cxx = cxx
        self._cases: list[tuple[int, str]] | None = None

    def cases(self) -> list[tuple[int, str]]:
        if self._cases is None:
            texts = load_inputs(self.problem_id, self.seeds, self.inputs_dir)
            self._cases = list(zip(self.seeds, texts))
        return self._cases

    # ------------------------------------------------------------------ Task protocol
    def initial_states(self, n: int, rng: np.random.Generator) -> list[State]:
        if n < 1:
            raise ValueError(f"need at least one initial state, got n={n}")
        return [State(id=f"{self.name}-root-{i:03d}", value=None, artifact={"code": ""}) for i in range(n)]

    def prompt(self, state: State, parent: State | None = None) -> list[Message]:
        code = (state.artifact.get("code") or "").strip()
        parts = [STATEMENTS[self.problem_id].strip(), "## Current program"]
        n = len(self.seeds)
        if state.value is not None and state.value > 0:
            gap = self.target - state.value
            parts.append(f"Current performance (mean score over {n} cases): {state.value:,.2f}\n"
                         f"Target: {self.target:,.0f} (gap {gap:,.2f})")
        else:
            parts.append(f"Target performance (mean score over {n} cases): {self.target:,.0f}")
        if code:
            parts.append("```cpp\n" + code + "\n```")
        else:
            parts.append("There is no program yet: write one from scratch.")
        parts.append(
            "## Rules\n"
            "- Write a complete C++20 program (compiled with g++ -std=gnu++20 -O2 -DONLINE_JUDGE "
            "-DATCODER; GMP is available). It reads one case on stdin and writes its answer on stdout.\n"
            "- Each case: 2.0 s of CPU time, 1 GiB of memory, one thread. A compile error, crash, "
            "time or memory overrun, or invalid answer on any case makes the program score 0.\n"
            "- Improve the current program's performance. Answer with one ```cpp code block "
            "containing the complete program.")
        return [{"role": "user", "content": "\n\n".join(parts) + "\n"}]

    def parse(self, completion: str, state: State) -> Candidate:
        code = extract_code_block(completion, CPP_FENCES)
        if code is None:
            return Candidate(text=completion, error="no ```cpp code block in the answer")
        if not _MAIN.search(code):
            return Candidate(text=completion, code=code, error="the program has no `int main`")
        return Candidate(text=completion, code=code, program=cpp.compile_program(code, self.cxx))

    def launch(self, candidate: Candidate, submit: Callable[[Program], cf.Future],
               state: State | None = None) -> cf.Future:
        """Compile and run the cases on the executor (``submit``); a Future of an Outcome."""
        parent = None
        if state is not None and state.value is not None:
            parent = state.metrics.get("case_scores")
        return evaluate_candidate(self.problem_id, candidate.code or "", self.cases(), submit,
                                  window=self.parallel, stages=self.stages, parent_scores=parent,
                                  race_z=self.race_z, cxx=self.cxx)

    def evaluate(self, candidate: Candidate, result: Any, state: State | None = None) -> Evaluation:
        if candidate.error is not None:
            return self.invalid(candidate.error, status="parse_error")
        if not isinstance(result, Outcome):
            return self.invalid("the program was not run through AhcTask.launch", status="error")
        out, n = result, result.n_cases
        metrics: dict[str, Any] = {"cases_run": len(out.cases) + (1 if out.failed else 0),
                                   "cases": n, "cpu_s": round(out.cpu_s, 4)}
        if not out.compiled:
            return self.invalid("compilation failed:\n" + out.compile_message, status="compile_error",
                                output_tail=tail(out.compile_message, self.output_tail_chars))
        if out.failed is not None:
            f = out.failed
            where = f"case {f.index + 1}/{n} (seed {f.seed})" if f.index >= 0 else "evaluation"
            ev = self.invalid(f"{where}: {f.status}: {f.message}", status=_STATUS.get(f.status, "error"),
                              output_tail=tail(out.stderr_tail, self.output_tail_chars))
            ev.metrics = metrics
            return ev
        mean_run = sum(out.scores) / len(out.scores) if out.scores else 0.0
        if out.raced_out:
            metrics["raced_out"] = True
            return Evaluation(valid=False, reward=mean_run / self.reward_scale, status="raced_out",
                              message=f"raced out after {len(out.cases)}/{n} cases: mean {mean_run:,.2f} "
                                      "cannot match the parent on the same cases", metrics=metrics)
        value = out.mean
        metrics["case_scores"] = out.scores
        code = candidate.code or ""
        return Evaluation(valid=True, value=value, reward=value / self.reward_scale,
                          message=f"performance {value:,.2f} (mean over {n} cases, all accepted)",
                          artifact={"code": code}, key=artifact_key(code), metrics=metrics)


@register_task("ahc039")
class Ahc039Task(AhcTask):
    """AtCoder AHC039 purse seine fishing: C++ over 150 public cases (reward mean/1500)."""

    name = "ahc039"
    summary = "AtCoder AHC039 purse seine (C++; mean public score, target 5000)"
    problem_id = "ahc039"
    target = 5000.0
    reward_scale = 1500.0


@register_task("ahc058")
class Ahc058Task(AhcTask):
    """AtCoder AHC058 apple production: C++ over 150 public cases (reward mean/3e6)."""

    name = "ahc058"
    summary = "AtCoder AHC058 apple production (C++; mean public score, target 6.5e6)"
    problem_id = "ahc058"
    target = 6_500_000.0
    reward_scale = 3_000_000.0
