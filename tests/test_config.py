import pytest

from tttd.config import ConfigError, PRESETS, RunConfig, config_from_dict, load_config_file, resolve_config


def test_defaults_validate():
    cfg = resolve_config()
    assert cfg == RunConfig().validate()


def test_precedence_defaults_preset_file_flags():
    task_presets = {"paper": {"groups": 3}}
    cfg = resolve_config(task_presets, preset="paper", file_values={"steps": 7, "group_size": 5},
                         flag_values={"steps": 9, "seed": None})
    assert cfg.preset == "paper"
    assert cfg.kl_coef == PRESETS["paper"]["kl_coef"]  # from the global preset
    assert cfg.groups == 3  # the task's preset overrides the global one
    assert cfg.group_size == 5  # file
    assert cfg.steps == 9  # flag beats file
    assert cfg.seed == 0  # None flag = not given


def test_toml_and_yaml_files(tmp_path):
    (tmp_path / "c.toml").write_text('steps = 4\nreuse = "greedy"\n[task_options]\nroot_digits = 10\n')
    (tmp_path / "c.yaml").write_text("steps: 5\nobjective: mean\n")
    assert load_config_file(tmp_path / "c.toml") == {"steps": 4, "reuse": "greedy", "task_options": {"root_digits": 10}}
    cfg = resolve_config(file_values=load_config_file(tmp_path / "c.yaml"))
    assert (cfg.steps, cfg.objective) == (5, "mean")


@pytest.mark.parametrize(
    "values, fragment",
    [
        ({"steps": 0}, "steps must be >= 1"),
        ({"steps": "many"}, "bad value for steps"),
        ({"steps": 2.5}, "bad value for steps"),
        ({"reuse": "random"}, "reuse must be one of"),
        ({"objective": "ppo"}, "objective must be one of"),
        ({"learning_rate": -1}, "learning_rate must be > 0"),
        ({"stepz": 3}, "unknown config key 'stepz'"),
        ({"train": "maybe"}, "bad value for train"),
    ],
)
def test_bad_values_are_clear(values, fragment):
    with pytest.raises(ConfigError, match=fragment):
        resolve_config(file_values=values)


def test_unknown_preset():
    with pytest.raises(ConfigError, match="unknown preset 'fast'"):
        resolve_config(preset="fast")


def test_bad_config_files(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config_file(tmp_path / "nope.toml")
    (tmp_path / "x.ini").write_text("a=1")
    with pytest.raises(ConfigError, match="must be .toml"):
        load_config_file(tmp_path / "x.ini")
    (tmp_path / "bad.toml").write_text("steps = = 3")
    with pytest.raises(ConfigError, match="cannot parse"):
        load_config_file(tmp_path / "bad.toml")


def test_round_trip_through_dict():
    cfg = resolve_config(preset="demo", flag_values={"seed": 3})
    assert config_from_dict(cfg.to_dict()) == cfg


def test_paper_preset_keeps_the_math_tasks_memory_default():
    """Issue 15: the run's eval_memory_mb is None unless set, so the math tasks keep 4096 MB."""
    from tttd.build import build_task

    cfg = resolve_config(preset="paper", flag_values={"task": "erdos"})
    assert cfg.eval_memory_mb is None
    assert build_task(cfg).memory_mb == 4096
    cfg = resolve_config(preset="paper", flag_values={"task": "erdos", "eval_memory_mb": 1024})
    assert build_task(cfg).memory_mb == 1024
    with pytest.raises(ConfigError, match="eval_memory_mb"):
        resolve_config(flag_values={"eval_memory_mb": 10})


def test_chat_template_options_config_key_flag_and_policy(monkeypatch):
    """Issue 15: chat-template options are a config key (the paper preset asks gpt-oss for high
    reasoning), a repeatable CLI flag, and reach the backend's constructor (backend_options win)."""
    import tttd.build as loop
    from tttd.cli import build_parser
    from tttd.cli.common import parse_kv

    assert resolve_config(preset="paper").chat_template_kwargs == {"reasoning_effort": "high"}
    assert resolve_config().chat_template_kwargs == {}
    args = build_parser().parse_args(["run", "demo", "--chat-template-option", "reasoning_effort=low",
                                      "--chat-template-option", "enable_thinking=false"])
    flags = {"chat_template_kwargs": parse_kv(args.chat_template_option, "--chat-template-option")}
    cfg = resolve_config(preset="paper", flag_values=flags)
    assert cfg.chat_template_kwargs == {"reasoning_effort": "low", "enable_thinking": False}

    class Captures:
        def __init__(self, model, chat_template_kwargs=None, total_steps=None):
            self.kwargs = chat_template_kwargs
            self.total_steps = total_steps

    from tttd.policy.backends import Backend, Option

    declared = Backend("captures", "", True, tuple(Option(n, "", None, "") for n in
                                                   ("model", "chat_template_kwargs", "total_steps")))
    monkeypatch.setattr(loop, "backend_class", lambda name: Captures)
    monkeypatch.setattr(loop, "backend_spec", lambda name: declared)  # what the loop hands over
    pol = loop.build_policy(cfg)
    assert pol.kwargs == {"reasoning_effort": "low", "enable_thinking": False} and pol.total_steps == 50
    cfg.backend_options = {"chat_template_kwargs": {"x": 1}}
    assert loop.build_policy(cfg).kwargs == {"x": 1}
