"""The speed kit: make a function faster. A user supplies a reference, a seeded input generator,
a correctness check (tolerances or exact), test cases and benchmark cases; tttd builds a task
whose candidate is a drop-in replacement function.

The problem module (``SpeedSpec.problem_source``) is plain Python that defines::

    def generate_input(seed, **case): ...      # the argument passed to the function
    def reference(data): ...                   # (name: SpeedSpec.ref_name) the reference result
    def check(output, expected): ...           # optional: None if correct, else a message;
                                               # default: rtol/atol (or exact) with NaN agreement

Each evaluation (see :mod:`tttd.tasks.speed.harness`, which runs it in the sandbox): correctness
on every test case first, then a warm-up, then per benchmark case one untimed warm call and
repeated timed runs with fresh inputs until the mean is stable or a cap is hit, every output
re-checked; the value is the
geometric mean over benchmark cases of the mean time, in microseconds (lower is better), shown
in prompts. The reward is ``reward_scale / us`` (e.g. TriMul's 3000/us) or, with
``reward="speedup"``, the reference's time over the candidate's, both timed by the same code.

The harness is two processes in the jail (docs/sandbox.md, "The speed kit's two processes"): a
controller that generates the inputs, times every call and checks every output, and a worker that
holds the candidate. GPU tasks (``device="cuda"``, CUDA or ROCm builds of torch) need
``limits.gpus = 1``: the executor gives each evaluation its own GPU; a call is timed on the wall
clock until the controller holds a synchronised copy of the output (optional L2 flush). CPU tasks
are timed by the worker's CPU time (every thread and child; run-queue waits do not count); run
them on an executor with pinned CPUs (``LocalExecutor(pin_cpus=True)``) and few workers for low
noise. The trusted process re-checks the tests and a sample of timed calls
(:mod:`tttd.tasks.speed.recheck`), refuses impossible times (:mod:`tttd.tasks.speed.floor`) and
records static flags (:mod:`tttd.tasks.speed.scan`).
Several files (issue 37, ``SpeedSpec.files``): see :mod:`tttd.tasks.speed.files`.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import os
import secrets
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tttd.multifile import Caps
from tttd.task import Objective, Task, extract_code_block, tail
from tttd.tasks.speed.files import check_spec_files, code_sections, files_rules, module_files, parse_files
from tttd.types import Candidate, Evaluation, Limits, Message, Program, SandboxResult, State

__all__ = ["NoGPUError", "SpeedSpec", "SpeedTask", "harness_source", "run_record"]

_HERE = os.path.dirname(os.path.abspath(__file__))


def _source(name: str) -> str:
    with open(os.path.join(_HERE, name), encoding="utf-8") as f:
        return f.read()


def harness_source() -> str:
    """The controller's source (sent as the sandboxed program)."""
    return _source("harness.py")


def worker_sources() -> dict[str, str]:
    """The worker's and the wire's sources (call arguments of the controller)."""
    return {"worker": _source("worker.py"), "wire": _source("wire.py")}


class NoGPUError(OSError):
    """A GPU task was started where no GPU is visible (the CLI prints it as one line, exit 2)."""


def gpu_present() -> bool:
    from tttd.executor import visible_gpus

    return bool(visible_gpus())


@dataclass
class SpeedSpec:
    """Everything problem-specific about a speed task (see the module docstring)."""

    name: str
    problem_source: str
    tests: list[dict[str, Any]]
    benchmarks: list[dict[str, Any]]
    entry: str = "custom_kernel"
    ref_name: str = "reference"
    device: str = "cpu"
    rtol: float = 0.0
    atol: float = 0.0
    #: modules the candidate may import by name (name -> source); default {"reference": problem}
    public_modules: dict[str, str] | None = None
    #: the root program (default: the reference itself, imported from the public module)
    initial_code: str | None = None
    description: str = ""
    signature: str = ""
    reward: str | float = "speedup"  # "speedup" or a scale s: reward = s / microseconds
    timing: dict[str, Any] = field(default_factory=dict)
    wall_s: float = 300.0
    memory_mb: int = 4096
    threads: int = 1
    #: outputs up to this many bytes come back for the trusted re-check (CPU tasks)
    return_output_bytes: int = 8 << 20
    #: CPU-only test cases to use where no GPU is present (GPU tasks; correctness only)
    cpu_tests: list[dict[str, Any]] | None = None
    #: calls of each CPU test case, each on fresh inputs (>= 2: a result cached by input shape fails,
    #: as the timed runs on a GPU would catch it)
    cpu_repeats: int = 2
    #: use the seeds written in ``tests`` (the contest's public ones) instead of fresh secret seeds per
    #: evaluation; off by default (fixed public inputs can be overfitted, SPEC 7.7 item 18)
    fixed_test_seeds: bool = False
    target: str = ""
    #: static-scan flags (tttd.tasks.speed.scan) that make a candidate invalid; default none: flags
    #: are evidence shown with every result, the harness is the defence
    invalid_flags: tuple[str, ...] = ()
    #: several files (issue 37, tttd.tasks.speed.files): flat modules NAME.py -> source; ``main``
    files: dict[str, str] | None = None
    main: str = "submission.py"
    readonly: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        from tttd.tasks.speed.scan import check_flags

        self.invalid_flags = check_flags(self.invalid_flags)
        if self.device not in ("cpu", "cuda"):
            raise ValueError(f"device must be 'cpu' or 'cuda', got {self.device!r}")
        if not self.tests:
            raise ValueError("a speed task needs at least one test case")
        if not self.benchmarks:
            raise ValueError("a speed task needs at least one benchmark case")
        if self.cpu_repeats < 1:
            raise ValueError(f"cpu_repeats must be >= 1, got {self.cpu_repeats}")
        if self.fixed_test_seeds and not all("seed" in c for c in self.tests):
            raise ValueError("fixed_test_seeds needs a seed in every test case")
        if self.reward != "speedup" and not (isinstance(self.reward, (int, float)) and self.reward > 0):
            raise ValueError(f"reward must be 'speedup' or a positive scale, got {self.reward!r}")
        if self.files is not None:  # several modules (tttd.tasks.speed.files)
            check_spec_files(self)

    @property
    def modules(self) -> dict[str, str]:
        return dict(self.public_modules) if self.public_modules is not None else {"reference": self.problem_source}

    @property
    def root_code(self) -> str:
        if self.initial_code is not None:
            return self.initial_code
        return f"from reference import {self.ref_name} as {self.entry}\n"


#: the contest's protocol (SPEC 5.5); "statistic": "median" resists preemption on shared CPUs;
#: "warm_each": one untimed (checked) call of every benchmark case before its timed runs, so one-off
#: compilation and autotuning for a shape never enter its mean (the contest's eval.py does this)
DEFAULT_TIMING = {"warmup_runs": 100, "warmup_s": 0.01, "min_runs": 3, "max_runs": 100, "rel_err": 0.001,
                  "max_time_s": 30.0, "max_wall_s": 120.0, "l2_flush": False, "statistic": "mean",
                  "warm_each": True}


def run_record(spec: SpeedSpec, code: str, *, device: str | None = None, seed: int | None = None,
               sandbox: bool = True, timing: dict[str, Any] | None = None,
               cpus: list[int] | None = None) -> tuple[dict, SandboxResult | None]:
    """Evaluate ``code`` once (outside a run): (the config sent, the harness record or None).

    ``sandbox=False`` calls the harness in this process (benchmarks on machines without a working
    jail; never for untrusted code)."""
    cfg = build_config(spec, device=device, seed=seed, timing=timing)
    if not sandbox:
        import tempfile

        from tttd.tasks.speed import harness

        with tempfile.TemporaryDirectory(prefix="tttd-speed-") as d:
            cfg["jail"] = False
            rec = harness.evaluate(cfg, spec.problem_source, code, spec.modules, workdir=d, **worker_sources())
        return cfg, SandboxResult(status="ok", value=rec)
    return cfg, run_program(program_for(spec, code, cfg), cpus=cpus)


def run_program(program: Program, cpus: list[int] | None = None) -> SandboxResult:
    """Run a speed program in the sandbox directly (roots, ``tttd verify``), on GPU 0 if it needs one."""
    from tttd import sandbox

    if program.limits.gpus > 0:
        try:
            return sandbox.run(program, cpus=cpus, devices=tuple(range(program.limits.gpus)))
        except TypeError:  # a sandbox without GPU support (devices=): the jail helper adds it
            pass
    return sandbox.run(program, cpus=cpus)


def build_config(spec: SpeedSpec, *, device: str | None = None, seed: int | None = None,
                 timing: dict[str, Any] | None = None) -> dict[str, Any]:
    """The protocol for one evaluation; the test seeds are drawn here, in the trusted process."""
    device = device or spec.device
    rng = np.random.default_rng(secrets.randbits(64) if seed is None else seed)
    gpu = device == "cuda"
    full = gpu or spec.device == "cpu"
    if full:
        repeats = 1
        tests = [dict(c, seed=int(c["seed"]) if spec.fixed_test_seeds else int(rng.integers(0, 2**48)))
                 for c in spec.tests]
    else:  # a GPU task on the CPU: correctness only, every case called cpu_repeats times, fresh inputs
        repeats = spec.cpu_repeats
        tests = [dict(c, seed=int(rng.integers(0, 2**48))) for _ in range(repeats) for c in (spec.cpu_tests or [])]
    cfg: dict[str, Any] = dict(DEFAULT_TIMING)
    cfg.update(spec.timing)
    cfg.update(timing or {})
    cfg.update(
        device=device, entry=spec.entry, ref_name=spec.ref_name, rtol=spec.rtol, atol=spec.atol,
        tests=tests, test_repeats=repeats,
        benchmarks=[dict(c) for c in spec.benchmarks] if full else [],
        return_output_bytes=spec.return_output_bytes,
        threads=spec.threads,
        # the controller answers before the sandbox's wall limit kills it
        deadline_s=max(1.0, spec.wall_s - min(15.0, 0.2 * spec.wall_s)),
    )
    return cfg


def program_for(spec: SpeedSpec, code: str, cfg: dict[str, Any], helpers: dict[str, str] | None = None) -> Program:
    gpu = cfg["device"] == "cuda"
    # GPU: no practical RLIMIT_AS (the CUDA driver reserves huge virtual ranges; device memory is
    # bounded by the device), more processes/files for the driver's threads and Triton's compiler
    # file_size_mb/disk_mb: the CPU inputs and outputs travel in a file on the jail's tmpfs
    limits = Limits(wall_s=spec.wall_s, memory_mb=(1 << 27) if gpu else spec.memory_mb,
                    file_size_mb=max(64, spec.memory_mb // 2), disk_mb=max(256, spec.memory_mb // 2),
                    threads=spec.threads, processes=256 if gpu else 64, open_files=1024 if gpu else 256,
                    gpus=1 if gpu else 0, result_mb=64)
    cfg = dict(cfg, jail=_jailed())
    return Program(source=harness_source(), entry="evaluate", limits=limits,
                   args={"config": cfg, "problem": spec.problem_source, "candidate": code,
                         "modules": {**(helpers or {}), **spec.modules}, **worker_sources()})


def _jailed() -> bool:
    """True when evaluations run in bubblewrap's pid namespace (every process there but the
    controller is the worker's); else the controller counts the worker's descendants only."""
    from tttd.sandbox import platform_info

    try:
        return bool(platform_info().bwrap)
    except Exception:  # noqa: BLE001 - detection failed: the sandbox refuses to run anyway
        return False


class SpeedTask(Task):
    """A task built from a :class:`SpeedSpec`: the value is the time in microseconds."""

    objective = Objective(direction="minimize", transform="reciprocal", failure_reward=0.0)
    output_tail_chars = 1500
    #: ``tttd audit``: a re-timed value within 25% of the recorded one is consistent (timing noise)
    audit_rtol = 0.25

    def __init__(self, spec: SpeedSpec):
        self.spec = spec
        self.name = spec.name
        self.summary = self.summary or f"make {spec.entry} faster ({spec.device})"
        self._ref_us: float | None = None
        self._root_eval: Evaluation | None = None
        self._problem = None
        #: several files (SpeedSpec.files): what ``tttd verify TASK DIR`` and the prompt need
        self.files, self.readonly, self.caps = dict(spec.files or {}), tuple(spec.readonly), Caps()

    # ---- where it runs ---------------------------------------------------------------------
    @property
    def device(self) -> str:
        """Where evaluations run now: the spec's device, or "cpu" (correctness only) for a GPU task
        on a machine without a GPU."""
        if self.spec.device == "cuda" and not gpu_present():
            return "cpu"
        return self.spec.device

    @property
    def can_time(self) -> bool:
        return self.device == self.spec.device

    def preflight(self) -> None:
        """Called before a run starts: a GPU task without a GPU stops here with one line."""
        if not self.can_time:
            raise NoGPUError(f"task {self.name!r} times code on a CUDA GPU and no GPU is visible here "
                             f"(tttd verify {self.name} FILE still checks correctness on the CPU)")

    # ---- states and prompts ------------------------------------------------------------------
    def initial_states(self, n: int, rng: np.random.Generator) -> list[State]:
        if n < 1:
            raise ValueError(f"need at least one initial state, got n={n}")
        code = self.spec.root_code
        art: dict[str, Any] = {"files": dict(self.files)} if self.files else {"code": code}
        if self._root_eval is None and self.can_time:
            ev = self._evaluate_code(code) if not self.files else self._evaluate(
                Candidate(text="", files=dict(self.files), program=self.program_from_files(self.files)))
            if not ev.valid:
                raise RuntimeError(f"the root program of {self.name} is not valid: {ev.message}")
            self._root_eval = ev
        ev = self._root_eval  # None: not timed here (no GPU), an empty root that carries the code
        return [State(id=f"{self.name}-root-{i:03d}", value=None, artifact=dict(art)) if ev is None else
                State(id=f"{self.name}-root-{i:03d}", value=ev.value, artifact=dict(art), key=ev.key, reward=ev.reward,
                      output_tail=ev.output_tail, metrics=dict(ev.metrics)) for i in range(n)]

    def reference_us(self) -> float:
        """The reference's time, measured once by the same harness (speedup rewards)."""
        if self._ref_us is None:
            if self._root_eval is not None and self.spec.initial_code is None and not self.files:
                self._ref_us = float(self._root_eval.value)
            else:
                ev = self._evaluate_code(f"from reference import {self.spec.ref_name} as {self.spec.entry}\n",
                                         speedup_base=1.0)
                if not ev.valid:
                    raise RuntimeError(f"timing the reference of {self.name} failed: {ev.message}")
                self._ref_us = float(ev.value)
        return self._ref_us

    def _evaluate_code(self, code: str, speedup_base: float | None = None) -> Evaluation:
        program = program_for(self.spec, code, build_config(self.spec, device=self.device))
        return self._evaluate(Candidate(text="", code=code, program=program), speedup_base)

    def _evaluate(self, cand: Candidate, speedup_base: float | None = None) -> Evaluation:
        return self.evaluate(cand, run_program(cand.program), None, speedup_base=speedup_base)

    def program_from_files(self, files: dict[str, str], state: State | None = None) -> Program:
        """The harness's program for several modules (FileError: :mod:`tttd.tasks.speed.files`)."""
        main, helpers = module_files(files, self.spec.main, self.spec.modules)
        return program_for(self.spec, main, build_config(self.spec, device=self.device), helpers)

    def describe_timing(self) -> str:
        s = self.spec
        rows = "\n".join("  - " + ", ".join(f"{k}={v}" for k, v in c.items()) for c in s.benchmarks)
        tol = ("exact equality" if s.rtol == 0 and s.atol == 0 else f"|out - ref| <= {s.atol:g} + {s.rtol:g}·|ref|")
        where = "a CUDA GPU (wall time to a synchronised output)" if s.device == "cuda" else \
            "the CPU (CPU time of your process, its threads and children)"
        stat = dict(DEFAULT_TIMING, **s.timing)["statistic"]
        return (f"Correctness is checked on {len(s.tests)} test cases ({tol}). Then each "
                f"benchmark case is timed on {where}: warm-up, one untimed call per case, then repeated "
                f"runs, each on fresh random inputs and each output re-checked, until the mean is stable. The score is the geometric "
                f"mean of the {stat} times over the benchmark cases, in microseconds (lower is better):\n{rows}")

    def prompt(self, state: State, parent: State | None = None) -> list[Message]:
        s = self.spec
        code = (state.artifact.get("code") or "").strip()
        parts = [s.description.strip() or f"Make `{s.entry}` as fast as possible."]
        parts.append("## How it is scored\n" + self.describe_timing())
        before = parent.value if parent is not None else (state.parent_values[0] if state.parent_values else None)
        if state.value is None:
            parts.append("## Current solution\nNot timed yet.")
        elif before is not None:
            parts.append(f"## Current solution\nTime before and after the code below: {before:.3f} us -> "
                         f"{state.value:.3f} us")
        else:
            parts.append(f"## Current solution\nTime: {state.value:.3f} us")
        if s.target:
            parts.append(s.target)
        parts += code_sections(self, state, code)
        out = tail(state.output_tail or "", self.output_tail_chars).strip()
        if out:
            parts.append("## Evaluator output of the last run\n```\n" + out + "\n```")
        parts.append("## Rules\n" + self.rules())
        return [{"role": "user", "content": "\n\n".join(parts) + "\n"}]

    def rules(self) -> str:
        s = self.spec
        sig = s.signature or f"{s.entry}(data)"
        mods = ", ".join(f"`{m}`" for m in s.modules)
        return "\n".join([
            f"- Define `{sig}`, a drop-in replacement of the reference: same input, same output.",
            f"- You may import {mods} (the problem's modules) and the installed libraries.",
            "- Every call is checked on fresh inputs in another process; results cached across calls "
            "and work left running on threads, processes or other streams after the function returns "
            "make the solution invalid; timers and checks are out of your program's reach.",
            f"- The whole evaluation must finish within {s.wall_s:g} s.",
            *(files_rules(s) if self.files else ["- Answer with one ```python code block containing the complete module."]),
        ])

    def parse(self, completion: str, state: State) -> Candidate:
        if self.files:
            return parse_files(self, completion, state)
        code = extract_code_block(completion)
        if code is None:
            return Candidate(text=completion, error="no python code block")
        cfg = build_config(self.spec, device=self.device)
        return Candidate(text=completion, code=code, program=program_for(self.spec, code, cfg))

    # ---- the trusted verdict -------------------------------------------------------------------
    def evaluate(self, candidate: Candidate, result: SandboxResult | None, state: State | None = None,
                 speedup_base: float | None = None) -> Evaluation:
        if candidate.error is not None or candidate.program is None or result is None or not result.ok:
            return super().evaluate(candidate, result, state)
        cfg = candidate.program.args.get("config", {})
        try:
            ev = self._verdict(result.value, cfg, speedup_base)
        except (ValueError, TypeError, KeyError, OverflowError) as exc:
            ev = self.invalid(f"the evaluator's record is malformed: {exc}")
        ev.output_tail = tail(((result.stdout or "") + "\n" + ev.message).strip(), self.output_tail_chars)
        if candidate.code is not None:
            ev.artifact.setdefault("code", candidate.code)
            self._flag(ev, candidate.code)
        if candidate.files is not None:  # several modules: all kept, every one scanned
            ev.artifact.setdefault("files", dict(candidate.files))
            self._flag(ev, "\n".join(candidate.files.values()))
        if ev.valid and ev.key is None:
            from tttd.task import artifact_key

            ev.key = artifact_key(candidate.files if candidate.files is not None else candidate.code)
        return ev

    def _flag(self, ev: Evaluation, code: str) -> None:
        """Record the static-scan flags (evidence); the task's ``invalid_flags`` make it invalid."""
        from tttd.tasks.speed.scan import scan

        flags = scan(code)
        if not flags:
            return
        ev.metrics["flags"] = flags
        ev.message += f"\nstatic flags (evidence, not a verdict): {', '.join(flags)}"
        hit = [f for f in flags if f in self.spec.invalid_flags]
        if hit and ev.valid:
            ev.valid, ev.value, ev.reward, ev.key = False, None, self.objective.failure_reward, None
            ev.status = "invalid"
            ev.message = f"refused by the task's static rules ({', '.join(hit)})\n" + ev.message

    def verify(self, data: Any, state: State | None = None) -> Evaluation:
        raise ValueError("a speed task verifies programs only (tttd verify TASK program.py)")

    def _verdict(self, rec: Any, cfg: dict[str, Any], speedup_base: float | None) -> Evaluation:
        if not isinstance(rec, dict) or not isinstance(rec.get("ok"), bool):
            raise ValueError("not a harness record")
        stage, msg = str(rec.get("stage", "?")), str(rec.get("message", ""))
        if not rec["ok"]:
            return self.invalid(f"{stage}: {msg}", status="invalid" if stage != "tamper" else "tamper")
        if rec.get("harness") != "two-process":
            raise ValueError("not a record of the two-process harness")
        tests = cfg.get("tests", [])
        if len(rec.get("tests", [])) != len(tests):
            raise ValueError("the record does not cover every test case")
        note = self._trusted_recheck(rec, cfg)
        benches = cfg.get("benchmarks", [])
        if not benches:
            reps = max(1, int(cfg.get("test_repeats", 1)))
            calls = f" ({reps} calls each, on fresh inputs)" if reps > 1 else ""
            return self.invalid(f"correct on all {len(tests) // reps} {cfg.get('device')} test cases{calls}; "
                                f"timing needs a CUDA GPU and none is visible here, so there is no time",
                                status="needs_gpu")
        stats = rec.get("benchmarks", [])
        if len(stats) != len(benches):
            raise ValueError("the record does not cover every benchmark case")
        stat = "median_ns" if cfg.get("statistic") == "median" else "mean_ns"
        means = [float(b[stat]) for b in stats]
        if not all(math.isfinite(m) and m > 0 for m in means):
            raise ValueError(f"bad benchmark times {means}")
        from tttd.tasks.speed.floor import floor_message

        impossible = floor_message(self._problem_module(), benches, [m / 1e3 for m in means], str(cfg.get("device")))
        if impossible:
            return self.invalid(impossible, status="impossible")
        us = math.exp(sum(math.log(m / 1e3) for m in means) / len(means))
        scale = self.spec.reward
        if scale == "speedup":
            scale = self.reference_us() if speedup_base is None else speedup_base * us
        reward = float(scale) / us
        clock = stats[0].get("clock", "wall")
        lines = [f"correct on {len(tests)} tests; geometric mean {us:.3f} us over {len(means)} benchmarks "
                 f"({stat[:-3]} {'CPU' if clock == 'cpu' else 'wall'} time of each)"]
        if note:
            lines.append(note)
        for c, b in zip(benches, stats):
            lines.append(f"  {', '.join(f'{k}={v}' for k, v in c.items())}: {b[stat] / 1e3:.3f} us "
                         f"({stat[:-3]}; std {b['std_ns'] / 1e3:.3f} over {b['runs']} runs)")
        metrics = {"us": us, "bench_us": [m / 1e3 for m in means], "runs": [int(b["runs"]) for b in stats],
                   "bench_min_us": [float(b["min_ns"]) / 1e3 for b in stats],
                   "device": cfg.get("device"), "cpus": len(rec.get("cpus") or [])}
        if self.spec.reward == "speedup":
            metrics["speedup"] = reward
        return Evaluation(valid=True, value=us, reward=reward, message="\n".join(lines), metrics=metrics)

    # ---- the trusted re-check (the process that decides recomputes what it can) ----------------
    def _problem_module(self):
        if self._problem is None:
            from tttd.tasks.speed.harness import _load_private

            self._problem = _load_private(self.spec.problem_source, "_tttd_speed_trusted_problem")
        return self._problem

    def _trusted_recheck(self, rec: dict, cfg: dict) -> str:
        from tttd.tasks.speed.recheck import trusted_recheck

        return trusted_recheck(self._problem_module(), self.spec.ref_name, rec, cfg)


def _fmt(case: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in case.items())


def with_timing(spec: SpeedSpec, **timing: Any) -> SpeedSpec:
    """A copy of ``spec`` with timing parameters overridden (tests, benchmarks)."""
    out = copy.copy(spec)
    out.timing = dict(spec.timing, **timing)
    return dataclasses.replace(out)
