"""`tttd run --backend api` through the CLI against a real local OpenAI-compatible server."""

import json

import pytest

pytest.importorskip("openai")
pytest.importorskip("torch")

from tests.policy.openai_server import OpenAIServer, local_generator  # noqa: E402
from tttd.cli import main  # noqa: E402
from tttd.rundir import read_jsonl  # noqa: E402


@pytest.mark.slow
def test_frozen_api_run_through_the_cli(tiny_model_dir, tmp_path, capsys):
    from tttd.policy.local import LocalPolicy

    served = LocalPolicy(str(tiny_model_dir), lora_rank=4)
    out = tmp_path / "api-run"
    with OpenAIServer(local_generator(served)) as server:
        url = server.base_url
        rc = main(["run", "demo", "--backend", "api", "--model", "tiny-served",
                   "--backend-option", f"base_url={server.base_url}", "--no-train",
                   "--steps", "2", "--groups", "2", "--group-size", "3", "--max-tokens", "24",
                   "--out", str(out), "--json", "--quiet"])
    assert rc == 0, capsys.readouterr().err
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["steps"] == 2 and summary["samples"] == 12
    rows = list(read_jsonl(out / "metrics.jsonl"))
    assert [r["trained"] for r in rows] == [False, False]
    roll = list(read_jsonl(out / "rollouts.jsonl"))
    # the metrics count the tokens the server reported (issue 32), not the token ids the rollouts
    # carry (none: an OpenAI-compatible server returns no ids unless asked, see tttd/policy/api.py)
    assert all(x["tokens"] == 0 for x in roll)
    assert sum(r["sampled_tokens"] for r in rows) == server.stats["completion_tokens"] > 0
    assert sum(r["prompt_tokens"] for r in rows) == server.stats["prompt_tokens"] > 0
    config = json.loads((out / "config.json").read_text())
    assert config["backend"] == "api" and config["backend_options"]["base_url"] == url
    assert len(list(read_jsonl(out / "rollouts.jsonl"))) == 12
