"""tttd.evolve.settings: what an upstream config says, and the report of used / ignored keys."""

from pathlib import Path

import pytest

from tttd.evolve.settings import openevolve_settings, shinka_settings

PROBLEMS = Path(__file__).resolve().parents[1] / "evolve_problems"


def test_openevolve_config_maps_timeout_cascade_sampling_and_reports_the_rest():
    s = openevolve_settings(PROBLEMS / "oe_cascade")
    assert s.statement == "Guess the hidden number (cascade version)." and "llm.system_message" in s.statement_from
    assert s.timeout_s == 3 and s.cascade and s.thresholds == [0.5] and s.edits == "diff"  # upstream defaults
    assert s.run_values == {"temperature": 0.6, "max_tokens": 3000}
    ignored = "\n".join(s.ignored)
    assert "evaluator.parallel_evaluations" in ignored and "database.num_islands" in ignored
    assert "max_iterations" in ignored and "llm.api_key" in ignored and "never-read" not in ignored
    assert any(u.startswith("evaluator.timeout = 3") for u in s.used)


def test_openevolve_phase_config_without_config_yaml():
    s = openevolve_settings(PROBLEMS / "oe_metrics")
    assert s.files == ["config_phase_1.yaml"] and s.statement.startswith("Choose the filter width")
    assert s.edits == "whole" and s.timeout_s == 300 and s.feature_dimensions == ["complexity", "diversity"]


def test_openevolve_config_option_and_errors(tmp_path):
    (tmp_path / "config_phase_2.yaml").write_text("prompt:\n  system_message: phase two\n"
                                                  "evaluator:\n  cascade_evaluation: false\n")
    (tmp_path / "config_phase_1.yaml").write_text("prompt:\n  system_message: phase one\n")
    assert openevolve_settings(tmp_path).statement == "phase one"
    s = openevolve_settings(tmp_path, "config_phase_2.yaml")
    assert s.statement == "phase two" and s.cascade is False
    with pytest.raises(ValueError, match="config 'nope.yaml' not found.*config_phase_1.yaml"):
        openevolve_settings(tmp_path, "nope.yaml")
    (tmp_path / "config.yaml").write_text("prompt: [unclosed\n")
    with pytest.raises(ValueError, match="cannot read config.yaml"):
        openevolve_settings(tmp_path)
    (tmp_path / "config.yaml").write_text("prompt:\n  system_message: system_message\n")  # a template name
    assert openevolve_settings(tmp_path).statement is None


def test_shinka_run_evo_is_read_with_ast_never_run():
    s = shinka_settings(PROBLEMS / "shinka_feedback")  # its run_evo.py raises SystemExit if executed
    assert s.statement == "Approximate x squared on [-1, 1] with approximate(x)."
    assert s.timeout_s == 9 and s.edits == "diff" and s.language == "python"
    assert s.run_values == {"temperature": 0.5, "max_tokens": 2048}
    assert any("num_generations" in i for i in s.ignored)


def test_shinka_yaml_task_sys_msg_and_subscript_form(tmp_path):
    (tmp_path / "run_evo.py").write_text(
        'import argparse\nMSG = """from the script"""\n'
        'def main(p):\n    config = {}\n    config["evo_config"]["task_sys_msg"] = MSG\n'
        'parser = argparse.ArgumentParser()\nparser.add_argument("--config_path", default="small.yaml")\n')
    assert shinka_settings(tmp_path).statement == "from the script"
    (tmp_path / "small.yaml").write_text("evo_config:\n  task_sys_msg: from the yaml\n  patch_types: [full]\n"
                                         "  llm_kwargs:\n    temperatures: [0, 0.5]\n    max_tokens: 100\n"
                                         "db_config:\n  num_islands: 2\n")
    s = shinka_settings(tmp_path)
    assert s.statement == "from the yaml" and s.statement_from == "small.yaml: evo_config.task_sys_msg"
    assert s.edits == "whole" and s.run_values == {"max_tokens": 100}
    assert any("temperatures" in i for i in s.ignored) and any(i.startswith("db_config") for i in s.ignored)
