"""Reading a YAML (or Python) file from a problem folder that a stranger wrote (issue 31).

``yaml.safe_load`` refuses to build objects, but it still expands aliases: a few hundred bytes of
nested ``&a [*b, *b, ...]`` become billions of list entries once tttd walks or prints them, and a
config file can simply be huge or nested a million levels deep. Folders are downloaded, so reading
one must cost a bounded amount of time and memory whatever it holds:

- the file is read only up to :data:`MAX_BYTES` (over that: refused, unread);
- aliases (``*name``, merge keys ``<<: *name``) are refused: no upstream config needs them;
- at most :data:`MAX_DEPTH` levels of nesting and :data:`MAX_NODES` nodes (checked while the
  document is composed, before anything is built);
- every failure is a :class:`~tttd.task_errors.TaskFileError` (a ValueError) with one line: the
  CLI prints it and exits 2.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tttd.task_errors import TaskFileError

MAX_BYTES = 256 * 1024  # an upstream config.yaml is a few KiB
MAX_DEPTH = 32
MAX_NODES = 20_000
MAX_TEXT = 64 * 1024  # a string tttd builds from a folder (a statement, a concatenation in run_evo.py)


def read_capped(path: Path, cap: int = MAX_BYTES) -> str:
    """``path``'s text, read at most ``cap`` bytes; a bigger file is refused without reading it."""
    try:
        with open(path, "rb") as f:
            raw = f.read(cap + 1)
    except OSError as exc:
        raise TaskFileError(f"cannot read {path.name}: {exc.strerror}") from None
    if len(raw) > cap:
        raise TaskFileError(f"{path.name} is larger than {cap // 1024} KiB: refused (a problem folder's "
                         "configuration is a few KiB)")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise TaskFileError(f"{path.name} is not UTF-8 text") from None


def _loader_class():
    import yaml

    class Loader(yaml.SafeLoader):
        """SafeLoader that refuses aliases and counts depth and nodes while composing."""

        depth = 0
        nodes = 0

        def compose_node(self, parent, index):  # type: ignore[override]
            if self.check_event(yaml.AliasEvent):
                mark = self.peek_event().start_mark
                raise ValueError(f"uses a YAML alias (line {mark.line + 1}): aliases are refused in a "
                                 "problem folder's configuration")
            self.depth += 1
            self.nodes += 1
            if self.depth > MAX_DEPTH:
                raise ValueError(f"is nested deeper than {MAX_DEPTH} levels: refused")
            if self.nodes > MAX_NODES:
                raise ValueError(f"has more than {MAX_NODES} YAML nodes: refused")
            try:
                return super().compose_node(parent, index)
            finally:
                self.depth -= 1

    return Loader


def _bracket_depth(text: str, stop: int) -> int:
    """The deepest nesting of ``[``/``{`` in ``text`` (up to ``stop``), strings included (an
    over-estimate: a statement with a few unbalanced brackets stays far below the bound)."""
    import re

    depth = top = 0
    for m in re.finditer(r"[\[\]{}]", text):
        depth = depth + 1 if m.group() in "[{" else max(0, depth - 1)
        if depth > top:
            top = depth
            if top > stop:
                break
    return top


def load_yaml(path: Path) -> Any:
    """The YAML document in ``path`` (plain data), within the limits above; ValueError otherwise."""
    import yaml

    text = read_capped(path)
    if _bracket_depth(text, 4 * MAX_DEPTH) > 4 * MAX_DEPTH:  # PyYAML's scanner is quadratic in open flow levels
        raise TaskFileError(f"{path.name} is nested deeper than {MAX_DEPTH} levels: refused")
    loader = _loader_class()(text)
    try:
        return loader.get_single_data()
    except ValueError as exc:
        raise TaskFileError(f"{path.name} {exc}") from None
    except (yaml.YAMLError, RecursionError, MemoryError) as exc:
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise TaskFileError(f"cannot read {path.name}: {first[:200]}") from None
    finally:
        loader.dispose()
