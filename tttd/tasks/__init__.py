"""Built-in tasks: which module registers which task names (imported on demand by the registry).

Each module registers its tasks with :func:`tttd.registry.register_task` when it is imported;
:data:`BUILTINS` says which module that is, so ``get_task("erdos")`` imports only
``tttd.tasks.erdos`` and ``tttd tasks`` imports all of them. A new built-in task family: add its
names here (tests/test_registry.py checks that the table matches what the modules register).
Importing this package imports no task.
"""

BUILTINS: dict[str, str] = {
    "ac1": "tttd.tasks.autocorrelation",
    "ac2": "tttd.tasks.autocorrelation",
    "ahc039": "tttd.tasks.ahc.tasks",
    "ahc058": "tttd.tasks.ahc.tasks",
    "circle_packing_26": "tttd.tasks.circle_packing",
    "circle_packing_32": "tttd.tasks.circle_packing",
    "demo": "tttd.tasks.demo",
    "denoising": "tttd.tasks.denoising.task",
    "erdos": "tttd.tasks.erdos",
    "maxcut": "tttd.tasks.maxcut",
    "mla_decode": "tttd.tasks.speed.mla_decode",
    "trimul": "tttd.tasks.speed.trimul",
}
