"""The ``denoising`` task: single-cell RNA denoising as TTT-Discover ran it (SPEC 5.8), evaluated
in the trusted process.

The candidate defines ``magic_denoise(X, **kwargs)``; tttd calls it in the sandbox as
``magic_denoise(X=train, random_state=42, budget_s=B)`` with the MCV train counts (dense float64,
cells x genes) and takes the returned array as data. The held-out test counts never enter the
candidate's process (the paper ran its metrics inside the generated program, where the program
could redefine them and read the test split: SPEC 7.3 item 8).

Verdict, as the paper: the output must be a same-shape, finite, non-negative array whose max is
at most the sum of the train counts; it is rejected when its (swapped, faithful) Poisson score is
below the perfect one or its Poisson_norm is below 0.97. Value = clip(MSE_norm, 0, 1) (the
paper's buffer value). The reward (option ``reward``): ``"value"`` (default: tttd's one objective,
SPEC 7.3 item 11, reward = value) or ``"inverse_mse"`` (the authors' reward with the entropic
objective: 1 / raw MSE, 0 for a failure; the ``paper`` preset). With ``metric="hardened"`` the
value is clip(deviance_norm, 0, 1) of :func:`tttd.tasks.denoising.metrics.count_deviance` and the
Poisson gate is not applied (``inverse_mse`` then still rewards 1 / MSE).

Candidates may import numpy and scipy, and scikit-learn, graphtools, scprep and scanpy when they
are installed (the ``denoising-candidates`` extra, as the authors' final program uses them); the
prompt lists the ones found, detected in the trusted process without importing them (tttd itself
never imports the GPL packages outside :mod:`~tttd.tasks.denoising.baselines`).
Two additions: normalised scores above :data:`~tttd.tasks.denoising.problem.LEAK_CEILING` are
rejected as a leak of the held-out split, and every verdict reports the candidate's scores under
both metrics beside the sanity baselines (identity, perfect, all-zeros, 1e-9*train**2, MAGIC with
the GPL extra) on the same split.

Datasets (``dataset=``): ``celltypist`` (default: real counts, offline once cached),
``synthetic`` (options ``n_cells``, ``n_genes``, ``data_seed``), and the paper's ``pancreas``
(the ``paper`` preset; split seed 42 as TTT trained), ``pbmc`` and ``tabula`` (split seed 0, as
the paper reported), which need internet once. Scores on one dataset do not transfer to another.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from tttd.config import ConfigError
from tttd.registry import register_task
from tttd.task import Objective, Task, artifact_key, extract_code_block, tail
from tttd.tasks._math import paper_preset
from tttd.tasks.denoising.data import DataError
from tttd.tasks.denoising.problem import (GATE_POISSON_NORM, LEAK_CEILING, Problem, Scores, get_problem,
                                          secret_seeds, value_of)
from tttd.types import Candidate, Evaluation, Limits, Message, Program, State

ROOT_SOURCE = (Path(__file__).with_name("root_program.py")).read_text(encoding="utf-8").strip() + "\n"
RANDOM_STATE = 42
METRICS = ("paper", "hardened")
REWARDS = ("value", "inverse_mse")
#: what a candidate may import, when installed (import name, package name); numpy and scipy are
#: tttd's own dependencies, the others come with the ``denoising-candidates`` extra
CANDIDATE_PACKAGES = (("numpy", "numpy"), ("scipy", "scipy"), ("sklearn", "scikit-learn"),
                      ("graphtools", "graphtools"), ("scprep", "scprep"), ("scanpy", "scanpy"))

KEY_INSIGHTS = """\
## What is known to work (from the authors' benchmarks)

- Order matters: smooth the raw (or log) counts first and normalise afterwards. Normalising first
  and then smoothing breaks the Poisson constraint (about 0.55 Poisson_norm against about 0.98
  for the other order, with MAGIC).
- A square-root transform makes Poisson counts' variance roughly constant, which helps smoothing.
- The Poisson score is dominated by small non-zero predictions: values below 1 are better pushed
  towards zero.
- MAGIC (diffusion over a cell-cell neighbour graph) with that "smooth first" order is the
  strongest known baseline."""


def candidate_packages() -> list[str]:
    """The packages of :data:`CANDIDATE_PACKAGES` installed here (found with
    ``importlib.util.find_spec``, which does not import them)."""
    import importlib.util

    found = []
    for module, package in CANDIDATE_PACKAGES:
        try:
            if importlib.util.find_spec(module) is not None:
                found.append(package)
        except (ImportError, ValueError):
            pass
    return found

# The authors' launch scripts are empty (SPEC "provenance caveat"); their only denoising launch,
# docs/launching.md, passes num_cpus_per_task=2 and no eval_timeout, so the CLI default 1000 s
# applies, which is also the budget their prompt states. (The 4 CPUs / 600 s of env_denoising.py's
# default_config are always overwritten by the CLI values, SPEC 4.2.)
_PAPER_PRESET = paper_preset(eval_timeout_s=1000.0, cpus=2)
_PAPER_PRESET["task_options"] = {"dataset": "pancreas", "split_seed": 42, "reward": "inverse_mse"}
_PAPER_PRESET["eval_memory_mb"] = 16384  # 1937 x 15502 float64 is 240 MB per copy

EVALUATION_SOURCE = """\
def log_normalize(A):            # scanpy normalize_total(target_sum=1e4) + log1p, per cell
    s = A.sum(axis=1, keepdims=True)
    return np.where(s > 0, np.log1p(1e4 * A / np.where(s > 0, s, 1)), 0.0)

def evaluate_mse(test, denoised):                  # lower is better
    return np.mean((log_normalize(test) - log_normalize(denoised)) ** 2)

def evaluate_poisson(test, denoised, train):       # as OpenProblems computes it
    scaled = denoised * test.sum() / train.sum()
    return np.mean(test - scaled * np.log(test + 1e-6))
"""

HARDENED_SOURCE = """\
def evaluate_deviance(test, denoised, train, floor=0.01):   # lower is better
    n_genes = test.shape[1]
    tot = denoised.sum(axis=1, keepdims=True)
    profile = np.where(tot > 0, denoised / np.where(tot > 0, tot, 1), 1.0 / n_genes)
    lam = train.sum(axis=1, keepdims=True) / 9 * ((1 - floor) * profile + floor / n_genes)
    term = np.where(test > 0, test * np.log(np.where(test > 0, test, 1) / lam), 0.0)
    return np.mean(2 * (term - (test - lam)))
"""


def _fmt_baselines(base: dict[str, Scores]) -> str:
    parts = [f"{name} {s.mse_norm:.3f}/{s.poisson_norm:.3f}/{s.deviance_norm:.3f}" for name, s in base.items()]
    return "baselines on this split (MSE_norm/Poisson_norm/hardened): " + ", ".join(parts)


@register_task("denoising")
class DenoisingTask(Task):
    """Single-cell RNA-seq denoising (OpenProblems v1 / TTT-Discover), scored in the trusted process."""

    name = "denoising"
    summary = "Denoise single-cell RNA counts (paper: MSE_norm, gated by Poisson; honest baselines shown)"
    objective = Objective(direction="maximize", transform="identity", failure_reward=0.0)
    presets = {"paper": _PAPER_PRESET}
    entry = "magic_denoise"
    #: a run draws a fresh split_secret (tttd.cli.run.add_run_secrets) unless split_seed is given
    secret_options = ("split_secret",)
    public_alternatives = {"split_secret": ("split_seed",)}

    def __init__(
        self,
        dataset: str = "celltypist",
        split_seed: int | None = None,
        metric: str = "paper",
        prompt_variant: str = "improvement",
        n_cells: int | None = None,
        n_genes: int | None = None,
        data_seed: int | None = None,
        cache_dir: str | None = None,
        eval_timeout_s: float | None = None,
        cpus_per_eval: int | None = None,
        eval_memory_mb: int | None = None,
        reward: str = "value",
        split_secret: str | None = None,
    ) -> None:
        if reward not in REWARDS:
            raise ValueError(f"reward must be one of {', '.join(REWARDS)}, got {reward!r}")
        self.reward_kind = reward
        if metric not in METRICS:
            raise ValueError(f"metric must be one of {', '.join(METRICS)}, got {metric!r}")
        if prompt_variant not in ("improvement", "previous"):
            raise ValueError(f"prompt_variant must be 'improvement' or 'previous', got {prompt_variant!r}")
        from tttd.tasks.denoising.data import LOADERS

        if dataset not in LOADERS:
            raise ValueError(f"unknown denoising dataset {dataset!r}; known: {', '.join(LOADERS)}")
        self.dataset = str(dataset)
        self.split_seed = int(split_seed if split_seed is not None else (42 if dataset == "pancreas" else 0))
        self.secret = split_secret is not None
        if split_secret is not None and split_seed is not None:
            raise ValueError("split_seed and split_secret exclude each other (a public or a secret split)")
        secret_split, secret_data = secret_seeds(split_secret) if split_secret is not None else ((), 0)
        self._split: int | tuple[int, ...] = secret_split or self.split_seed
        self.metric = metric
        self.prompt_variant = prompt_variant
        options: dict[str, Any] = {}
        if self.dataset == "synthetic":
            if self.secret and data_seed is None:  # the data itself must not be rebuildable either
                data_seed = secret_data
            for key, val in (("n_cells", n_cells), ("n_genes", n_genes), ("seed", data_seed)):
                if val is not None:
                    options[key] = int(val)
        elif n_cells is not None or n_genes is not None or data_seed is not None:
            raise ValueError("n_cells, n_genes and data_seed apply only to dataset='synthetic'")
        if cache_dir is not None and self.dataset != "synthetic":
            options["root"] = str(cache_dir)
        self._options = options
        self.eval_timeout_s = float(eval_timeout_s or 600.0)
        self.cpus = int(cpus_per_eval or 2)
        self.memory_mb = int(eval_memory_mb or 8192)
        if self.eval_timeout_s <= 0 or self.cpus < 1 or self.memory_mb < 256:
            raise ValueError("eval_timeout_s must be > 0, cpus_per_eval >= 1, eval_memory_mb >= 256")
        self._problem: Problem | None = None
        self._root: Evaluation | None = None

    # ---- data ---------------------------------------------------------------------------

    @property
    def problem(self) -> Problem:
        if self._problem is None:
            try:
                self._problem = get_problem(self.dataset, self._split, **self._options)
            except DataError as exc:
                raise ConfigError(f"denoising dataset {self.dataset!r}: {exc}") from None
        return self._problem

    def prepare(self) -> None:
        """Load the dataset and split it (a run or verify fails here, before writing anything)."""
        _ = self.problem

    @property
    def budget_s(self) -> int:
        return max(1, int(self.eval_timeout_s * 0.9))

    @property
    def limits(self) -> Limits:
        result_mb = int(self.problem.train.nbytes // 2**20) + 16
        return Limits(wall_s=self.eval_timeout_s, memory_mb=self.memory_mb, threads=self.cpus,
                      result_mb=max(64, result_mb))

    # ---- roots and prompts --------------------------------------------------------------

    def root_evaluation(self) -> Evaluation:
        """The MAGIC-like root program's verdict (tttd's own trusted code, run in this process).

        On small or unusual data the paper's Poisson gate can reject it (every small-scale output
        has the same Poisson_norm, below 0.97 on e.g. 400 x 2000 synthetic data); the roots then
        carry its code with no value, and the verdict's message says why."""
        if self._root is None:
            from tttd.tasks.denoising.root_program import magic_denoise

            p = self.problem
            if p.root_output is None:  # shared by every task on this (cached) problem
                p.root_output = np.asarray(magic_denoise(p.train.copy(), random_state=RANDOM_STATE))
            self._root = self.verify(p.root_output)
        return self._root

    def initial_states(self, n: int, rng: np.random.Generator) -> list[State]:
        if n < 1:
            raise ValueError(f"need at least one initial state, got n={n}")
        ev = self.root_evaluation()
        metrics = dict(ev.metrics, message=ev.message)  # the verdict, with the baselines
        return [
            State(id=f"{self.name}-root-{i:03d}", value=ev.value if ev.valid else None,
                  artifact={"code": ROOT_SOURCE}, key=artifact_key(ROOT_SOURCE),
                  reward=ev.reward if ev.valid else None, metrics=dict(metrics))
            for i in range(n)
        ]

    def _problem_text(self) -> str:
        p = self.problem
        n, g = p.shape
        if self.metric == "paper":
            gate = self._gate_text()
            scoring = (
                "## Evaluation\n\nYour output is evaluated against the held-out molecules with these "
                "exact functions (run by tttd in a separate process, not by you):\n\n"
                f"```python\n{EVALUATION_SOURCE}```\n\n## Scoring\n\n{gate}\n\n"
                "**Reward = MSE score only** (after passing the Poisson constraint): "
                f"`mse_norm = ({p._identity[0]:.6f} - mse) / {p._identity[0]:.6f}`, clipped to [0, 1]."
            )
        else:
            scoring = (
                "## Evaluation\n\nYour output is evaluated against the held-out molecules with this "
                "exact function (run by tttd in a separate process, not by you): the Poisson deviance "
                "of the held-out counts under each cell's predicted expression profile (only the "
                "profile of each row matters, not its scale).\n\n"
                f"```python\n{HARDENED_SOURCE}```\n\n## Scoring\n\n"
                f"`score = ({p._identity[3]:.6f} - deviance) / ({p._identity[3]:.6f} - "
                f"{p._perfect[3]:.6f})`, clipped to [0, 1]; 0 is returning X unchanged."
            )
        return (
            "You are an expert in computational biology and single-cell RNA-seq analysis.\n"
            "Your task is to develop a denoising algorithm for scRNA-seq count data.\n\n"
            "## Problem\n\nSingle-cell RNA-seq data is noisy because each cell's molecules are "
            "captured sparsely. Given noisy count data, predict the true expression levels. The "
            "molecules of every cell were split at random (binomial thinning): you see 90%, and "
            "your prediction is evaluated against the other 10%.\n\n"
            f"## Data Format\n\n- Input `X`: numpy float64 array of shape ({n}, {g}) (cells x genes), "
            "**raw integer counts**\n- Output: a numpy array of the same shape, your denoised counts "
            "(finite, non-negative)\n\n" + scoring
        )

    def _gate_text(self) -> str:
        p = self.problem
        return (
            "**Poisson is a HARD CONSTRAINT.** Your solution is REJECTED if `poisson_norm < "
            f"{GATE_POISSON_NORM}` or `poisson < {p.poisson_perfect:.6f}`.\n"
            f"- `poisson_norm = ({p._identity[1]:.6f} - poisson) / ({p._identity[1]:.6f} - "
            f"{p.poisson_perfect:.6f})`"
        )

    def _rules(self) -> str:
        return (
            f"## Budget & Resources\n\n- **Time budget**: {self.budget_s}s for your code to run "
            f"(it is stopped at {self.eval_timeout_s:g}s and then scores nothing): measure the time "
            "your code takes and keep within the budget.\n- **CPUs**: "
            f"{self.cpus} available; **memory**: {self.memory_mb} MB.\n\n"
            "## Function Signature to return\n\n```python\ndef magic_denoise(X, **kwargs):\n"
            f"    # tttd calls magic_denoise(X=X, random_state={RANDOM_STATE}, budget_s={self.budget_s})\n"
            "    return denoised_X  # numpy array, same shape as X\n```\n\n## Rules\n\n"
            "- Implement `magic_denoise(X, ...)` returning the denoised data as a numpy array\n"
            f"- You may import {', '.join(candidate_packages())} (nothing else is installed)\n"
            "- No filesystem or network IO; the held-out molecules are not "
            "available to your program\n- Any score your program prints is ignored: tttd recomputes it\n"
            f"- A normalised score above {LEAK_CEILING} is rejected as a leak of the held-out molecules\n"
            "- Answer with one ```python code block containing the complete program"
        )

    def prompt(self, state: State, parent: State | None = None) -> list[Message]:
        code = (state.artifact.get("code") or "").strip()
        m = state.metrics or {}
        ctx = ""
        if "mse" in m and "poisson" in m:
            ctx = f"Current metrics (lower is better): MSE: {m['mse']:.6f}, Poisson: {m['poisson']:.6f}"
            if self.metric == "hardened" and "deviance" in m:
                ctx += f", deviance: {m['deviance']:.6f}"
        parts = [self._problem_text(), KEY_INSIGHTS, self._rules()]
        if code and self.prompt_variant == "improvement":
            parts.append(f"Here is the current implementation:\n```python\n{code}\n```\n\n"
                         f"You are iteratively improving the denoising algorithm. {ctx}\n\n"
                         "Reason about how you could improve this approach.")
        elif code:
            parts.append(f"Here is a previous implementation you might want to improve:\n\n"
                         f"```python\n{code}\n```\n\n{ctx}")
        else:
            parts.append("Write code to implement a denoising algorithm.")
        out = tail(state.output_tail or "", self.output_tail_chars).strip()
        if out:
            parts.append("Output of the last run:\n```\n" + out + "\n```")
        verb = "improved " if code and self.prompt_variant == "improvement" else ""
        parts.append(f"Write your {verb}`magic_denoise` function.")
        return [{"role": "user", "content": "\n\n".join(parts) + "\n"}]

    # ---- candidates ---------------------------------------------------------------------

    def parse(self, completion: str, state: State) -> Candidate:
        code = extract_code_block(completion)
        if code is None:
            return Candidate(text=completion, error="no python code block")
        program = Program(
            source=code, entry=self.entry,
            args={"X": self.problem.train, "random_state": RANDOM_STATE, "budget_s": self.budget_s},
            limits=self.limits,
        )
        return Candidate(text=completion, code=code, program=program)

    def load_construction(self, obj: Any) -> Any:
        raise ValueError("the denoising task verifies programs: pass a .py file defining magic_denoise")

    def verify(self, data: Any, state: State | None = None) -> Evaluation:
        p = self.problem
        try:
            D = p.check(data)
        except ValueError as exc:
            return self.invalid(str(exc))
        s = p.score(D)
        base = p.baselines()
        report = _fmt_baselines(base)
        metrics: dict[str, Any] = {
            "mse": s.mse, "poisson": s.poisson, "deviance": s.deviance, "scores": s.to_dict(),
            "baselines": {k: v.to_dict() for k, v in base.items()},
            "dataset": self.dataset, "split_seed": "secret" if self.secret else self.split_seed, "metric": self.metric,
        }
        scores = (f"MSE {s.mse:.4f} (norm {s.mse_norm:.3f}), Poisson {s.poisson:.4f} (norm "
                  f"{s.poisson_norm:.3f}), paper mean {s.mean:.3f}; hardened deviance {s.deviance:.4f} "
                  f"(norm {s.deviance_norm:.3f})")
        where = f"{self.dataset} {p.shape[0]}x{p.shape[1]}, " + (
            "this run's secret split" if self.secret else f"split seed {self.split_seed}")
        if max(s.mse_norm, s.deviance_norm) > LEAK_CEILING:
            ev = self.invalid(f"rejected as a leak of the held-out split (normalised score above "
                              f"{LEAK_CEILING}; no method that sees only the train counts gets near it): "
                              f"{scores}; {report}")
            ev.metrics = metrics
            return ev
        if self.metric == "paper" and (s.poisson < p.poisson_perfect or s.poisson_norm < GATE_POISSON_NORM):
            ev = self.invalid(f"rejected by the paper's Poisson gate (poisson >= {p.poisson_perfect:.6f} "
                              f"and Poisson_norm >= {GATE_POISSON_NORM} required): {scores}; {report}")
            ev.metrics = metrics
            return ev
        value = value_of(s, self.metric)
        label = "clip(MSE_norm)" if self.metric == "paper" else "clip(hardened deviance norm)"
        msg = (f"value {value:.4f} = {label} on {where}: {scores}; {report}. Under the paper's "
               f"metric all-zeros and 1e-9*train**2 score like MAGIC or better: read MSE_norm beside them.")
        if self.reward_kind == "inverse_mse":  # the authors' reward with the entropic objective
            reward = 1.0 / s.mse if s.mse > 0 else 0.0
        else:
            reward = self.objective.reward(value)
        return Evaluation(valid=True, value=value, reward=reward, message=msg, metrics=metrics)

    def reward_description(self) -> str:
        """One line for ``tttd run --dry-run``: what is fed to learning and what is reported."""
        shown = "clip(MSE_norm)" if self.metric == "paper" else "clip(hardened deviance norm)"
        if self.reward_kind == "inverse_mse":
            return f"1 / MSE (raw MSE; 0 for a failure), as the authors' entropic runs; reported value {shown}"
        return f"the value, {shown} (0 for a failure); the authors trained on 1 / MSE (task option reward=inverse_mse)"
