"""Plain data types that flow between the parts of tttd.

Nothing here imports torch, ray or tinker. Every type is a dataclass that round-trips through
JSON (``to_dict`` / ``from_dict``) so that run directories are human-readable and never pickled.

Vocabulary (DESIGN.md):
- a **State** is a solution in the archive (an artifact plus its verified value);
- a **Program** is untrusted code plus how to call it, handed to the sandbox;
- a **SandboxResult** is what came back from running a Program (data only, never trusted scores);
- a **Candidate** is what a task parsed out of one completion;
- an **Evaluation** is the trusted verdict on a candidate (validity, raw value, reward);
- a **Sample** is one completion from the policy with its token ids and sampler log-probabilities;
- a **Rollout** is one sample with its evaluation and advantage, tied to the state it started from.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Literal

Message = dict[str, str]  # {"role": "user" | "system" | "assistant", "content": str}

SandboxStatus = Literal["ok", "error", "timeout", "memory", "killed", "bad_output", "lost"]  # lost: infrastructure (issue 24)


def _asdict(obj: Any) -> dict[str, Any]:
    return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}


def _fromdict(cls: type, data: dict[str, Any]):
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in names})


@dataclass
class State:
    """One solution in the archive.

    ``value`` is the task's raw value in its own direction (e.g. C5, lower is better); ``None``
    means an empty root (no solution yet), which never outranks a real state. ``artifact`` holds
    what the next prompt and program need (code, construction) as JSON-able data. ``key`` is the
    dedup key (the task decides: construction if any, else code). ``parent_id`` is ``None`` for
    roots; ``ancestors`` lists every ancestor id, nearest first.
    """

    id: str
    value: float | None
    artifact: dict[str, Any] = field(default_factory=dict)
    key: str | None = None
    parent_id: str | None = None
    ancestors: list[str] = field(default_factory=list)
    parent_values: list[float] = field(default_factory=list)
    step: int = -1
    reward: float | None = None
    output_tail: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)

    @property
    def is_root(self) -> bool:
        return self.parent_id is None

    def to_dict(self) -> dict[str, Any]:
        return _asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "State":
        return _fromdict(cls, data)


@dataclass(frozen=True)
class Limits:
    """Resource limits for one sandboxed evaluation. Defaults are safe on a shared 24 GiB machine."""

    wall_s: float = 60.0
    cpu_s: float | None = None  # defaults to wall_s * threads + a margin inside the sandbox
    memory_mb: int = 2048
    file_size_mb: int = 64
    open_files: int = 256
    processes: int = 64
    threads: int = 1  # BLAS/OpenMP thread caps (and CPU share per evaluation)
    output_bytes: int = 16_384  # stdout / stderr tails kept
    result_mb: int = 64  # largest accepted result file
    disk_mb: int = 256  # total bytes writable in the jail (workdir + /tmp + /dev/shm: one tmpfs, RAM)
    inodes: int = 16_384  # total files + directories writable in the jail (same tmpfs)
    network: bool = False
    toolchain: tuple[str, ...] = ()  # extra absolute host paths bound read-only into the jail (compilers, headers)
    gpus: int = 0  # GPUs one evaluation needs; the executor assigns device ids

    def __post_init__(self) -> None:
        if not isinstance(self.toolchain, tuple) and not isinstance(self.toolchain, str):
            object.__setattr__(self, "toolchain", tuple(self.toolchain))  # JSON gives a list

    def to_dict(self) -> dict[str, Any]:
        return _asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Limits":
        return _fromdict(cls, data)


@dataclass
class Program:
    """Untrusted code and how to call it.

    ``inject`` maps global names to data (numpy arrays or JSON-able values) that the harness
    defines before the candidate's source runs (e.g. the parent state's construction).
    ``command`` (instead of ``source``) runs an arbitrary command line, e.g. a compiled candidate;
    then ``files`` are written into the working directory first.
    """

    source: str | None = None
    entry: str = "main"
    args: dict[str, Any] = field(default_factory=dict)
    inject: dict[str, Any] = field(default_factory=dict)
    limits: Limits = field(default_factory=Limits)
    command: list[str] | None = None
    files: dict[str, str] = field(default_factory=dict)


@dataclass
class SandboxResult:
    """What came back from the sandbox. ``value`` is parsed data, never a trusted score."""

    status: SandboxStatus
    value: Any = None
    stdout: str = ""
    stderr: str = ""
    wall_s: float = 0.0
    returncode: int | None = None
    message: str = ""
    protections: list[str] = field(default_factory=list)
    #: CPU seconds (user+sys) of every process of the jail, counted by the kernel (children the
    #: candidate never waited for included); None where not measured (the weak mode)
    cpu_s: float | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"


@dataclass
class Candidate:
    """What a task parsed out of one completion.

    Either ``program`` (run in the sandbox, its returned data then verified) or ``data`` (verified
    directly, for tasks whose answer is data, e.g. the demo's digits). ``error`` is set when the
    completion could not be parsed; such a candidate is invalid without being run.
    """

    text: str
    code: str | None = None
    program: Program | None = None
    data: Any = None
    error: str | None = None
    notes: list[str] = field(default_factory=list)  # e.g. edits that did not apply (tttd.edits)
    files: dict[str, str] | None = None  # a multi-file program: path -> text (tttd.multifile)


@dataclass
class Evaluation:
    """The trusted verdict on one candidate, computed in the trusted process."""

    valid: bool
    value: float | None = None  # raw task value (direction per the task's Objective)
    reward: float = 0.0  # fed to learning (the task's monotone transform, or its failure reward)
    message: str = ""
    status: str = "ok"  # ok | invalid | parse_error | sandbox status (timeout, memory, ...)
    artifact: dict[str, Any] = field(default_factory=dict)  # what a new state keeps
    key: str | None = None
    output_tail: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.valid and (self.value is None or not math.isfinite(self.value)):
            raise ValueError(f"a valid evaluation needs a finite value, got {self.value!r}")
        if not math.isfinite(self.reward):
            raise ValueError(f"reward must be finite, got {self.reward!r}")

    def to_dict(self) -> dict[str, Any]:
        return _asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Evaluation":
        return _fromdict(cls, data)


@dataclass
class Sample:
    """One completion: token ids, the sampler's per-token log-probabilities, text, stop reason.

    ``mask``: None (every token was sampled and is trained) or one 0/1 per token; 0 marks tokens
    that were appended, not sampled (the forced final answer's "out of thinking tokens" text,
    :mod:`tttd.policy.forced_answer`): their log-prob is 0 and they carry no loss."""

    prompt_tokens: list[int]
    tokens: list[int]
    logprobs: list[float]
    text: str
    stop_reason: Literal["stop", "length"] = "stop"
    mask: list[float] | None = None

    def to_dict(self) -> dict[str, Any]:
        return _asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Sample":
        return _fromdict(cls, data)


@dataclass
class TrainDatum:
    """One training sequence: the policy-gradient step sees prompt + completion tokens; only
    completion tokens carry loss. ``advantages`` is per completion token. ``mask`` (None = all
    ones): 0 on completion tokens that were not sampled (they get no loss and no KL term)."""

    prompt_tokens: list[int]
    tokens: list[int]
    logprobs: list[float]
    advantages: list[float]
    mask: list[float] | None = None

    @classmethod
    def from_sample(cls, sample: "Sample", advantage: float) -> "TrainDatum":
        """The sample's tokens with ``advantage`` on every sampled token (0 where masked)."""
        mask = sample.mask
        adv = [float(advantage)] * len(sample.tokens) if mask is None else \
            [float(advantage) * float(m) for m in mask]
        return cls(list(sample.prompt_tokens), list(sample.tokens), list(sample.logprobs), adv,
                   None if mask is None else [float(m) for m in mask])

    def mask_or_ones(self) -> list[float]:
        return [1.0] * len(self.tokens) if self.mask is None else [float(m) for m in self.mask]


@dataclass
class Rollout:
    """One sample, its evaluation and its advantage, tied to the state it started from."""

    step: int
    group: int
    parent_id: str
    sample: Sample
    evaluation: Evaluation
    advantage: float = 0.0
    child_id: str | None = None
