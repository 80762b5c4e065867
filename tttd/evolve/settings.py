"""What an OpenEvolve ``config.yaml`` or a ShinkaEvolve ``run_evo.py`` / YAML says that tttd uses.

Every key read is reported: ``used`` (with what it became) or ``ignored`` (with why), so
``tttd prompt DIR`` and ``tttd run DIR --dry-run`` show exactly how the folder was understood.
``run_evo.py`` is parsed with :mod:`ast` and never executed: only string constants, simple
concatenations of them and the keyword arguments of ``EvolutionConfig(...)`` /
``LocalJobConfig(...)`` calls are read.

Defaults follow the upstream tools: OpenEvolve evaluates in cascade when the evaluator defines
``evaluate_stage1`` (thresholds ``[0.5, 0.75, 0.9]``), gives each evaluation 300 s, and evolves by
diffs; its fitness without ``combined_score`` is the mean of the numeric metrics other than the
MAP-Elites feature dimensions (``["complexity", "diversity"]`` by default).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tttd.evolve.safe_yaml import MAX_TEXT, load_yaml, read_capped
from tttd.task_errors import TaskFileError

OE_TIMEOUT_S = 300.0
OE_THRESHOLDS = [0.5, 0.75, 0.9]
OE_FEATURES = ["complexity", "diversity"]
OE_TEMPLATE_NAMES = {"system_message", "evaluator_system_message"}  # upstream placeholders, not text

#: why whole sections of an upstream config do not apply to tttd
OE_IGNORED = {
    "llm": "the policy is chosen by tttd's --backend/--model (API settings and keys are never read)",
    "database": "OpenEvolve's MAP-Elites islands: tttd's archive and PUCT pick the parents",
    "prompt": "tttd's prompt is the paper's (statement, parent program, score, output, evaluator feedback)",
    "evaluator": "not used by tttd",
    "max_iterations": "tttd sizes a run by --steps x --groups x --group-size",
    "checkpoint_interval": "tttd checkpoints every step",
    "early_stopping_patience": "tttd runs its --steps (budget caps: --max-samples, --max-hours)",
    "evolution_trace": "tttd logs every rollout in rollouts.jsonl",
}
SHINKA_IGNORED = {
    "db_config": "ShinkaEvolve's islands and archive: tttd's archive and PUCT pick the parents",
    "llm_models": "the policy is chosen by tttd's --backend/--model",
    "num_generations": "tttd sizes a run by --steps x --groups x --group-size",
    "patch_type_probs": "tttd asks for one format (diff, or whole programs)",
}


@dataclass
class Settings:
    """What tttd takes from an upstream folder's configuration."""

    files: list[str] = field(default_factory=list)
    statement: str | None = None
    statement_from: str | None = None
    timeout_s: float | None = None
    cascade: bool = False
    thresholds: list[float] = field(default_factory=lambda: list(OE_THRESHOLDS))
    edits: str | None = None  # "diff" | "whole" | None (tttd's default)
    max_code_length: int | None = None
    feature_dimensions: list[str] = field(default_factory=list)
    language: str | None = None
    run_values: dict[str, Any] = field(default_factory=dict)  # RunConfig defaults (temperature, ...)
    used: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)

    def use(self, key: str, value: Any, meaning: str) -> None:
        shown = repr(value) if not isinstance(value, str) or len(value) < 60 else f"<{len(value)} characters>"
        shown = shown if len(shown) <= 200 else shown[:200] + f"... ({len(shown)} characters)"
        self.used.append(f"{key} = {shown}: {meaning}")


def _load_yaml(path: Path) -> dict[str, Any]:
    data = load_yaml(path)  # bounded: size, aliases refused, depth, nodes (tttd.evolve.safe_yaml)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise TaskFileError(f"{path.name} is not a YAML mapping")
    return data


def _text(v: Any) -> str | None:
    return v.strip() if isinstance(v, str) and v.strip() else None


def _number(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 else None


def pick_config(folder: Path, name: str | None, candidates: list[str]) -> Path | None:
    """The config file to read: ``name`` (an option) or the first of ``candidates`` that exists."""
    if name:
        p = folder / name
        if not p.is_file():
            have = sorted(q.name for q in folder.glob("*.y*ml"))
            raise ValueError(f"config {name!r} not found in {folder}; YAML files there: {', '.join(have) or 'none'}")
        return p
    for c in candidates:
        found = sorted(folder.glob(c))
        if found:
            return found[0]
    return None


# ------------------------------------------------------------------------------- OpenEvolve


def openevolve_settings(folder: Path, config: str | None = None) -> Settings:
    s = Settings(cascade=True, edits="diff", timeout_s=OE_TIMEOUT_S, feature_dimensions=list(OE_FEATURES))
    path = pick_config(folder, config, ["config.yaml", "config.yml", "config*.yaml"])
    if path is None:
        s.used.append("(no config.yaml: OpenEvolve's defaults)")
        return s
    s.files.append(path.name)
    data = _load_yaml(path)
    prompt, llm = data.get("prompt") or {}, data.get("llm") or {}
    evaluator, database = data.get("evaluator") or {}, data.get("database") or {}
    for where, node in (("prompt.system_message", prompt), ("llm.system_message", llm)):
        text = _text(node.get("system_message")) if isinstance(node, dict) else None
        if text and text not in OE_TEMPLATE_NAMES and s.statement is None:
            s.statement, s.statement_from = text, f"{path.name}: {where}"
            s.use(where, text, "the problem statement")
    if isinstance(evaluator, dict):
        t = _number(evaluator.get("timeout"))
        if t:
            s.timeout_s = t
            s.use("evaluator.timeout", evaluator["timeout"], f"time limit {t:g} s per evaluation stage")
        if "cascade_evaluation" in evaluator:
            s.cascade = bool(evaluator["cascade_evaluation"])
            s.use("evaluator.cascade_evaluation", s.cascade, "cascade evaluation " + ("on" if s.cascade else "off"))
        th = evaluator.get("cascade_thresholds")
        if isinstance(th, list) and all(_number(x) is not None or x == 0 for x in th) and th:
            s.thresholds = [float(x) for x in th]
            s.use("evaluator.cascade_thresholds", th, "stage thresholds")
        for k in sorted(set(evaluator) - {"timeout", "cascade_evaluation", "cascade_thresholds"}):
            s.ignored.append(f"evaluator.{k}: " + {
                "parallel_evaluations": "tttd's --workers sets how many evaluations run at once",
                "use_llm_feedback": "no LLM judge: the score is the evaluator's",
                "llm_feedback_weight": "no LLM judge: the score is the evaluator's",
                "enable_artifacts": "artifacts are always shown (capped)",
                "max_retries": "an evaluation is run once (see --task-option rescore=K)",
            }.get(k, "not used by tttd"))
    if "diff_based_evolution" in data:
        s.edits = "diff" if data["diff_based_evolution"] else "whole"
        s.use("diff_based_evolution", data["diff_based_evolution"],
              "answers are SEARCH/REPLACE diffs" if s.edits == "diff" else "answers are whole programs")
    if isinstance(data.get("max_code_length"), int) and data["max_code_length"] > 0:
        s.max_code_length = int(data["max_code_length"])
        s.use("max_code_length", s.max_code_length, "longer programs are invalid")
    if isinstance(database, dict) and isinstance(database.get("feature_dimensions"), list):
        s.feature_dimensions = [str(x) for x in database["feature_dimensions"]]
        s.use("database.feature_dimensions", s.feature_dimensions,
              "left out of the fallback mean when there is no combined_score (as OpenEvolve does)")
    if _text(data.get("language")):
        s.language = data["language"].strip().lower()
        s.use("language", s.language, "the code-fence language")
    if isinstance(llm, dict):
        if _number(llm.get("temperature")):
            s.run_values["temperature"] = float(llm["temperature"])
            s.use("llm.temperature", llm["temperature"], "the run's sampling temperature (flags override)")
        if isinstance(llm.get("max_tokens"), int) and llm["max_tokens"] > 0:
            s.run_values["max_tokens"] = int(llm["max_tokens"])
            s.use("llm.max_tokens", llm["max_tokens"], "the run's token budget per sample (flags override)")
    if isinstance(data.get("random_seed"), int):
        s.run_values["seed"] = int(data["random_seed"])
        s.use("random_seed", data["random_seed"], "the run's seed (flags override)")
    mapped = {"prompt.system_message", "llm.system_message", "llm.temperature", "llm.max_tokens",
              "database.feature_dimensions"}
    for section, why in OE_IGNORED.items():
        node = data.get(section)
        if node is None or section == "evaluator":
            continue
        keys = [f"{section}.{k}" for k in node] if isinstance(node, dict) else [section]
        rest = [k for k in keys if k not in mapped]
        if rest:
            s.ignored.append(f"{', '.join(rest[:6])}{' ...' if len(rest) > 6 else ''}: {why}")
    known = set(OE_IGNORED) | {"diff_based_evolution", "max_code_length", "language", "random_seed"}
    for k in sorted(set(data) - known):
        s.ignored.append(f"{k}: not used by tttd")
    return s


# ------------------------------------------------------------------------------- ShinkaEvolve


class _Module:
    """The string constants and config calls of a Python file, read with ast (never executed)."""

    def __init__(self, source: str):
        self.tree = ast.parse(source)
        self.strings: dict[str, str] = {}
        for node in self.tree.body:
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                value = self.string(node.value)
                if value is not None:
                    self.strings[node.targets[0].id] = value

    def string(self, node: ast.AST) -> str | None:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value
        if isinstance(node, ast.Name):
            return self.strings.get(node.id)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            a, b = self.string(node.left), self.string(node.right)
            if a is None or b is None or len(a) + len(b) > MAX_TEXT:  # x = y + y + ... doubles per line
                return None
            return a + b
        return None

    def literal(self, node: ast.AST) -> Any:
        text = self.string(node)
        if text is not None:
            return text
        try:
            return ast.literal_eval(node)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            return None

    def call_kwargs(self, name: str) -> dict[str, Any]:
        """Keyword arguments (literals only) of calls to ``name`` / ``x.name`` (``dict(...)`` values too)."""
        out: dict[str, Any] = {}
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Call):
                f = node.func
                called = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else ""
                if called == name:
                    for kw in node.keywords:
                        if kw.arg is not None:
                            value = self.literal(kw.value)
                            if value is None and isinstance(kw.value, ast.Call) and getattr(kw.value.func, "id", "") == "dict":
                                value = {k.arg: self.literal(k.value) for k in kw.value.keywords if k.arg}
                            if value is not None:
                                out.setdefault(kw.arg, value)
        return out

    def subscript_assignment(self, key: str) -> str | None:
        """``x[...]["key"] = VALUE`` anywhere (e.g. ``config["evo_config"]["task_sys_msg"] = MSG``)."""
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Assign):
                for t in node.targets:
                    if isinstance(t, ast.Subscript) and isinstance(t.slice, ast.Constant) and t.slice.value == key:
                        return self.string(node.value)
        return None

    def argparse_default(self, flag: str) -> str | None:
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "add_argument":
                if any(isinstance(a, ast.Constant) and a.value == flag for a in node.args):
                    for kw in node.keywords:
                        if kw.arg == "default":
                            return self.string(kw.value)
        return None


def _seconds(hms: Any) -> float | None:
    if not isinstance(hms, str):
        return None
    parts = hms.strip().split(":")
    try:
        nums = [float(p) for p in parts]
    except ValueError:
        return None
    total = 0.0
    for n in nums:
        total = total * 60 + n
    return total if total > 0 else None


def shinka_settings(folder: Path, config: str | None = None) -> Settings:
    s = Settings(cascade=False)
    evo: dict[str, Any] = {}
    job: dict[str, Any] = {}
    script = folder / "run_evo.py"
    default_yaml = None
    if script.is_file():
        try:
            mod = _Module(read_capped(script))
        except (SyntaxError, ValueError, UnicodeDecodeError, RecursionError, MemoryError) as exc:
            s.ignored.append(f"run_evo.py: not parsed ({type(exc).__name__})")
            mod = None
        if mod is not None:
            s.files.append("run_evo.py")
            evo = mod.call_kwargs("EvolutionConfig")
            job = mod.call_kwargs("LocalJobConfig")
            default_yaml = mod.argparse_default("--config_path")
            msg = _text(evo.get("task_sys_msg"))
            where = "run_evo.py: EvolutionConfig(task_sys_msg=...)"
            if msg is None:
                msg, where = _text(mod.subscript_assignment("task_sys_msg")), "run_evo.py: ...['task_sys_msg'] = ..."
            if msg is None:
                named = [v for k, v in mod.strings.items() if "task_sys_msg" in k and _text(v)]
                msg, where = (named[0].strip(), "run_evo.py: a *task_sys_msg string") if named else (None, None)
            if msg:
                s.statement, s.statement_from = msg, where
    candidates = ([default_yaml] if default_yaml else []) + ["shinka.yaml", "config.yaml", "*.yaml"]
    path = pick_config(folder, config, candidates)
    if path is not None:
        s.files.append(path.name)
        data = _load_yaml(path)
        node = data.get("evo_config", data.get("evo")) or {}
        if isinstance(node, dict):
            msg = _text(node.get("task_sys_msg"))
            if msg:  # the YAML wins: run_evo.py's own default may be overridden by it upstream too
                s.statement, s.statement_from = msg, f"{path.name}: evo_config.task_sys_msg"
            evo = {**evo, **{k: v for k, v in node.items() if v is not None}}
        jnode = data.get("job_config") or {}
        if isinstance(jnode, dict):
            job = {**job, **jnode}
        for k in sorted(set(data) - {"evo_config", "evo", "job_config"}):
            s.ignored.append(f"{k}: " + SHINKA_IGNORED.get(k, "not used by tttd"))
    if s.statement:
        s.use("task_sys_msg", s.statement, f"the problem statement ({s.statement_from})")
    t = _seconds(job.get("time"))
    if t:
        s.timeout_s = t
        s.use("job_config time", job["time"], f"time limit {t:g} s per evaluation")
    if _text(evo.get("language")):
        s.language = evo["language"].strip().lower()
        s.use("evo_config.language", s.language, "the code-fence language")
    patch = evo.get("patch_types")
    if isinstance(patch, list) and patch:
        s.edits = "diff" if "diff" in patch else "whole"
        s.use("evo_config.patch_types", patch, "answers are SEARCH/REPLACE diffs (a whole program is also accepted)"
              if s.edits == "diff" else "answers are whole programs")
    kw = evo.get("llm_kwargs") if isinstance(evo.get("llm_kwargs"), dict) else {}
    temps = kw.get("temperatures")
    if isinstance(temps, list) and len(temps) == 1 and _number(temps[0]):
        s.run_values["temperature"] = float(temps[0])
        s.use("llm_kwargs.temperatures", temps, "the run's sampling temperature (flags override)")
    elif temps is not None:
        s.ignored.append(f"llm_kwargs.temperatures = {temps!r}: tttd samples at one temperature (--temperature)")
    if isinstance(kw.get("max_tokens"), int) and kw["max_tokens"] > 0:
        s.run_values["max_tokens"] = int(kw["max_tokens"])
        s.use("llm_kwargs.max_tokens", kw["max_tokens"], "the run's token budget per sample (flags override)")
    used = {"task_sys_msg", "language", "patch_types", "llm_kwargs"}
    rest = sorted(set(evo) - used)
    if rest:
        s.ignored.append(f"evo_config: {', '.join(rest[:8])}{' ...' if len(rest) > 8 else ''}: "
                         "ShinkaEvolve's search settings (tttd's loop, archive and policy replace them)")
    if not s.files:
        s.used.append("(no run_evo.py or YAML config: ShinkaEvolve's defaults)")
    return s


def read_settings(folder: Path, framework: str, config: str | None = None) -> Settings:
    if framework == "openevolve":
        return openevolve_settings(folder, config)
    return shinka_settings(folder, config)
