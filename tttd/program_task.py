"""``tttd.ProgramTask``: a program-search task from a statement, an initial program and a score.

The full :class:`tttd.task.Task` protocol (roots, prompt, parse, verify) stays for advanced cases.
Most problems are "write a function that returns X; X is scored by f": for those, give

- ``statement``: the problem, as the model should read it;
- ``initial_program``: a complete Python program to start from ("" = start from scratch);
- ``entry`` and ``returns``: the function tttd calls (``entry(**args)``) and what it must return;
- ``score(data) -> float``: the trusted scorer, run in the tttd process on the returned data
  (JSON values; numpy arrays arrive as numpy arrays), raising ValueError/TypeError/... or
  returning a non-finite number for an invalid answer;
- ``direction``: "maximize" or "minimize" (and optionally ``bounds``, ``transform``,
  ``failure_reward``: see :class:`tttd.task.Objective`, which checks them when the task is made).

tttd supplies the rest: roots (the initial program, run once in the sandbox and scored), prompts in
the paper's style (the problem, the code, its score and its parent's score, the tail of its
output, the rules), parsing (the last ```python block), sandbox limits, deduplication (by the
returned data when it is small, else by the code) and re-verification (``best/artifact.json``
holds ``{"result": data}``; ``tttd verify TASK best/artifact.json`` rescores it, and
``tttd verify TASK best/solution.py`` reruns the program).

Evolve blocks: when the parent program has ``EVOLVE-BLOCK-START`` / ``EVOLVE-BLOCK-END`` comment
markers (the OpenEvolve / ShinkaEvolve convention), only the code between them may change: a
completion's code block replaces that region (the part between its own markers if it has them,
else the whole block), and the code outside it is kept from the parent.

Edit formats: ``edits="whole"`` (default) asks for the complete program in one code block;
``edits="diff"`` asks for SEARCH/REPLACE edits of the parent (:mod:`tttd.edits`), still accepting
a whole program, and shows edits that did not apply in the next prompt. ``language`` names the
code fences (an OpenEvolve folder's C++ or Rust program, say).
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, Callable

import numpy as np

from tttd.edits import FORMAT_RULE, apply_answer
from tttd.multifile import FILES_RULE, LAUNCHER, Caps, apply_files_answer, files_sections, initial_files
from tttd.objectives import MEASURED, metric_specs
from tttd.task import Objective, Task, artifact_key, code_and_output_sections, extract_code_block
from tttd.types import Candidate, Evaluation, Limits, Message, Program, State

EDIT_FORMATS = ("whole", "diff")
EVOLVE_START = "EVOLVE-BLOCK-START"
EVOLVE_END = "EVOLVE-BLOCK-END"
_BLOCK = re.compile(r"^(?P<head>.*?" + EVOLVE_START + r"[^\n]*\n)(?P<body>.*?)(?P<foot>^[^\n]*"
                    + EVOLVE_END + r".*)$", re.DOTALL | re.MULTILINE)


def split_evolve_block(code: str) -> tuple[str, str, str] | None:
    """(before, block, after) around the first evolve block, or None when there is none."""
    m = _BLOCK.match(code)
    if m is None:
        return None
    return m.group("head"), m.group("body"), m.group("foot")


def splice_evolve_block(parent: str, new: str) -> str:
    """``parent`` with its evolve block replaced by ``new``'s block (or by all of ``new``)."""
    outer = split_evolve_block(parent)
    if outer is None:
        return new
    inner = split_evolve_block(new)
    body = inner[1] if inner is not None else new.strip("\n") + "\n"
    return outer[0] + body + outer[2]


ARRAY_TAG = "__ndarray__"


def _plain(data: Any) -> Any:
    """JSON-able form of returned data; numpy arrays become ``{"__ndarray__": list, "dtype": str}``
    so that re-verification hands ``score`` the same types as the run did (:func:`_unplain`)."""
    if isinstance(data, np.ndarray):
        return {ARRAY_TAG: data.tolist(), "dtype": data.dtype.str}
    if isinstance(data, (list, tuple)):
        return [_plain(x) for x in data]
    if isinstance(data, dict):
        return {str(k): _plain(v) for k, v in data.items()}
    if isinstance(data, np.generic):
        return data.item()
    return data


def _unplain(data: Any) -> Any:
    """Inverse of :func:`_plain` (tagged arrays back to numpy arrays)."""
    if isinstance(data, dict):
        if set(data) == {ARRAY_TAG, "dtype"}:
            return np.asarray(data[ARRAY_TAG], dtype=np.dtype(str(data["dtype"])))
        return {k: _unplain(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_unplain(x) for x in data]
    return data


def _short(v: Any) -> str:
    """An argument as shown in the prompt (long values summarised)."""
    text = repr(v)
    if len(text) <= 60:
        return text
    if isinstance(v, (list, tuple)):
        return f"<a {type(v).__name__} of {len(v)} items>"
    return text[:57] + "..."


def _fmt(v: float | None) -> str:
    return "none" if v is None else f"{v:.6g}"


class ProgramTask(Task):
    """A program-search task from a statement, an initial program, an entry point and a score."""

    def __init__(
        self,
        *,
        statement: str,
        score: Callable[[Any], float],
        returns: str,
        initial_program: str = "",
        entry: str = "solve",
        direction: str = "maximize",
        transform: str | None = None,
        failure_reward: float = 0.0,
        bounds: tuple[float | None, float | None] = (0.0, None),
        args: dict[str, Any] | None = None,
        timeout_s: float = 60.0,
        memory_mb: int = 2048,
        limits: Limits | None = None,
        name: str = "",
        summary: str = "",
        value_label: str = "score",
        keep_result_chars: int = 20_000,
        presets: dict[str, dict[str, Any]] | None = None,
        edits: str = "whole",
        language: str = "python",
        metrics: Any = None,
        primary: str | None = None,
        files: dict[str, str] | None = None,
        main: str | None = None,
        readonly: tuple[str, ...] | list[str] = (),
        caps: Caps | None = None,
        prompt_chars: int = 16_000,
    ) -> None:
        if not isinstance(statement, str) or not statement.strip():
            raise ValueError("statement must be a non-empty string: the problem as the model reads it")
        if not callable(score):
            raise ValueError("score must be a function score(data) -> float")
        if not (isinstance(entry, str) and entry.isidentifier()):
            raise ValueError(f"entry must be a Python function name, got {entry!r}")
        if not isinstance(initial_program, str):
            raise ValueError("initial_program must be the program's source code (a string)")
        if edits not in EDIT_FORMATS:
            raise ValueError(f"edits must be one of {', '.join(EDIT_FORMATS)}, got {edits!r}")
        self.metric_specs = metric_specs(metrics)
        self.primary_metric = None
        if self.metric_specs:  # several objectives: score() returns {name: number}
            by_name = {m.name: m for m in self.metric_specs}
            primary = primary or next(m.name for m in self.metric_specs if m.name not in MEASURED)
            if primary not in by_name or primary in MEASURED:
                raise ValueError(f"primary must be one of the metrics score() returns "
                                 f"({', '.join(n for n in by_name if n not in MEASURED)}), got {primary!r}")
            direction = by_name[primary].direction
            if by_name[primary].bounds != (None, None):
                bounds = by_name[primary].bounds
            self.primary_metric = primary
            value_label = primary if value_label == "score" else value_label
        elif primary is not None:
            raise ValueError("primary names one of the declared metrics=...; none are declared")
        if transform is None:  # paper style: 1/value for minimised positive values
            lo = bounds[0]
            transform = "identity" if direction == "maximize" else (
                "reciprocal" if lo is not None and lo >= 0 else "negate")
        self.objective = Objective(direction, transform, float(failure_reward), tuple(bounds))
        self.statement = statement.strip()
        self.score = score
        self.returns = returns.strip()
        self.initial_program = initial_program.strip("\n") + ("\n" if initial_program.strip() else "")
        #: several files (tttd.multifile): path -> text of the initial program, its main file (the
        #: one defining ``entry``), the files the model may not change, the caps, the prompt budget
        self.caps = caps or Caps()
        self.files, self.main, self.readonly = initial_files(files, main, readonly, initial_program, self.caps)
        self.prompt_chars = int(prompt_chars)
        self.entry = entry
        self.args = dict(args or {})
        self.limits = limits or Limits(wall_s=float(timeout_s), memory_mb=int(memory_mb))
        if name:
            self.name = name
        self.summary = summary or self.statement.splitlines()[0].lstrip("# ").strip()[:100]
        self.value_label = value_label
        self.keep_result_chars = keep_result_chars
        self.presets = dict(presets or {})
        #: "whole" (one code block with the complete program) or "diff" (SEARCH/REPLACE edits of
        #: the parent, a whole program still accepted): see :mod:`tttd.edits`
        self.edits = edits
        self.code_language = language
        self._root_eval: Evaluation | None = None
        from tttd.task_errors import defined_at

        self._defined_at = defined_at()  # file:line of this task's definition, for error lines
        #: replaces the "tttd calls entry(...)" rule of the prompt when set
        self.contract: str | None = None

    # ---- the program contract ----------------------------------------------------------------

    def program_from_code(self, code: str, state: State | None = None) -> Program:
        """The sandboxed program for a complete candidate program ``code``."""
        return Program(source=code, entry=self.entry, args=dict(self.args), limits=self.limits)

    def program_from_files(self, files: dict[str, str], state: State | None = None) -> Program:
        """The sandboxed program for a multi-file candidate: :data:`tttd.multifile.LAUNCHER` writes
        the files below the jail's working directory and calls ``entry`` in the main file."""
        return Program(source=LAUNCHER, entry="_tttd_run", args=dict(self.args), limits=self.limits,
                       inject={"_tttd_files": dict(files), "_tttd_main": self.main, "_tttd_entry": self.entry})

    @property
    def audit_rtol(self) -> float:
        """``tttd audit``'s tolerance: a metric tttd measures (the run time) is timing noise when
        re-run, as for the speed kit; otherwise the value must be reproduced exactly."""
        return 0.25 if any(m.name in MEASURED for m in self.metric_specs) else 1e-6

    def use_rule(self, text: str) -> None:
        super().use_rule(text)
        self._root_eval = None  # the initial program's value follows the rule too

    def _root_evaluation(self) -> Evaluation | None:
        """The initial program, run once in the sandbox and scored (None when there is none)."""
        if not self.initial_program.strip() and not self.files:
            return None
        if self._root_eval is None:
            from tttd.sandbox import run

            code = self.initial_program
            cand = Candidate(text="", files=dict(self.files), program=self.program_from_files(self.files)) \
                if self.files else Candidate(text="", code=code, program=self.program_from_code(code))
            ev = self.evaluate(cand, run(cand.program))
            if not ev.valid:  # one line naming the file and line (tttd.task_errors)
                from tttd.task_errors import TaskFileError

                loc = ev.metrics.get("where") or self._defined_at
                raise TaskFileError(f"{loc + ': ' if loc else ''}task {self.name or '?'}: the initial "
                                    f"program is not valid: {ev.message}")
            self._root_eval = ev
        return self._root_eval

    def initial_states(self, n: int, rng: np.random.Generator) -> list[State]:
        ev = self._root_evaluation()
        roots = []
        for i in range(n):
            if ev is None:
                roots.append(State(id=f"root{i}", value=None, artifact={"code": ""}))
            else:
                roots.append(State(id=f"root{i}", value=ev.value, artifact=dict(ev.artifact), key=ev.key,
                                   reward=ev.reward, output_tail=ev.output_tail, metrics=dict(ev.metrics)))
        return roots

    # ---- prompt and parsing ------------------------------------------------------------------

    def prompt(self, state: State, parent: State | None = None) -> list[Message]:
        better = "higher" if self.objective.maximize else "lower"
        code = (state.artifact.get("code") or "").strip()
        before = parent.value if parent is not None else None
        if before is None and state.parent_values:
            before = state.parent_values[0]
        parts = [self.statement, "## Current solution"]
        if state.value is None:
            parts.append(f"There is no solution yet, so no {self.value_label}.")
        elif before is not None:
            parts.append(f"The {self.value_label} ({better} is better) before and after running the "
                         f"code below: {_fmt(before)} -> {_fmt(state.value)}")
        else:
            parts.append(f"The current {self.value_label} ({better} is better): {_fmt(state.value)}")
        files = state.artifact.get("files")
        if self.files and isinstance(files, dict):
            parts += files_sections(files, self.readonly, self.prompt_chars, self.fence_of)
            parts += code_and_output_sections(None, state.output_tail, self.output_tail_chars)[1:]
        else:
            parts += code_and_output_sections(code, state.output_tail, self.output_tail_chars, self.code_language)
        parts += self.feedback_sections(state)
        call = ", ".join(f"{k}={_short(v)}" for k, v in self.args.items())
        rules = [self.contract or f"- tttd calls `{self.entry}({call})` and scores its return value: {self.returns}"]
        if split_evolve_block(code) is not None:
            rules.append(f"- Only the code between the `{EVOLVE_START}` and `{EVOLVE_END}` comments may change; "
                         "the rest of the program is kept as it is.")
        rules += [
            f"- {self.limits_rule()}",
            FILES_RULE.format(lang=self.code_language) if self.files else
            FORMAT_RULE.format(lang=self.code_language) if self.edits == "diff" and code else
            f"- Answer with one ```{self.code_language} code block containing the complete program.",
        ]
        if self.files:
            rules.insert(1, f"- The main file is {self.main} (it defines `{self.entry}`); its directory is on the "
                            "import path, so the files import each other as modules."
                            + (f" Read-only files: {', '.join(self.readonly)}." if self.readonly else ""))
        if self.contract is None:
            rules.insert(-1, "- Any score your program reports about itself is ignored: tttd recomputes it.")
        parts.append("## Rules\n" + "\n".join(rules))
        return [{"role": "user", "content": "\n\n".join(parts) + "\n"}]

    def fence_of(self, path: str) -> str:
        from tttd.evolve.folder import LANGUAGES

        return LANGUAGES.get("." + path.rsplit(".", 1)[-1].lower(), "") if "." in path else ""

    def example_answer(self, state: State) -> str | None:
        files = (state.artifact or {}).get("files")
        if self.files and isinstance(files, dict):
            return "\n\n".join(f"### File: {p}\n```{self.fence_of(p)}\n{t}```" for p, t in files.items()
                               if p not in self.readonly) or None
        code = (state.artifact or {}).get("code")
        return f"```{self.code_language}\n{code}\n```" if code else None

    def limits_rule(self) -> str:
        return f"Time limit {self.limits.wall_s:g} s, memory {self.limits.memory_mb} MB, no network."

    def feedback_sections(self, state: State) -> list[str]:
        """Prompt sections after the code and its output; the default shows what went wrong with
        the edit that made ``state`` (SEARCH/REPLACE blocks that did not apply)."""
        out = self.metrics_sections(state)
        notes = (state.metrics or {}).get("edit_notes")
        if notes:
            out.append("## Note on the edit that made this program\n" + "\n".join(f"- {n}" for n in notes))
        return out

    def metrics_sections(self, state: State) -> list[str]:
        """Several objectives: every metric of ``state`` with its direction, and the rule."""
        got = (state.metrics or {}).get("objectives")
        if not self.metric_specs or not isinstance(got, dict):
            return []
        lines = [f"- {m.name} = {_fmt(got.get(m.name))} ({'higher' if m.maximize else 'lower'} is better)"
                 + (" (measured by tttd: the program's run time)" if m.name in MEASURED else "")
                 for m in self.metric_specs]
        rule = f"the rule {self.rule.rule.text!r}" if self.rule else f"{self.primary_metric} (the primary metric)"
        return ["## Metrics of this program\n" + "\n".join(lines) + f"\nThe score above is {rule}."]

    def fences(self) -> tuple[str, ...]:
        """The code-fence languages accepted for a whole program."""
        lang = self.code_language
        return {"python": ("python", "py"), "cpp": ("cpp", "c++", "cc", "cxx"),
                "rust": ("rust", "rs")}.get(lang, (lang,))

    def parse(self, completion: str, state: State) -> Candidate:
        if self.files:
            parent = (state.artifact.get("files") if state is not None else None) or self.files
            made = apply_files_answer(completion, parent, self.readonly, self.caps)
            if made.files is None:
                return Candidate(text=completion, error=made.error)
            for path in made.changed:  # evolve blocks hold per file, as in a single-file program
                if path in parent and split_evolve_block(parent[path]) is not None:
                    made.files[path] = splice_evolve_block(parent[path], made.files[path])
            return Candidate(text=completion, files=made.files, program=self.program_from_files(made.files, state),
                             notes=made.notes)
        parent_code = (state.artifact.get("code") or "") if state is not None else ""
        notes: list[str] = []
        if self.edits == "diff" and parent_code:
            made = apply_answer(completion, parent_code, self.fences())
            if made.code is None:
                return Candidate(text=completion, error=made.error)
            code, notes = made.code, made.notes
        else:
            code = extract_code_block(completion, self.fences())
            if code is None:
                return Candidate(text=completion, error=f"no ```{self.code_language} code block in the answer")
        spliced = splice_evolve_block(parent_code, code) if parent_code else code
        outer, inner = split_evolve_block(parent_code), split_evolve_block(code)
        if outer is not None and inner is not None and (outer[0], outer[2]) != (inner[0], inner[2]):
            notes.append("changes outside the EVOLVE-BLOCK markers were dropped")
        return Candidate(text=completion, code=spliced, program=self.program_from_code(spliced, state),
                         notes=notes)

    def evaluate(self, candidate: Candidate, result: Any, state: State | None = None) -> Evaluation:
        ev = super().evaluate(candidate, result, state)
        if candidate.notes and ev.valid:
            ev.metrics["edit_notes"] = list(candidate.notes)
        return ev

    # ---- scoring -----------------------------------------------------------------------------

    def verify(self, data: Any, state: State | None = None) -> Evaluation:
        from tttd.task_errors import INVALID_ANSWER, SCORER_ERROR, where

        try:
            value = self.score(data)
        except INVALID_ANSWER as exc:  # the data is hostile: a verdict on the candidate
            ev = self.invalid(f"score() rejected the result: {type(exc).__name__}: {exc}")
            ev.metrics["where"] = where(exc)
            return ev
        except Exception as exc:  # anything else is a bug in the scorer, not in the candidate
            loc = where(exc)
            ev = self.invalid(f"score() raised {type(exc).__name__}: {exc}" + (f" at {loc}" if loc else "")
                              + " (a bug in the task's scorer)", status=SCORER_ERROR)
            ev.metrics["where"] = loc
            return ev
        objectives = None
        if self.metric_specs:
            objectives, why = self._objectives(value)
            if why is not None:
                return self.invalid(why)
            value = objectives[self.primary_metric]
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            return self.invalid(f"score() must return a number, got {type(value).__name__}")
        value = float(value)
        if not math.isfinite(value):
            return self.invalid(f"score() returned {value!r}")
        try:
            reward = self.primary_objective.reward(value)
        except ValueError as exc:
            return self.invalid(str(exc))
        artifact: dict[str, Any] = {}
        key = None
        plain = _plain(data)
        try:
            size = len(json.dumps(plain, allow_nan=False))
        except (TypeError, ValueError):
            size = None
        if size is not None and size <= self.keep_result_chars:
            artifact["result"] = plain
            key = artifact_key(plain)
        ev = Evaluation(valid=True, value=value, reward=reward, message=f"{self.value_label} {value:.10g}",
                        artifact=artifact, key=key)
        if objectives is not None:
            ev.metrics["objectives"] = objectives
        return ev

    def _objectives(self, got: Any) -> tuple[dict[str, float], str | None]:
        """score()'s dict of the declared metrics (tttd's own measurements excluded), checked."""
        if not isinstance(got, dict):
            return {}, f"score() must return a dict of the metrics {self._named()}, got {type(got).__name__}"
        out = {}
        for spec in self.metric_specs:
            if spec.name in MEASURED:
                continue
            v = got.get(spec.name)
            if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) \
                    or not math.isfinite(float(v)):
                return {}, f"score() returned {spec.name}={v!r}, not a finite number"
            out[spec.name] = float(v)
        return out, None

    def _named(self) -> str:
        return ", ".join(m.name for m in self.metric_specs if m.name not in MEASURED)

    def load_construction(self, obj: Any) -> Any:
        """A run's ``best/artifact.json`` holds ``{"result": data}`` (numpy arrays tagged, restored
        here as arrays); a bare value is data too."""
        if isinstance(obj, dict) and "result" in obj and set(obj) <= {"result", "files"}:
            obj = obj["result"]  # a multi-file program's artifact also holds its files
        return _unplain(obj)
