"""tttd: test-time training to discover.

The core (types, tasks, archive, objective, sandbox, loop) imports without torch, ray or tinker;
backends import their heavy dependencies lazily.
"""

from tttd.task import Objective, Task, get_task, list_tasks, register_task
from tttd.program_task import ProgramTask
from tttd.types import (
    Candidate,
    Evaluation,
    Limits,
    Program,
    Rollout,
    Sample,
    SandboxResult,
    State,
    TrainDatum,
)

__version__ = "0.1.0"

__all__ = [
    "Candidate",
    "Evaluation",
    "Limits",
    "Objective",
    "Program",
    "ProgramTask",
    "Rollout",
    "Sample",
    "SandboxResult",
    "State",
    "Task",
    "TrainDatum",
    "get_task",
    "list_tasks",
    "register_task",
    "__version__",
]
