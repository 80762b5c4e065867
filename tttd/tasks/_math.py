"""Shared pieces of the paper's math tasks (Erdős, AC1, AC2, circle packing).

- Exact-enough convolution: direct (``np.convolve``) for small inputs, FFT above a work threshold,
  and :func:`max_convolution`, whose FFT path re-computes the near-maximal entries exactly so
  the maximum agrees with the direct convolution to rounding (the raw FFT maximum can be off by
  ~1e-16 * sum).
- Strict, memory-safe array validation: sizes are checked before anything large is allocated;
  bools, strings, ``None``, nested or ragged data, NaN and inf are rejected with a message.
- :class:`MathTask`: the common Task shape of these problems (roots, prompt, parse into a
  sandboxed :class:`~tttd.types.Program`). Subclasses give the problem text, the contract and
  ``verify``.

Trust boundary: the candidate program only *returns data*. No verifier code runs inside the
candidate's process (the paper injects its verifier there, SPEC 6.1 / 7.3) and no number the
program reports about itself is ever used; ``verify`` recomputes everything here.
"""

from __future__ import annotations

import copy
import hashlib
import math
import numbers
from typing import Any

import numpy as np

from tttd.task import Task, artifact_key, code_and_output_sections, extract_code_block
from tttd.types import Candidate, Evaluation, Limits, Message, Program, State

#: Longest sequence any math verifier accepts (checked before converting to an array).
MAX_SEQUENCE_LEN = 1_000_000
#: Above this many multiply-adds (len(a) * len(b)) convolutions use the FFT.
DIRECT_WORK_LIMIT = 1 << 24
#: The exact re-computation of FFT near-maxima is skipped when it would cost more than this.
REFINE_WORK_LIMIT = 1 << 28

_EPS = float(np.finfo(np.float64).eps)


# --------------------------------------------------------------------------------------------
# Convolution
# --------------------------------------------------------------------------------------------


def fft_convolve(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Full linear convolution of two real 1-D arrays via a real FFT of a fast length."""
    from scipy import fft as sfft

    size = a.size + b.size - 1
    nfft = sfft.next_fast_len(size, real=True)
    out = sfft.irfft(sfft.rfft(a, nfft) * sfft.rfft(b, nfft), nfft)
    return out[:size]


def convolve(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Full convolution: direct below :data:`DIRECT_WORK_LIMIT` multiply-adds, FFT above."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.size == 0 or b.size == 0:
        raise ValueError("cannot convolve an empty sequence")
    if a.size * b.size <= DIRECT_WORK_LIMIT:
        return np.convolve(a, b)
    return fft_convolve(a, b)


def _exact_entry(a: np.ndarray, b: np.ndarray, k: int) -> float:
    """Entry k of the full convolution, summed directly: sum_i a[i] * b[k - i]."""
    lo = max(0, k - b.size + 1)
    hi = min(k, a.size - 1)
    return float(np.dot(a[lo : hi + 1], b[k - hi : k - lo + 1][::-1]))


def max_convolution(a: np.ndarray, b: np.ndarray) -> tuple[float, np.ndarray]:
    """(max of the full convolution a*b, the convolution itself).

    On the FFT path, every entry within the FFT error bound of the maximum is recomputed by a
    direct dot product, so the maximum is the exact one up to summation-order rounding. The
    bound used is 32 * eps * log2(N) * ||a||_2 * ||b||_2 (each convolution entry is at most
    ||a|| ||b|| by Cauchy-Schwarz, and FFT rounding error grows like eps log N times that).
    If too many entries tie (a very flat convolution of a huge sequence), the FFT maximum is
    returned; its error is then below that bound.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    c = convolve(a, b)
    top = float(c.max())
    if a.size * b.size <= DIRECT_WORK_LIMIT:
        return top, c
    bound = 32.0 * _EPS * math.log2(c.size + 1) * float(np.linalg.norm(a) * np.linalg.norm(b))
    idx = np.flatnonzero(c >= top - 2.0 * bound)
    if idx.size * min(a.size, b.size) > REFINE_WORK_LIMIT:
        return top, c
    exact = max(_exact_entry(a, b, int(k)) for k in idx)
    return exact, c


# --------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------


def _describe(x: Any) -> str:
    return type(x).__name__


def as_vector(
    data: Any, what: str, *, max_len: int = MAX_SEQUENCE_LEN, min_len: int = 1
) -> np.ndarray:
    """A finite float64 1-D array from a list/tuple/ndarray of real numbers, or ValueError.

    The length is checked before any conversion, so a huge list costs no extra memory.
    Rejected: other container types, bools (as the paper's AC verifier), strings, None,
    nested or ragged data, complex numbers, NaN and inf.
    """
    if isinstance(data, np.ndarray):
        if data.ndim != 1:
            raise ValueError(f"{what} must be 1-D, got an array of shape {data.shape}")
        n = data.size
    elif isinstance(data, (list, tuple)):
        n = len(data)
    else:
        raise ValueError(f"{what} must be a list of numbers, got {_describe(data)}")
    if n < min_len:
        if n == 0:
            raise ValueError(f"{what} is empty")
        raise ValueError(f"{what} has {n} entries; at least {min_len} are needed")
    if n > max_len:
        raise ValueError(f"{what} has {n} entries; the limit is {max_len}")
    if isinstance(data, np.ndarray):
        if data.dtype.kind not in "iuf":
            raise ValueError(f"{what} must contain only real numbers, got dtype {data.dtype}")
        arr = data
    else:
        for t in set(map(type, data)):  # one C-level pass; then explain the first offender
            if issubclass(t, (bool, np.bool_)) or not issubclass(t, numbers.Real):
                i = next(i for i, x in enumerate(data) if type(x) is t)
                if issubclass(t, (bool, np.bool_)):
                    raise ValueError(f"{what}[{i}] is a bool ({data[i]!r}), not a number")
                if isinstance(data[i], (list, tuple, np.ndarray)):
                    raise ValueError(f"{what} must be a flat list of numbers, got nested data at index {i}")
                raise ValueError(f"{what} must contain only real numbers; {what}[{i}] is {_describe(data[i])}")
        try:
            arr = np.asarray(data, dtype=np.float64)
        except (ValueError, TypeError, OverflowError) as exc:
            raise ValueError(f"{what} is not a flat list of real numbers ({exc})") from None
    arr = arr.astype(np.float64)
    finite = np.isfinite(arr)
    if not finite.all():
        i = int(np.flatnonzero(~finite)[0])
        count = int((~finite).sum())
        raise ValueError(f"{what} has {count} non-finite entries (NaN or inf), first at index {i}: {arr[i]}")
    return arr


def as_matrix(data: Any, what: str, shape: tuple[int, int]) -> np.ndarray:
    """A finite float64 array of exactly ``shape`` (rows, cols), or ValueError."""
    rows, cols = shape
    if isinstance(data, np.ndarray):
        if data.shape != shape:
            raise ValueError(f"{what} must have shape {shape}, got {data.shape}")
        arr = data
    elif isinstance(data, (list, tuple)):
        if len(data) != rows:
            raise ValueError(f"{what} must have shape {shape}, got {len(data)} rows")
        for i, row in enumerate(data):
            if not isinstance(row, (list, tuple, np.ndarray)) or len(row) != cols:
                raise ValueError(f"{what}[{i}] must be a list of {cols} numbers, got {row!r}"[:200])
            for x in row:
                if isinstance(x, (bool, np.bool_)):
                    raise ValueError(f"{what}[{i}] contains a bool, not a number")
        try:
            arr = np.asarray(data)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"{what} is not a {rows}x{cols} table of numbers ({exc})") from None
    else:
        raise ValueError(f"{what} must be a list of {rows} rows, got {_describe(data)}")
    if arr.shape != shape:
        raise ValueError(f"{what} must have shape {shape}, got {arr.shape}")
    if arr.dtype.kind not in "iuf":
        raise ValueError(f"{what} must contain only real numbers, got dtype {arr.dtype}")
    arr = arr.astype(np.float64)
    if not np.isfinite(arr).all():
        raise ValueError(f"{what} has non-finite entries (NaN or inf)")
    return arr


def claimed_number(x: Any) -> float | None:
    """A program's self-reported score as a float, for reporting only (never for scoring)."""
    if isinstance(x, bool) or not isinstance(x, (numbers.Real, np.floating, np.integer)):
        if isinstance(x, np.ndarray) and x.shape == ():
            return claimed_number(x.item())
        return None
    v = float(x)
    return v if math.isfinite(v) else None


def claim_note(claimed: float | None, actual: float, fmt: str = "{:.10f}") -> str:
    if claimed is None:
        return ""
    return f"; the program claimed {fmt.format(claimed)} (ignored, verified {fmt.format(actual)})"


def sequence_key(values: np.ndarray) -> str:
    """A dedup key for a float sequence: values rounded to 40 significant bits (~12 digits).

    Same idea as :func:`tttd.task.artifact_key` (12 significant digits) but vectorised: that one
    formats every float in Python and takes ~0.2 s for 100,000 entries, once per evaluation.
    """
    m, e = np.frexp(np.asarray(values, dtype=np.float64))
    mant = np.round(m * float(1 << 40)).astype(np.int64)
    digest = hashlib.sha256(b"seq:" + mant.tobytes() + e.astype(np.int32).tobytes())
    return digest.hexdigest()[:32]


def fmt_value(v: float | None) -> str:
    return "none" if v is None else f"{v:.10f}"


# --------------------------------------------------------------------------------------------
# The common task shape
# --------------------------------------------------------------------------------------------


def paper_preset(eval_timeout_s: float, cpus: int) -> dict[str, Any]:
    """The paper's run settings (SPEC 4.1, authors' packaged config) with per-task eval limits."""
    return {
        "steps": 50,
        "groups": 8,
        "group_size": 64,
        "learning_rate": 4e-5,
        "lora_rank": 32,
        "max_tokens": 26000,
        "temperature": 1.0,
        "kl_coef": 0.1,
        "objective": "entropic",
        "reuse": "puct",
        "puct_c": 1.0,
        "topk_children": 2,
        "archive_size": 1000,
        "visit_counting": "rollout",  # the authors' code counts one visit per rollout
        "forced_answer": True,  # the authors' two-phase sampling (tttd.policy.forced_answer)
        "eval_timeout_s": float(eval_timeout_s),
        "cpus_per_eval": int(cpus),
    }


class MathTask(Task):
    """Common shape of the math tasks: a program returns a construction; tttd verifies it.

    Constructor options (all tasks):
      start: "random" (the paper's random roots, SPEC 3.4) or "best" (every root carries the
        construction in ``start_file``, e.g. a file from shared/data; the paper's best_available).
      start_file: a construction JSON file; implies start="best".
      eval_timeout_s, cpus_per_eval, eval_memory_mb: the sandbox limits (names as in RunConfig).
    The program is told a budget of 90% of the timeout (the paper tells 1000 s and kills at
    1005 s; tttd keeps a margin for start-up and returning the data).
    """

    #: the contract: entry point name, its signature as shown, what it returns
    entry: str = "run"
    signature: str = "run()"
    returns: str = ""
    #: keyword arguments tttd passes (values from the budget); () = called with no arguments
    call_args: tuple[str, ...] = ()
    #: the global the state's construction is injected as (None: nothing injected)
    inject_name: str | None = None
    inject_doc: str = ""
    default_eval_timeout_s: float = 1000.0
    default_cpus: int = 2
    default_memory_mb: int = 4096
    value_label: str = "value"
    problem: str = ""
    verifier_source: str = ""
    target: str = ""
    required_construction_keys: tuple[str, ...] = ()
    #: body of the entry function of ``tttd prompt``'s example answer (None: no example)
    example_body: str | None = None

    def __init__(
        self,
        start: str = "random",
        start_file: str | None = None,
        eval_timeout_s: float | None = None,
        cpus_per_eval: int | None = None,
        eval_memory_mb: int | None = None,
    ) -> None:
        if start_file is not None:
            start = "best"
        if start not in ("random", "best"):
            raise ValueError(f"start must be 'random' or 'best', got {start!r}")
        if start == "best" and start_file is None:
            raise ValueError("start='best' needs start_file=PATH (e.g. a file under shared/data)")
        self.start = start
        self.start_file = start_file
        self.eval_timeout_s = float(eval_timeout_s or self.default_eval_timeout_s)
        self.cpus = int(cpus_per_eval or self.default_cpus)
        self.memory_mb = int(eval_memory_mb or self.default_memory_mb)
        if self.eval_timeout_s <= 0 or self.cpus < 1 or self.memory_mb < 64:
            raise ValueError("eval_timeout_s must be > 0, cpus_per_eval >= 1, eval_memory_mb >= 64")
        self._start_eval: Evaluation | None = None
        if start_file is not None:
            self._start_eval = self._load_start(start_file)

    # ---- subclass hooks ------------------------------------------------------------------

    def random_construction(self, rng: np.random.Generator) -> Any:
        """verify()'s input for one random root, or None for an empty root."""
        return None

    def inject_value(self, construction: Any) -> Any:
        return np.asarray(construction, dtype=np.float64)

    # ---- shared behaviour ----------------------------------------------------------------

    @property
    def budget_s(self) -> int:
        return max(1, int(self.eval_timeout_s * 0.9))

    @property
    def limits(self) -> Limits:
        return Limits(wall_s=self.eval_timeout_s, memory_mb=self.memory_mb, threads=self.cpus)

    def _load_start(self, path: str) -> Evaluation:
        import json

        with open(path, encoding="utf-8") as fh:
            obj = json.load(fh)
        ev = self.verify(self.load_construction(obj))
        if not ev.valid:
            raise ValueError(f"start file {path} holds an invalid construction: {ev.message}")
        return ev

    def _root(self, i: int, ev: Evaluation | None) -> State:
        sid = f"{self.name}-root-{i:03d}"
        if ev is None:
            return State(id=sid, value=None, artifact={"code": "", "construction": None})
        return State(
            id=sid,
            value=ev.value,
            artifact={"code": "", "construction": copy.deepcopy(ev.artifact["construction"])},
            key=ev.key,
            reward=ev.reward,
            metrics=dict(ev.metrics),
        )

    def initial_states(self, n: int, rng: np.random.Generator) -> list[State]:
        if n < 1:
            raise ValueError(f"need at least one initial state, got n={n}")
        roots = []
        for i in range(n):
            ev = self._start_eval
            if ev is None:
                data = self.random_construction(rng)
                if data is not None:
                    ev = self.verify(data)
                    if not ev.valid:  # a bug in random_construction, not a user error
                        raise RuntimeError(f"random root is invalid: {ev.message}")
            roots.append(self._root(i, ev))
        return roots

    def _value_context(self, state: State, parent: State | None) -> str:
        before = parent.value if parent is not None and parent.value is not None else None
        if before is None and state.parent_values:
            before = state.parent_values[0]
        lines = []
        if state.value is None:
            lines.append(f"There is no solution yet, so no {self.value_label}.")
        elif before is not None:
            lines.append(
                f"The {self.value_label} before and after running the code below: "
                f"{fmt_value(before)} -> {fmt_value(state.value)}"
            )
        else:
            lines.append(f"The current {self.value_label}: {fmt_value(state.value)}")
        construction = state.artifact.get("construction")
        if construction:
            lines.append(f"Construction length: {len(construction)}")
        lines.append(self.target)
        return "\n".join(lines)

    def prompt(self, state: State, parent: State | None = None) -> list[Message]:
        code = (state.artifact.get("code") or "").strip()
        parts = [self.problem.strip(), "## How a solution is scored (run by tttd, not by you)"]
        parts.append("```python\n" + self.verifier_source.strip() + "\n```")
        parts.append("## Current solution\n" + self._value_context(state, parent))
        parts += code_and_output_sections(code, state.output_tail, self.output_tail_chars)
        parts.append("## Rules\n" + self._rules(state))
        return [{"role": "user", "content": "\n\n".join(parts) + "\n"}]

    def _rules(self, state: State) -> str:
        call = ", ".join(f"{a}={self.budget_s}" for a in self.call_args)
        rules = [
            f"- Define `{self.signature}`. tttd calls `{self.entry}({call})` and uses its return "
            f"value: {self.returns}",
        ]
        if self.inject_name and state.artifact.get("construction"):
            rules.append(f"- The global `{self.inject_name}` is predefined: {self.inject_doc}")
        else:
            rules.append("- No construction is predefined: start from scratch.")
        rules += [
            "- numpy and scipy are installed. No helper functions are predefined (the scorer above "
            "runs separately); write your own evaluation if you need one.",
            f"- Time budget: {self.budget_s} s of wall-clock time on {self.cpus} CPU(s) and "
            f"{self.memory_mb} MB of memory; the program is killed at {self.eval_timeout_s:g} s. "
            "No network access.",
            "- Any score your program reports about itself is ignored: tttd recomputes it.",
            "- Answer with one ```python code block containing the complete program.",
        ]
        return "\n".join(rules)

    def _inject(self, state: State) -> dict[str, Any]:
        construction = state.artifact.get("construction") if state is not None else None
        if not self.inject_name or not construction:
            return {}
        return {self.inject_name: self.inject_value(construction)}

    def example_answer(self, state: State) -> str | None:
        if self.example_body is None or (self.inject_name and "{inject}" in self.example_body
                                         and not (state.artifact or {}).get("construction")):
            return super().example_answer(state)
        body = self.example_body.format(inject=self.inject_name)
        return f"A first answer that returns the current construction.\n\n```python\ndef {self.signature}:\n{body}\n```\n"

    def draw(self, artifact: dict[str, Any], ax: Any) -> bool:
        """A 1-D construction drawn as the step function it defines."""
        values = (artifact or {}).get("construction")
        if not isinstance(values, list) or not values or not all(isinstance(v, (int, float)) for v in values):
            return False
        y = np.asarray(values, dtype=float)
        ax.stairs(y, np.arange(len(y) + 1), fill=True, alpha=0.6)
        ax.set_xlabel("step index")
        ax.set_ylabel("height")
        ax.set_title(f"{self.name}: {len(y)} steps")
        return True

    def parse(self, completion: str, state: State) -> Candidate:
        code = extract_code_block(completion)
        if code is None:
            return Candidate(text=completion, error="no python code block")
        program = Program(
            source=code,
            entry=self.entry,
            args={a: self.budget_s for a in self.call_args},
            inject=self._inject(state),
            limits=self.limits,
        )
        return Candidate(text=completion, code=code, program=program)

    def valid(
        self, value: float, construction: Any, message: str, metrics: dict[str, Any], key: str | None = None
    ) -> Evaluation:
        """A valid evaluation whose artifact is the normalised ``construction``."""
        return Evaluation(
            valid=True,
            value=float(value),
            reward=self.objective.reward(value),
            message=message,
            artifact={"construction": construction},
            key=key or artifact_key(construction),
            metrics=metrics,
        )

    def construction_from(self, obj: Any, keys: tuple[str, ...]) -> Any:
        """The first of ``keys`` in a construction file's dict (or the object itself if a list)."""
        if isinstance(obj, dict):
            for k in keys:
                if k in obj:
                    return obj[k]
            raise ValueError(
                f"no construction found: expected one of the keys {', '.join(keys)}; "
                f"got {', '.join(sorted(map(str, obj))) or 'none'}"
            )
        return obj
