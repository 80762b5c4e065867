"""Drive tttd's tinker backend against SkyRL's live server behind a fault-injecting proxy
(issue 24). Run like ``drive.py`` (the server's environment, PYTHONPATH at the repository);
prints one JSON object of measurements as its last line; ``tests/policy/test_tinker_skyrl_faults.py``
checks them.

1. sampling through 429, 503, a dropped connection and a hung connection (on the submit and on
   the result polling) gives exactly the tokens a clean request with the same seed gives;
2. a training step under a persistent 503 stops with one ServiceError and is not repeated;
3. the service restarts between steps (killed, started again on the same database and
   checkpoints): a fresh policy restores the last saved state and samples what the policy before
   the restart sampled, and trains on.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from drive import build_model, free_port, wait_http  # noqa: E402
from fault_proxy import FaultProxy  # noqa: E402


def start_server(work: Path, model_dir: Path, port: int, log_name: str) -> subprocess.Popen:
    log = open(work / log_name, "w")
    cmd = [sys.executable, str(HERE / "launch.py"), "api", "--host", "127.0.0.1", "--port", str(port),
           "--base-model", str(model_dir), "--backend", "jax",
           "--backend-config", json.dumps({"max_lora_adapters": 8, "max_lora_rank": 8}),
           "--database-url", f"sqlite:///{work / 'db.sqlite'}", "--checkpoints-base", str(work / "ckpts")]
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ, JAX_PLATFORMS="cpu"),
                            start_new_session=True)


def stop_server(server: subprocess.Popen) -> None:
    try:
        os.killpg(server.pid, 15)
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, 9)
        server.wait()
    except ProcessLookupError:
        pass


def main() -> None:
    from tttd.policy import SamplingParams, TrainConfig
    from tttd.policy import tinker as tp
    from tttd.policy.service_retry import ServiceError
    from tttd.types import TrainDatum

    work = Path(tempfile.mkdtemp(prefix="tttd-skyrl-faults-"))
    model_dir = work / "tiny-qwen3"
    build_model(model_dir)
    port = free_port()
    server = start_server(work, model_dir, port, "server.log")
    proxy = FaultProxy(port, hang_s=8.0)
    out: dict = {}
    t_start = time.monotonic()
    try:
        wait_http(f"http://127.0.0.1:{port}/api/v1/healthz", server, 180)
        common = dict(base_url=f"http://127.0.0.1:{proxy.port}", api_key="tml-local-skyrl", lora_rank=8, seed=3,
                      tokenizer=str(model_dir), connect_timeout_s=60, setup_timeout_s=300, request_timeout_s=120,
                      save_every=1, context_window=512, request_retries=4, retry_backoff_s=0.2)
        pol = tp.TinkerPolicy(str(model_dir), **common)
        prompt = [{"role": "user", "content": "hello world"}]
        params = SamplingParams(max_tokens=12, seeds=[11])
        clean = pol.sample([prompt], 2, params)

        # 1. flaky sampling
        proxy.inject("/asample", ["429", "503", "drop", "hang"])
        proxy.inject("/retrieve_future", ["503", "drop"])
        t0 = time.monotonic()
        flaky = pol.sample([prompt], 2, params)
        out["flaky_sample_s"] = round(time.monotonic() - t0, 1)
        out["faults_served"] = [a for _, a in proxy.served]
        out["faults_left"] = len(proxy.faults)
        out["flaky_sample_equal"] = [s.tokens for s in flaky[0]] == [s.tokens for s in clean[0]]

        # 2. a training step under a persistent 503: one ServiceError, never repeated by tttd
        batch = [TrainDatum(s.prompt_tokens, s.tokens, s.logprobs, [1.0] * len(s.tokens)) for s in clean[0]]
        pol.train_step(batch, TrainConfig(learning_rate=0.02))  # warm (a clean step)
        before = proxy.seen["/api/v1/forward_backward"]
        proxy.inject("/forward_backward", ["503"] * 40)
        t0 = time.monotonic()
        try:
            pol.train_step(batch, TrainConfig(learning_rate=0.02))
            out["train_fault_error"] = None
        except ServiceError as exc:
            out["train_fault_error"] = str(exc)
        out["train_fault_s"] = round(time.monotonic() - t0, 1)
        out["train_fault_forward_backward_posts"] = proxy.seen["/api/v1/forward_backward"] - before
        out["train_fault_step_counted"] = pol._step
        proxy.clear()

        # 3. a service restart between steps
        pol.train_step(batch, TrainConfig(learning_rate=0.02))
        save = work / "step" / "policy"
        pol.save(str(save))
        after_params = SamplingParams(max_tokens=12, seeds=[21])
        want = pol.sample([prompt], 2, after_params)
        stop_server(server)
        try:  # while it is down: a clean one-line stop, within the retry budget
            pol.sample([prompt], 2, after_params)
            out["down_error"] = None
        except ServiceError as exc:
            out["down_error"] = str(exc)
        server = start_server(work, model_dir, port, "server2.log")
        wait_http(f"http://127.0.0.1:{port}/api/v1/healthz", server, 180)
        pol2 = tp.TinkerPolicy(str(model_dir), **common)
        pol2.load(str(save))
        got = pol2.sample([prompt], 2, after_params)
        out["restart_resume_equal"] = [s.tokens for s in got[0]] == [s.tokens for s in want[0]]
        out["restart_resume_logprobs_close"] = max(
            abs(a - b) for g, w in zip(got[0], want[0]) for a, b in zip(g.logprobs, w.logprobs)) if \
            out["restart_resume_equal"] else None
        m = pol2.train_step(batch, TrainConfig(learning_rate=0.02))
        out["train_after_restart_tokens"] = m["tokens"]
        pol.close()
        pol2.close()
    finally:
        out["wall_s"] = round(time.monotonic() - t_start, 1)
        proxy.close()
        stop_server(server)
        out["server_log_tail"] = "".join((work / n).read_text()[-800:] for n in ("server.log", "server2.log")
                                         if (work / n).exists())
    print(json.dumps(out))


if __name__ == "__main__":
    main()
