#!/usr/bin/env python3
"""Shinka-style launcher: tttd reads it with ast and never runs it (running it would fail)."""
from shinka.core import EvolutionConfig, ShinkaEvolveRunner
from shinka.launch import LocalJobConfig

raise SystemExit("this file must never be executed by tttd")

search_task_sys_msg = """Approximate x squared on [-1, 1] """ + "with approximate(x)."

job_config = LocalJobConfig(eval_program_path="evaluate.py", time="00:00:09")
evo_config = EvolutionConfig(
    task_sys_msg=search_task_sys_msg,
    patch_types=["diff", "full"],
    language="python",
    num_generations=10,
    llm_kwargs=dict(temperatures=[0.5], max_tokens=2048),
)
ShinkaEvolveRunner(evo_config=evo_config, job_config=job_config).run()
