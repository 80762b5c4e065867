"""``EvaluatorTask``: a ProgramTask scored by an OpenEvolve / ShinkaEvolve evaluator in the sandbox.

**Trust.** Both frameworks' evaluators import the candidate program and call it *in their own
process*, so tttd runs evaluator and candidate together inside the sandbox and takes the
metrics the evaluator returns. A candidate can rewrite the evaluator's functions or its metrics
files from the inside: **such scores are only as trustworthy as that evaluator**. The sandbox
protects the machine, not the score; for a score you can trust, port the scoring into a
:class:`tttd.ProgramTask` ``score(data)``, which runs in the tttd process.
"""

from __future__ import annotations

import ast
import os
from pathlib import Path
from typing import Any, Callable

from tttd.evolve.folder import MAX_FILE_BYTES, Layout, folder_files
from tttd.evolve.outcome import judge_openevolve, judge_shinka, render_feedback
from tttd.evolve.rescore import Repeated, Rescorer, spread
from tttd.evolve.safe_yaml import read_capped
from tttd.evolve.settings import Settings, read_settings
from tttd.program_task import EDIT_FORMATS, ProgramTask
from tttd.types import Candidate, Evaluation, Limits, Program, State

JAIL = Path(__file__).with_name("jail")
PROGRAM_STEM = "evolved_program"


def _jail_sources() -> tuple[str, dict[str, str]]:
    driver = (JAIL / "driver.py").read_text(encoding="utf-8")
    shims = {p.relative_to(JAIL / "shims").as_posix(): p.read_text(encoding="utf-8")
             for p in sorted((JAIL / "shims").rglob("*.py")) if p.parent != JAIL / "shims"}
    return driver, shims


def evaluator_functions(path: Path) -> set[str]:
    """Top-level function names of the evaluator (read with ast, not imported)."""
    try:
        tree = ast.parse(read_capped(path, MAX_FILE_BYTES))
    except (SyntaxError, ValueError, UnicodeDecodeError, RecursionError, MemoryError):
        return set()
    return {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}


def readme_opening(folder: Path, cap: int = 1500) -> str | None:
    """README.md up to its first code block (a fallback statement when the config has none)."""
    from tttd.evolve.outcome import clean

    p = folder / "README.md"
    if not p.is_file():
        return None
    try:
        with open(p, "rb") as f:  # only its opening is used: never the whole of a huge file
            text = f.read(64 * 1024).decode("utf-8", "replace").split("```")[0].strip()
    except OSError:
        return None
    return clean(text, cap) if text else None


def folder_metrics(text: Any, metric: str | None) -> tuple:
    """``--task-option metrics=a,b:minimize,...``: the evaluator's metrics that make the Pareto
    front and the rule's names (OpenEvolve and ShinkaEvolve metrics are maximised unless marked
    ``:minimize``); empty: one objective, the folder's value."""
    from tttd.objectives import MetricSpec

    if text is None or text == "":
        return ()
    items = [x.strip() for x in str(text).split(",") if x.strip()]
    specs = []
    for it in items:
        name, _, direction = it.partition(":")
        specs.append(MetricSpec(name.strip(), (direction or "maximize").strip()))
    if len(specs) < 2:
        raise ValueError(f"metrics names two or more of the evaluator's metrics (name or name:minimize), got {text!r}")
    if len({s.name for s in specs}) != len(specs):
        raise ValueError(f"metrics {text!r} names a metric twice")
    return tuple(specs)


def _bool(v: Any, name: str) -> bool:
    if isinstance(v, bool):
        return v
    if isinstance(v, str) and v.lower() in ("1", "true", "yes", "on", "0", "false", "no", "off"):
        return v.lower() in ("1", "true", "yes", "on")
    raise ValueError(f"{name} must be true or false, got {v!r}")


class EvaluatorTask(ProgramTask):
    """A ProgramTask whose score comes from an upstream evaluator run in the sandbox."""

    def __init__(self, folder: Path, layout: Layout, *, statement: str | None = None,
                 statement_file: str | None = None, timeout_s: float | None = None, memory_mb: int = 4096,
                 min_score: float = 0.0, metric: str | None = None, config: str | None = None,
                 edits: str | None = None, cascade: Any = None, rescore: int = 1, rescore_top: int = 4,
                 toolchain: str | None = None, metrics: str | None = None) -> None:
        self.folder, self.layout = folder, layout
        self.settings: Settings = read_settings(folder, layout.framework, config)
        s = self.settings
        if statement_file:
            statement = Path(statement_file).read_text(encoding="utf-8")
            s.statement_from = f"--task-option statement_file={statement_file}"
        elif statement:
            s.statement_from = "--task-option statement"
        generic = (f"Improve the program below. It is scored by the problem's evaluator ({layout.evaluator}); "
                   f"a higher {metric or 'combined_score'} is better.")
        readme = readme_opening(folder)
        if readme and not (statement or s.statement):
            generic += "\n\nThe problem folder's README.md begins:\n" + readme
        self.metric = str(metric) if metric else None
        funcs = evaluator_functions(folder / layout.evaluator)
        self.cascade = s.cascade if cascade is None else _bool(cascade, "cascade")
        self.stages = [n for n in (1, 2, 3) if f"evaluate_stage{n}" in funcs] if (
            layout.framework == "openevolve" and self.cascade and "evaluate_stage1" in funcs) else []
        self.per_stage_s = float(timeout_s) if timeout_s is not None else float(s.timeout_s or 300.0)
        if self.per_stage_s <= 0:
            raise ValueError(f"timeout_s must be > 0, got {timeout_s}")
        edits = edits or s.edits or "whole"
        if edits not in EDIT_FORMATS:
            raise ValueError(f"edits must be one of {', '.join(EDIT_FORMATS)}, got {edits!r}")
        self.toolchain = tuple(p for p in (toolchain or "").split(",") if p)
        for p in self.toolchain:
            if not os.path.isabs(p) or not os.path.exists(p):
                raise ValueError(f"toolchain path {p!r} must be an existing absolute path")
        self.rescorer = Rescorer(int(rescore), int(rescore_top)) if int(rescore) > 1 else None
        if int(rescore) < 1:
            raise ValueError(f"rescore must be >= 1, got {rescore}")
        self._files = folder_files(folder)
        self._driver, self._shims = _jail_sources()
        self.program_name = PROGRAM_STEM + layout.suffix
        files = None
        if layout.directory:  # a program of several files (issue 37): evolved_program/<entry>
            from tttd.multifile import FileError, read_tree

            try:
                files = read_tree(folder / layout.initial)
            except FileError as exc:
                raise ValueError(f"{layout.initial}/: {exc}") from None
            self.program_name = f"{PROGRAM_STEM}/{layout.entry}"
        language = s.language or layout.language
        label = self.metric or "combined_score"
        super().__init__(
            statement=statement or s.statement or generic,
            initial_program="" if files else read_capped(folder / layout.initial, MAX_FILE_BYTES),
            files=files, main=layout.entry or None,
            entry="_tttd_evaluate", returns="", score=lambda data: 0.0,  # verify() is overridden
            direction="maximize", bounds=(float(min_score), None), failure_reward=float(min_score),
            limits=Limits(wall_s=self.per_stage_s * max(1, len(self.stages)), memory_mb=int(memory_mb),
                          processes=64, toolchain=self.toolchain),
            value_label=label, keep_result_chars=0,  # re-verification reruns the program (best/solution.*)
            summary=f"{layout.title} problem {folder.name}", edits=edits, language=language,
        )
        self.statement_generic = not (statement or s.statement)
        self.metric_specs = folder_metrics(metrics, self.metric)
        self._defined_at = None  # errors name the folder, not the Python line that imported it
        self.program_suffixes = (layout.suffix,)
        self.contract = (f"- The program is scored by the problem's own evaluator ({layout.evaluator}), "
                         "which runs it: keep its interface (the functions the evaluator calls, their "
                         "arguments and return values) as in the code above.")
        if self.stages:
            self.contract += (f"\n- Evaluation runs in stages ({', '.join(f'evaluate_stage{n}' for n in self.stages)}); "
                              f"a program scoring below a stage's threshold ({', '.join(f'{t:g}' for t in s.thresholds)}) "
                              "is not evaluated further.")

    # ---- running ---------------------------------------------------------------------------

    def program_from_code(self, code: str, state: State | None = None) -> Program:
        path = [os.path.join(p, "bin") if os.path.isdir(os.path.join(p, "bin")) else p for p in self.toolchain]
        inject = {"_tttd_files": self._files, "_tttd_shims": self._shims, "_tttd_candidate": code,
                  "_tttd_candidate_files": None,
                  "_tttd_program_name": self.program_name, "_tttd_evaluator": self.layout.evaluator,
                  "_tttd_framework": self.layout.framework,
                  "_tttd_thresholds": list(self.settings.thresholds) if self.stages else None,
                  "_tttd_path": path}
        return Program(source=self._driver, entry="_tttd_evaluate", inject=inject, limits=self.limits)

    def program_from_files(self, files: dict[str, str], state: State | None = None) -> Program:
        """A multi-file program: the driver writes it as ``evolved_program/`` and hands the
        evaluator the path of its main file (issue 37)."""
        prog = self.program_from_code("", state)
        prog.inject["_tttd_candidate_files"] = dict(files)
        return prog

    def parse(self, completion: str, state: State) -> Candidate:
        cand = super().parse(completion, state)
        limit = self.settings.max_code_length
        size = len(cand.code) if cand.code is not None else sum(map(len, (cand.files or {}).values()))
        if limit and size > limit:  # a program of several files: all its files together
            return Candidate(text=completion, error=f"the program has {size} characters, more than "
                                                    f"max_code_length {limit} (config)")
        return cand

    def launch(self, candidate: Candidate, submit: Callable[[Any], Any], state: State | None = None,
               rival: State | None = None):
        if self.rescorer is None:
            return submit(candidate.program)

        def first_value(result: Any) -> float | None:
            ev = super(EvaluatorTask, self).evaluate(candidate, result, state)
            return ev.value if ev.valid else None

        return self.rescorer.launch(candidate.program, submit, first_value)

    def _root_evaluation(self) -> Evaluation | None:
        from tttd.task import TaskOptionError  # the protocol's error (not the registry's)

        try:
            ev = self._evaluate_root()
        except ValueError as exc:  # one line in the CLI (exit 2), not a traceback
            raise TaskOptionError(f"{exc} (folder {self.folder})") from None
        shown = ((ev.metrics or {}).get("evaluator") or {}).get("metrics") or {} if ev else {}
        if ev is not None and not self.metric and "combined_score" not in shown:
            self.value_label = "score"  # OpenEvolve's fallback: say what it is in the prompt
            self.fallback_mean = sorted(k for k, v in shown.items() if isinstance(v, (int, float))
                                        and k not in self.settings.feature_dimensions)
        return ev

    def _evaluate_root(self) -> Evaluation | None:
        if self.rescorer is None or self._root_eval is not None:
            return super()._root_evaluation()
        from tttd.executor import LocalExecutor

        code = self.initial_program
        cand = Candidate(text="", files=dict(self.files), program=self.program_from_files(self.files)) if self.files \
            else Candidate(text="", code=code, program=self.program_from_code(code))
        with LocalExecutor(workers=1) as pool:
            result = self.launch(cand, pool.submit, None).result()
        ev = self.evaluate(cand, result)
        if not ev.valid:
            raise ValueError(f"task {self.name or '?'}: the initial program is not valid: {ev.message}")
        self._root_eval = ev
        return ev

    # ---- scoring ---------------------------------------------------------------------------

    def verify(self, data: Any, state: State | None = None) -> Evaluation:
        if self.layout.framework == "openevolve":
            verdict = judge_openevolve(data, self.metric, self.settings.feature_dimensions)
        else:
            verdict = judge_shinka(data, self.metric)
        lo = self.primary_objective.bounds[0]
        if verdict.error is not None or verdict.value is None:
            ev = self.invalid(verdict.error or "no value")
        elif lo is not None and verdict.value < lo:
            ev = self.invalid(f"{self.value_label} {verdict.value:.10g} is below min_score {lo:g} (the lowest valid "
                              "score and the failure reward: set --task-option min_score=... for negative scores)")
        else:
            try:
                reward = self.primary_objective.reward(verdict.value)
            except ValueError as exc:
                ev = self.invalid(str(exc))
            else:
                label = self.value_label
                if not self.metric and "combined_score" not in (verdict.feedback.get("metrics") or {}):
                    label = "score (OpenEvolve's mean of the numeric metrics; no combined_score)"
                ev = Evaluation(valid=True, value=verdict.value, reward=reward,
                                message=f"{label} {verdict.value:.10g}")
        ev.metrics = {"evaluator": verdict.feedback} if verdict.feedback else {}
        if ev.valid and self.metric_specs:
            ev = self._with_objectives(ev, verdict)
        return ev

    def _with_objectives(self, ev: Evaluation, verdict: Any) -> Evaluation:
        """Several objectives (``--task-option metrics=...``): the declared metrics the evaluator
        returned (the chosen value under its own name when it is one of them)."""
        shown = dict((verdict.feedback or {}).get("metrics") or {})
        shown.setdefault(self.metric or "combined_score", verdict.value)
        objectives = {}
        for spec in self.metric_specs:
            v = shown.get(spec.name)
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                bad = self.invalid(f"the evaluator returned no numeric metric {spec.name!r} (--task-option metrics)")
                bad.metrics = ev.metrics
                return bad
            objectives[spec.name] = float(v)
        ev.metrics["objectives"] = objectives
        return ev

    def evaluate(self, candidate: Candidate, result: Any, state: State | None = None) -> Evaluation:
        if not isinstance(result, Repeated):
            return super().evaluate(candidate, result, state)
        evs = [super(EvaluatorTask, self).evaluate(candidate, r, state) for r in result.results]
        first = evs[0]
        if len(evs) == 1 or not first.valid:
            return first
        bad = [(i, e) for i, e in enumerate(evs) if not e.valid]
        if bad:
            i, e = bad[0]
            return self.invalid(f"re-score {i + 1} of {len(evs)} failed: {e.message}", e.status, e.output_tail)
        stats = spread([float(e.value) for e in evs])
        assert self.rescorer is not None
        self.rescorer.record(stats["mean"])
        ev = first
        ev.value = stats["mean"]
        ev.reward = self.objective.reward(stats["mean"])
        ev.message = (f"{self.value_label} {stats['mean']:.10g} (mean of {stats['runs']} evaluations; "
                      f"sd {stats['std']:.3g}, range {stats['min']:.6g} .. {stats['max']:.6g})")
        ev.metrics.setdefault("evaluator", {})["rescore"] = stats
        return ev

    # ---- prompt and reports ----------------------------------------------------------------

    def limits_rule(self) -> str:
        per = " per evaluation stage" if self.stages else ""
        return f"Time limit {self.per_stage_s:g} s{per}, memory {self.limits.memory_mb} MB, no network."

    def feedback_sections(self, state: State) -> list[str]:
        out = super().feedback_sections(state)
        text = render_feedback((state.metrics or {}).get("evaluator") or {}, self.value_label)
        return ([text] if text else []) + out

    @property
    def run_defaults(self) -> dict[str, Any]:
        """Run settings the folder's config maps to (sampling temperature, token budget, seed):
        applied like a config file's, below flags."""
        return dict(self.settings.run_values)

    def dry_run_notes(self) -> list[str]:
        """How the folder was understood: for ``tttd prompt DIR`` and ``--dry-run``."""
        s, lay = self.settings, self.layout
        notes = [f"{lay.title} folder: {lay.initial} ({self.code_language}) scored by {lay.evaluator}; "
                 f"config read: {', '.join(s.files) or 'none'}"]
        notes.append("statement: " + (("none in the config: a generic one" + (" with README.md's opening"
                                       if readme_opening(self.folder) else "") + " (give --task-option statement=...)")
                                      if self.statement_generic else f"from {s.statement_from}"))
        if self.metric:
            notes.append(f"value: metric {self.metric!r} (--task-option metric)")
        else:
            notes.append("value: combined_score" + (
                "; without it, the mean of the numeric metrics other than "
                f"{s.feature_dimensions} (OpenEvolve's rule); choose one with --task-option metric=NAME"
                if lay.framework == "openevolve" else "; choose another with --task-option metric=NAME"))
        if getattr(self, "fallback_mean", None):
            notes.append(f"this evaluator returns no combined_score: the value ('score') is the mean of "
                         f"{', '.join(self.fallback_mean)} (OpenEvolve's rule); pick one with --task-option metric=NAME")
        root = self._root_eval
        if root is not None:
            shown = sorted(((root.metrics or {}).get("evaluator") or {}).get("metrics") or {})
            if shown:
                notes.append(f"the initial program's metrics: {', '.join(shown)}")
        if lay.framework == "openevolve":
            if self.stages:
                notes.append(f"cascade: on, stages {self.stages}, thresholds {s.thresholds}")
            else:
                notes.append("cascade: off" + (" (the evaluator defines no evaluate_stage1: evaluate() is called)"
                                               if self.cascade else ""))
        if lay.directory:
            notes.append(f"program: the directory {lay.initial}/ ({len(self.files)} files, main file {lay.entry}); "
                         f"the evaluator gets {self.program_name}")
        if self.metric_specs:
            notes.append("several objectives: " + ", ".join(f"{m.name} ({m.direction})" for m in self.metric_specs)
                         + " (--task-option metrics; pick the reward with --rule)")
        notes.append(f"time limit: {self.per_stage_s:g} s per evaluation" + (" stage" if self.stages else "")
                     + f"; memory {self.limits.memory_mb} MB")
        notes.append(f"answers: {'SEARCH/REPLACE diffs (whole programs accepted too)' if self.edits == 'diff' else 'whole programs'}"
                     " (--task-option edits=diff|whole)")
        if self.rescorer is not None:
            notes.append(f"re-scoring: candidates reaching the top {self.rescorer.top} are evaluated "
                         f"{self.rescorer.k} times; the value is the mean")
        notes += [f"used: {u}" for u in s.used]
        notes += [f"ignored: {i}" for i in s.ignored]
        return notes
