"""The tasks ``ahc039`` and ``ahc058``: a C++ program scored over the public cases (SPEC 5.7).

As in the paper (AHC.md 5): the candidate is compiled once and run on the 150 public cases
(seeds 0-149, generated exactly by :mod:`tttd.tasks.ahc.generators`), in parallel, stopping at
the first case that is not accepted. value = performance = the mean per-case score; reward =
performance / 1500 (AHC039) or / 3e6 (AHC058) when every case is accepted, else 0. Roots are
empty programs (the paper's default roots, value "none yet").

Options (``--task-option KEY=VALUE``):
- ``cases``: which seeds, e.g. ``"0-149"`` (default), ``"0-9"``, ``"3,7,11"`` or a count ``20``
  (seeds 0..19). Fewer cases make a cheaper, noisier task; values are means over these cases.
- ``race``: stage ends for racing, e.g. ``"10,20,40,80"`` (what docs/benchmarks.md recommends).
  The bar is the archive's: a parent keeps its best ``topk_children`` children, so a child is
  kept only if it beats the k-th best child kept under its parent when its group is launched
  (the rival, :meth:`tttd.archive.Archive.rival`). A child that has a rival runs 10 of the cases
  (in a random order of its own), goes on to 20 unless the sequential test of
  :mod:`tttd.racing` on those cases, paired with the rival's per-case scores, shows it cannot
  enter the top-k under its parent, and so on. A child whose parent has fewer than k children
  (it would be kept if valid) runs every case. Siblings sampled in the same step are not
  rivals (which finishes first depends on timing; a resumed run must race as the first did).
  Raced-out candidates are not archived; their reward is the mean of the cases they ran
  (scaled like the rest). Off by default (the paper's evaluation). ``benchmarks/ahc_bench.py``
  measures what it saves (docs/benchmarks.md).
- ``race_alpha``: the test's error rate, the chance that racing drops a child at least as good as
  its rival (default 0.01, split over the looks).
- ``parallel``: how many cases of one candidate may run at once (default: one per
  ``cpus_per_eval`` cores).
- ``cpus_per_eval`` (the run's ``--cpus-per-eval``, also accepted as a task option): CPUs reserved
  for each case run (each case is one evaluation on the executor, which runs cores/N of them at
  once). The program still gets one thread, as in the contest; the reservation keeps neighbouring
  cases from disturbing its timing. Default 1; the ``paper`` preset uses the authors' 2 (their
  scheduler gave each case a 2-CPU Ray task, SPEC 6.3).
- ``inputs_dir``: read ``NNNN.txt`` from this folder instead of generating the cases.
- ``cxx``: the C++ compiler (default ``$TTTD_CXX``, g++-12, g++).
- ``files`` (issue 37): the program is a directory of C++ files, e.g. ``files=path/to/dir`` (or
  ``{path: text}`` from Python, or a subclass's ``initial_files``): every ``.cpp``/``.cc``/``.cxx``
  file is a translation unit compiled with the contest's flags (headers beside them), the prompt
  shows the files and the model answers per file (:mod:`tttd.multifile`); ``readonly``: files the
  model may see but not change (comma-separated). The root is that directory, not scored yet.
"""

from __future__ import annotations

import concurrent.futures as cf
import os
import re
from pathlib import Path
from typing import Any, Callable

import numpy as np

from tttd.edits import FORMAT_RULE, apply_answer
from tttd.multifile import FILES_RULE, Caps, FileError, check_files, files_candidate, files_sections, read_tree
from tttd.registry import register_task
from tttd.task import Objective, Task, artifact_key, extract_code_block, tail
from tttd.text import safe
from tttd.tasks.ahc import cpp
from tttd.tasks.ahc.generators import generate
from tttd.tasks.ahc.runner import Outcome, evaluate_candidate, parse_stages
from tttd.tasks.ahc.scorers import CaseScore, score_case
from tttd.tasks.ahc.statements import STATEMENTS
from tttd.types import Candidate, Evaluation, Message, Program, State

CPP_FENCES = ("cpp", "c++", "cc", "cxx")
_STATUS = {"WA": "wrong_answer", "RE": "runtime_error", "TLE": "timeout", "MLE": "memory",
           "OLE": "output_limit", "IE": "error"}


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


def load_inputs(problem: str, seeds: list[int], inputs_dir: str | None = None,
                generator: Callable[[int], str] | None = None) -> list[str]:
    """The input texts of ``seeds``: from ``inputs_dir``, else generated by ``generator`` (default:
    the built-in generator of ``problem``) and cached on disk under ``problem``."""
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
        text = generator(seed) if generator is not None else generate(problem, seed)
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
    races = True  # launch takes the rival (Task.races): the ``race`` option races against it
    code_language = "cpp"
    program_suffixes = (".cpp", ".cc", ".cxx")
    output_tail_chars = 1000

    #: the paper preset's per-task part: each case reserves 2 CPUs, as the authors' scheduler
    presets = {"paper": {"cpus_per_eval": 2}}
    #: what one evaluation on the executor is (tttd run --dry-run: "CPUs: 2 per case")
    evaluation_unit = "case"
    #: the longest compiler message tail shown in the next prompt
    compile_error_chars = 1500
    #: a program of several files (issue 37): path -> text of the root, and the files the model
    #: may not change (the ``files``/``readonly`` options override them)
    initial_files: dict[str, str] | None = None
    readonly_files: tuple[str, ...] = ()
    caps = Caps()
    prompt_chars = 16_000

    def __init__(self, cases: Any = "0-149", race: Any = None, race_alpha: float = 0.01,
                 parallel: int | None = None, inputs_dir: str | None = None, cxx: str | None = None,
                 edits: str = "whole", cpus_per_eval: int | None = None, files: Any = None,
                 readonly: Any = None):
        if edits not in ("whole", "diff"):  # diff: SEARCH/REPLACE edits of the parent (tttd.edits)
            raise ValueError(f"edits must be whole or diff, got {edits!r}")
        self.edits = edits
        self.seeds = parse_cases(cases)
        self.stages = parse_stages(race, len(self.seeds))
        self.race_alpha = float(race_alpha)
        if not 0.0 < self.race_alpha < 1.0:
            raise ValueError(f"race_alpha must be in (0, 1), got {race_alpha!r}")
        self.case_cpus = int(cpus_per_eval or 1)
        if self.case_cpus < 1:
            raise ValueError(f"cpus_per_eval must be >= 1, got {cpus_per_eval}")
        self.parallel = int(parallel or max(1, (os.cpu_count() or 1) // self.case_cpus))
        if self.parallel < 1:
            raise ValueError(f"parallel must be >= 1, got {parallel}")
        self.inputs_dir = inputs_dir
        self.cxx = cxx
        self._cases: list[tuple[int, str]] | None = None
        self.files, self.readonly = _cpp_files(self.initial_files if files is None else files,
                                               self.readonly_files if readonly is None else readonly, self.caps)

    def cases(self) -> list[tuple[int, str]]:
        if self._cases is None:
            texts = load_inputs(self.problem_id, self.seeds, self.inputs_dir, self.generate_case)
            self._cases = list(zip(self.seeds, texts))
        return self._cases

    # ------------------------------------------------------------------ the problem (override these)
    def statement(self) -> str:
        """The problem statement shown in every prompt."""
        return STATEMENTS[self.problem_id]

    def generate_case(self, seed: int) -> str:
        """The input file of case ``seed``."""
        return generate(self.problem_id, seed)

    def score(self, input_text: str, output: str | bytes) -> CaseScore:
        """The trusted score of one case's output (0 with the reason when rejected)."""
        return score_case(self.problem_id, input_text, output)

    def example_answer(self, state: State) -> str | None:
        """A plain baseline of our own (``baselines/<problem>_*.cpp``) as a well-formed answer."""
        from pathlib import Path

        files = (state.artifact or {}).get("files")
        if self.files and isinstance(files, dict):
            return "\n\n".join(f"### File: {p}\n```cpp\n{t}```" for p, t in files.items() if p not in self.readonly)
        found = sorted((Path(__file__).parent / "baselines").glob(f"{self.problem_id}_*.cpp"))
        return f"```cpp\n{found[0].read_text()}```\n" if found else None

    # ------------------------------------------------------------------ Task protocol
    def initial_states(self, n: int, rng: np.random.Generator) -> list[State]:
        if n < 1:
            raise ValueError(f"need at least one initial state, got n={n}")
        art = {"files": dict(self.files)} if self.files else {"code": ""}
        return [State(id=f"{self.name}-root-{i:03d}", value=None, artifact=dict(art)) for i in range(n)]

    def prompt(self, state: State, parent: State | None = None) -> list[Message]:
        code = (state.artifact.get("code") or "").strip()
        parts = [self.statement().strip(), "## Current program"]
        n = len(self.seeds)
        if state.value is not None and state.value > 0:
            gap = self.target - state.value
            parts.append(f"Current performance (mean score over {n} cases): {state.value:,.2f}\n"
                         f"Target: {self.target:,.0f} (gap {gap:,.2f})")
        else:
            parts.append(f"Target performance (mean score over {n} cases): {self.target:,.0f}")
        files = (state.artifact or {}).get("files")
        if self.files and isinstance(files, dict):
            parts += files_sections(files, self.readonly, self.prompt_chars, lambda p: "cpp")
        elif code:
            parts.append("```cpp\n" + code + "\n```")
        else:
            parts.append("There is no program yet: write one from scratch.")
        error = (state.metrics or {}).get("compile_error")
        if error:
            parts.append("## A recent attempt from this program did not compile\n"
                         "The compiler's message (last lines):\n```\n" + fence_safe(error) + "\n```")
        parts.append(
            "## Rules\n"
            "- Write a complete C++20 program (compiled with g++ -std=gnu++20 -O2 -DONLINE_JUDGE "
            "-DATCODER; GMP is available). It reads one case on stdin and writes its answer on stdout.\n"
            "- Each case: 2.0 s of CPU time, 1 GiB of memory, one thread. A compile error, crash, "
            "time or memory overrun, or invalid answer on any case makes the program score 0.\n"
            + ("- The program is several files: every .cpp/.cc/.cxx file is a translation unit compiled "
               "with these flags and linked together; headers are included by their relative path"
               + (f"; read-only files: {', '.join(self.readonly)}" if self.readonly else "") + ".\n"
               if self.files else "")
            + "- Improve the current program's performance. " + (
                FILES_RULE.format(lang="cpp")[2:] if self.files else
                FORMAT_RULE.format(lang="cpp")[2:] if self.edits == "diff" and code else
                "Answer with one ```cpp code block containing the complete program."))
        return [{"role": "user", "content": "\n\n".join(parts) + "\n"}]

    def reward_description(self) -> str:
        """One line for ``tttd run --dry-run``."""
        return (f"mean case score / {self.reward_scale:g} when every case is accepted, else 0 (as the "
                f"authors' code); value = the mean score")

    def note_attempts(self, state: State, evaluations: list[Evaluation]) -> None:
        """Keep the tail of the first compile error of the latest group sampled from ``state``
        (none if every attempt compiled) for ``state``'s next prompt."""
        errors = [ev.message or ev.output_tail for ev in evaluations if ev.status == "compile_error"]
        if errors:
            state.metrics["compile_error"] = tail(errors[0], self.compile_error_chars)
        elif any(ev.status != "parse_error" for ev in evaluations):
            state.metrics.pop("compile_error", None)

    def parse(self, completion: str, state: State) -> Candidate:
        if self.files:
            return self._parse_files(completion, state)
        parent = ((state.artifact or {}).get("code") or "") if state is not None else ""
        notes: list[str] = []
        if self.edits == "diff" and parent:
            made = apply_answer(completion, parent, CPP_FENCES)
            if made.code is None:
                return Candidate(text=completion, error=made.error)
            code, notes = made.code, made.notes
        else:
            code = extract_code_block(completion, CPP_FENCES)
        if code is None:
            return Candidate(text=completion, error="no ```cpp code block in the answer")
        low = code.lower()
        if "int main" not in low and "void main" not in low:  # the contest's pre-check (AHC.md 4)
            return Candidate(text=completion, code=code, error="the program has no `int main`")
        return Candidate(text=completion, code=code, program=cpp.compile_program(code, self.cxx), notes=notes)

    def _parse_files(self, completion: str, state: State | None) -> Candidate:
        """A multi-file answer: the parent's files with the changed ones, every unit compiled."""
        parent = ((state.artifact or {}).get("files") if state is not None else None) or self.files
        cand = files_candidate(completion, parent, self.readonly, self.caps, self.program_from_files)
        units = [t.lower() for p, t in (cand.files or {}).items() if p.lower().endswith(cpp.CPP_UNITS)]
        if cand.program is not None and not any("int main" in t or "void main" in t for t in units):
            cand.program, cand.error = None, "no translation unit has an `int main`"  # the contest's pre-check
        return cand

    def program_from_files(self, files: dict[str, str], state: State | None = None) -> Program:
        """The jailed compile of every translation unit (``tttd verify TASK DIR`` too)."""
        return cpp.compile_files(files, self.cxx)

    def launch(self, candidate: Candidate, submit: Callable[[Program], cf.Future],
               state: State | None = None, rival: State | None = None) -> cf.Future:
        """Compile and run the cases on the executor (``submit``); a Future of an Outcome. With
        ``race``, the child races against ``rival`` (the k-th best child kept under ``state``):
        its per-case scores on the same cases; no rival, or one without them: every case runs."""
        bar = None
        if rival is not None and rival.value is not None:
            bar = rival.metrics.get("case_scores")
        return evaluate_candidate(self.score, candidate.code or "", self.cases(), submit,
                                  window=self.parallel, stages=self.stages, rival_scores=bar,
                                  maximize=self.objective.direction == "maximize",
                                  race_alpha=self.race_alpha, cxx=self.cxx,
                                  compile_program=candidate.program if candidate.files is not None else None)

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
                              message=f"raced out after {len(out.cases)}/{n} cases: mean {mean_run:,.2f}, "
                                      "cannot enter the top-k under its parent (shown below the rival on "
                                      "the same cases)", metrics=metrics)
        value = out.mean
        metrics["case_scores"] = out.scores
        program: Any = dict(candidate.files) if candidate.files is not None else candidate.code or ""
        return Evaluation(valid=True, value=value, reward=value / self.reward_scale,
                          message=f"performance {value:,.2f} (mean over {n} cases, all accepted)",
                          artifact={"files" if candidate.files is not None else "code": program},
                          key=artifact_key(program), metrics=metrics)


def _cpp_files(files: Any, readonly: Any, caps: Caps) -> tuple[dict[str, str], tuple[str, ...]]:
    """The ``files``/``readonly`` options checked (ValueError, one line): a directory's path or a
    mapping, with at least one translation unit; read-only names among the files."""
    if isinstance(readonly, str):
        readonly = [r for r in readonly.replace(" ", "").split(",") if r]
    readonly = tuple(readonly or ())
    if files is None or files == "":
        if readonly:
            raise ValueError("readonly applies to a program of several files: give files=DIR")
        return {}, ()
    try:
        if isinstance(files, (str, os.PathLike)):
            if not Path(files).is_dir():
                raise ValueError(f"files: {files} is not a directory")
            files = read_tree(files, caps)
        files = check_files(files, caps)
    except FileError as exc:
        raise ValueError(f"files: {exc}") from None
    if not any(p.lower().endswith(cpp.CPP_UNITS) for p in files):
        raise ValueError("files: no C++ translation unit (.cpp, .cc, .cxx) among them")
    unknown = [p for p in readonly if p not in files]
    if unknown:
        raise ValueError(f"readonly names {unknown[0]!r}, which is not one of the files")
    return files, readonly


def fence_safe(text: str) -> str:
    """Text from a candidate's compile shown inside a prompt's ``` fence: control and bidi
    characters escaped (:func:`tttd.text.safe`) and no run of three backticks, which would end
    the fence."""
    return re.sub(r"`{3,}", lambda m: "` " * len(m.group(0)), safe(text)).rstrip()


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
