"""The task registry: tasks by name, from built-in modules, plugins, files and problem folders.

Tasks register themselves by name with :func:`register_task` (a decorator); nothing in tttd
switches on task names. This module imports the protocol (:mod:`tttd.task`), never the reverse.

Where tasks come from, in order: the built-in modules named in :data:`tttd.tasks.BUILTINS`
(imported on demand: ``get_task("erdos")`` imports only ``tttd.tasks.erdos``), installed packages
that declare an entry point in the group ``tttd.tasks`` (loaded when a name is not built in, or to
list all tasks), a user's own Python file passed by path (``tttd run ./my_task.py``), which
registers its task the same way when imported, and an OpenEvolve / ShinkaEvolve problem folder
(:mod:`tttd.evolve`).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from tttd.task import Task, TaskOptionError
from tttd.tasks import BUILTINS

__all__ = [
    "TaskFactory", "TaskOptionError", "UnknownTaskError", "absolute_task_spec", "check_task_options",
    "declared_options", "get_task", "list_tasks", "register_problem_dir", "register_task",
    "task_factory", "task_fingerprint",
]

TaskFactory = Callable[..., Task]


@dataclass
class _Entry:
    name: str
    factory: TaskFactory
    summary: str
    origin: str


_REGISTRY: dict[str, _Entry] = {}
_PLUGINS_LOADED = False


class UnknownTaskError(LookupError):
    pass


def register_task(name: str, factory: TaskFactory | None = None, *, summary: str | None = None):
    """Register a task factory (a Task subclass or a function returning a Task) under ``name``.

    Use as a decorator (``@register_task("erdos")``) or a call (``register_task("x", make_x)``);
    a ready :class:`Task` instance may be registered too (``register_task("tsp", ProgramTask(...))``).
    Re-registering the same name from the same module replaces it (re-imports); from another
    module it is an error, so two tasks can never silently shadow each other (a built-in name is
    taken by its module in :data:`tttd.tasks.BUILTINS` even before that module is imported).
    """
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.\-]*", name):
        raise ValueError(f"bad task name {name!r}: use letters, digits, '_', '-', '.'")

    if isinstance(factory, Task):  # an instance (e.g. a ProgramTask): registered as is
        instance, caller = factory, sys._getframe(1).f_globals.get("__name__", "?")

        def factory() -> Task:
            return instance

        factory.__module__ = caller
        factory.__doc__ = instance.summary or type(instance).__doc__

    def add(f: TaskFactory) -> TaskFactory:
        origin = getattr(f, "__module__", "?")
        old = _REGISTRY.get(name)
        owner = old.origin if old is not None else BUILTINS.get(name)
        if owner is not None and owner != origin:
            raise ValueError(f"task {name!r} is already registered by {owner}")
        doc = summary or getattr(f, "summary", "") or (f.__doc__ or "").strip().split("\n")[0]
        _REGISTRY[name] = _Entry(name, f, doc, origin)
        return f

    return add if factory is None else add(factory)


def _load_builtin(name: str) -> None:
    """Import the module that registers built-in task ``name`` (no-op for other names)."""
    module = BUILTINS.get(name)
    if module is not None and name not in _REGISTRY:
        importlib.import_module(module)


def _load_all_builtins() -> None:
    for module in sorted(set(BUILTINS.values())):
        importlib.import_module(module)


def _load_plugins() -> None:
    """Tasks of installed packages (entry point group ``tttd.tasks``); never a built-in name."""
    global _PLUGINS_LOADED
    if _PLUGINS_LOADED:
        return
    _PLUGINS_LOADED = True
    try:
        from importlib.metadata import entry_points

        for ep in entry_points(group="tttd.tasks"):
            if ep.name in _REGISTRY or ep.name in BUILTINS:
                continue
            obj = ep.load()
            if callable(obj):
                register_task(ep.name, obj)
    except Exception as exc:  # a broken third-party plugin must not break the CLI
        print(f"warning: could not load task plugins: {exc}", file=sys.stderr)


def _import_task_file(path: Path) -> list[str]:
    before = set(_REGISTRY)
    module_name = "tttd_user_task_" + hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:10]
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ValueError(f"cannot import task file {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # a mistake in the user's file: one line with file:line (issue 23)
        from tttd.task_errors import import_error

        sys.modules.pop(module_name, None)
        raise import_error(path, exc) from None
    # the file's own tasks: not the built-ins it imported (e.g. a subclass of the demo's task loads
    # the demo's module, which registers "demo" now that built-ins load on demand)
    added = [n for n in _REGISTRY if _REGISTRY[n].origin == module_name
             or (n not in before and not (n in BUILTINS and _REGISTRY[n].origin == BUILTINS[n]))]
    return added


def register_problem_dir(path: str | Path) -> str:
    """Register the OpenEvolve / ShinkaEvolve problem folder at ``path`` as a task; returns its name."""
    from tttd.evolve import problem_dir_task

    name, factory = problem_dir_task(path)
    register_task(name, factory)
    return name


def declared_options(factory: TaskFactory) -> list[str] | None:
    """The keyword options a task factory declares (None if it takes ``**kwargs``). A task's
    options are its factory's keyword parameters: the factory is the task's declaration."""
    import inspect

    try:
        params = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):
        return None
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return None
    return [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


def check_task_options(name: str, factory: TaskFactory, options: dict[str, Any]) -> None:
    known = declared_options(factory)
    if known is None:
        return
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise TaskOptionError(
            f"unknown option{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))} for "
            f"task {name!r}; its options: {', '.join(known) or 'none'}")


def absolute_task_spec(spec: str) -> str:
    """A task given by path (``file.py``, ``file.py:name``, a problem folder) made absolute, so a
    run can be resumed from any directory; registered names are returned unchanged."""
    path, pick = (spec.rsplit(":", 1) if ".py:" in spec else (spec, None))
    p = Path(path)
    if (path.endswith(".py") or "/" in path or p.is_dir()) and p.exists():
        path = str(p.resolve())
    return path if pick is None else f"{path}:{pick}"


def task_fingerprint(task_spec: str, task: Task, options: dict[str, Any]) -> str:
    """A hash of what defines the task's scoring: the source files of its factory and of every
    class in its type's MRO outside ``tttd.task``, plus its options. Stored when a run starts;
    ``resume`` refuses a run whose fingerprint changed (an edited task file, other options),
    because the archive and logs would then mix two scoring functions."""
    import inspect

    entry = _REGISTRY.get(_resolve_name(task_spec))
    objs: list[Any] = [entry.factory] if entry is not None else []
    objs += [c for c in type(task).__mro__ if c.__module__ not in ("builtins", Task.__module__)]
    files: set[str] = set()
    for obj in objs:
        try:
            f = inspect.getsourcefile(obj)
        except (TypeError, OSError):
            f = None
        if f:
            files.add(str(Path(f).resolve()))
    digests = []
    for f in files:  # contents only: moving or reinstalling the code keeps the hash
        try:
            digests.append(hashlib.sha256(Path(f).read_bytes()).digest())
        except OSError:
            digests.append(b"unreadable:" + f.encode())
    h = hashlib.sha256(b"".join(sorted(digests)))
    h.update(json.dumps(options, sort_keys=True, default=str).encode())
    return h.hexdigest()


def list_tasks() -> dict[str, str]:
    """Registered task names with their one-line summaries (imports every built-in task)."""
    _load_all_builtins()
    _load_plugins()
    return {name: e.summary for name, e in sorted(_REGISTRY.items())}


def task_factory(name_or_path: str) -> TaskFactory:
    """The registered factory of a task (importing a user's task file if given a path)."""
    return _REGISTRY[_resolve_name(name_or_path)].factory


def get_task(name_or_path: str, **options: Any) -> Task:
    """Build a task by registered name, or from a user's Python file (``path.py`` or
    ``path.py:name`` when the file registers several)."""
    entry = _REGISTRY[_resolve_name(name_or_path)]
    if options:
        check_task_options(entry.name, entry.factory, options)
        try:
            task = entry.factory(**options)
        except (TypeError, ValueError) as exc:
            raise TaskOptionError(f"bad option for task {entry.name!r}: {exc}") from None
    else:
        task = entry.factory()
    if not isinstance(task, Task):
        raise TypeError(f"task factory for {entry.name!r} returned {type(task).__name__}, not a Task")
    if not task.name:
        task.name = entry.name
    return task


def _resolve_name(name_or_path: str) -> str:
    spec, pick = name_or_path, ""
    if ".py:" in name_or_path:
        spec, pick = name_or_path.rsplit(":", 1)
    known = spec in _REGISTRY or spec in BUILTINS
    if spec.endswith(".py") or "/" in spec or (not known and Path(spec).is_dir()):
        path = Path(spec)
        if path.is_dir():  # an OpenEvolve / ShinkaEvolve problem folder (also "." or "dir")
            try:
                return register_problem_dir(path)
            except ValueError as exc:
                raise UnknownTaskError(str(exc)) from None
        if not path.is_file():
            raise UnknownTaskError(f"task file not found: {path}")
        added = _import_task_file(path)
        if pick:
            name = pick
        elif len(added) == 1:
            name = added[0]
        elif not added:
            raise UnknownTaskError(
                f"{path} registers no task: decorate a Task subclass with @tttd.register_task('name')"
            )
        else:
            raise UnknownTaskError(
                f"{path} registers several tasks ({', '.join(added)}); pick one with {path}:NAME"
            )
    else:
        name = spec
    _load_builtin(name)
    if name not in _REGISTRY:
        _load_plugins()
    if name not in _REGISTRY:
        _load_all_builtins()  # the message lists every task
        known_names = ", ".join(sorted(_REGISTRY)) or "none"
        from tttd.task_errors import example_hint

        raise UnknownTaskError(f"unknown task {name!r}{example_hint(name)}; registered tasks: {known_names}")
    return name
