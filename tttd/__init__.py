"""tttd: test-time training to discover.

The core (types, tasks, archive, objective, sandbox, loop) imports without torch, ray or tinker;
backends import their heavy dependencies lazily. ``import tttd`` itself loads nothing else: the
public names below are imported on first use (PEP 562), so a module of the package may read
``tttd.__version__`` without pulling in the task registry, and pyproject.toml reads the version
from this file without importing anything.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.3.0"

if TYPE_CHECKING:  # pragma: no cover
    from tttd.program_task import ProgramTask
    from tttd.registry import get_task, list_tasks, register_task
    from tttd.task import Objective, Task
    from tttd.types import (Candidate, Evaluation, Limits, Program, Rollout, Sample, SandboxResult,
                            State, TrainDatum)

_TYPES = ("Candidate", "Evaluation", "Limits", "Program", "Rollout", "Sample", "SandboxResult", "State",
          "TrainDatum")

__all__ = [*_TYPES, "Objective", "ProgramTask", "Task", "get_task", "list_tasks", "register_task",
           "__version__"]


def __getattr__(name: str) -> Any:
    if name in _TYPES:
        from tttd import types

        return getattr(types, name)
    if name in ("Objective", "Task"):
        from tttd import task

        return getattr(task, name)
    if name in ("get_task", "list_tasks", "register_task"):
        from tttd import registry

        return getattr(registry, name)
    if name == "ProgramTask":
        from tttd.program_task import ProgramTask

        return ProgramTask
    raise AttributeError(f"module 'tttd' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
