"""Drive tttd's tinker backend against SkyRL's live server behind a fault-injecting proxy
(issue 24). Run like ``drive.py`` (the server's environment, PYTHONPATH at the repository);
prints one JSON object of measurements as its last line; ``tests/policy/test_tinker_skyrl_faults.py``
checks them.

1. sampling through 429, 503, a dropped connection and a hung connection (on the submit and on
   the result polling) gives exactly the tokens a clean request with the same seed gives;
2. a training step under a persistent 503 stops with one ServiceError and is not repeated;
3. the service restarts between steps (killed, started again on the same database and
   checkpoints): while it is down, sampling stops with one ServiceError; then a fresh process
   (as ``tttd resume`` is) restores the last saved state, samples what the policy before the
   restart sampled with the same seed, and trains on.
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
                      tokenizer=str(model_dir), connect_timeout_s=60, setup_timeout_s=300, request_timeout_s=60,
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
        print(json.dumps(out), file=sys.stderr, flush=True)

        # 2. a training step under a persistent 503: one ServiceError, never repeated by tttd
        batch = [TrainDatum(s.prompt_tokens, s.tokens, s.logprobs, [1.0] * len(s.tokens)) for s in clean[0]]
        pol.train_step(batch, TrainConfig(learning_rate=0.02))  # warm (a clean step)
        before = proxy.seen["/api/v1/forward_backward"]
        proxy.inject("/forward_backward", ["503"] * 40)
        # The SDK retries a 503 by itself (for up to 5 min), so the step ends at tttd's request
        # timeout; this step is compiled already (the warm step), so 15 s, not the 60 s that the
        # first requests' compiles need, is enough to show that stop. As with 60 s, the SDK's
        # retry goes on in the background and lands once the proxy is cleared below: "the update
        # may or may not have been applied" (tttd.policy.service_retry).
        pol.request_timeout_s = 15
        t0 = time.monotonic()
        try:
            pol.train_step(batch, TrainConfig(learning_rate=0.02))
            out["train_fault_error"] = None
        except ServiceError as exc:
            out["train_fault_error"] = str(exc)
        out["train_fault_s"] = round(time.monotonic() - t0, 1)
        pol.request_timeout_s = common["request_timeout_s"]
        out["train_fault_forward_backward_posts"] = proxy.seen["/api/v1/forward_backward"] - before
        out["train_fault_step_counted"] = pol._step
        print(json.dumps(out), file=sys.stderr, flush=True)
        proxy.clear()

        # 3. a service restart between steps
        pol.train_step(batch, TrainConfig(learning_rate=0.02))
        save = work / "step" / "policy"
        pol.save(str(save))
        after_params = SamplingParams(max_tokens=12, seeds=[21])
        want = pol.sample([prompt], 2, after_params)
        stop_server(server)
        pol.request_retries = 1  # the SDK itself already retries ~1 min per request
        # nothing answers while it is down: each try ends at the request timeout, so 60 s per try
        # (the setting above, needed for the first requests' compiles) would only wait longer
        pol.request_timeout_s = 10
        t0 = time.monotonic()
        try:  # while it is down: a clean one-line stop, within the retry budget
            pol.sample([prompt], 2, after_params)
            out["down_error"] = None
        except ServiceError as exc:
            out["down_error"] = str(exc)
        out["down_s"] = round(time.monotonic() - t0, 1)
        print(json.dumps({k: v for k, v in out.items()}), file=sys.stderr, flush=True)
        pol.close()
        server = start_server(work, model_dir, port, "server2.log")
        wait_http(f"http://127.0.0.1:{port}/api/v1/healthz", server, 180)
        # the resume is a new process, as `tttd resume` is after the run stopped
        env = dict(os.environ, TTTD_SKYRL_RESUME=json.dumps({**common, "model": str(model_dir),
                                                               "save": str(save)}))
        got = subprocess.run([sys.executable, __file__], capture_output=True, text=True, env=env, timeout=400)
        if got.returncode != 0:
            out["resume_error"] = got.stderr[-1500:]
        else:
            res = json.loads(got.stdout.strip().splitlines()[-1])
            out["restart_resume_equal"] = res["tokens"] == [s.tokens for s in want[0]]
            out["train_after_restart_tokens"] = res["trained_tokens"]
    finally:
        out["wall_s"] = round(time.monotonic() - t_start, 1)
        proxy.close()
        stop_server(server)
        out["server_log_tail"] = "".join((work / n).read_text()[-800:] for n in ("server.log", "server2.log")
                                         if (work / n).exists())
    print(json.dumps(out))


def resume(spec: dict) -> None:
    """In a fresh process on the restarted service: restore the saved state, sample, train."""
    from tttd.policy import SamplingParams, TrainConfig
    from tttd.policy import tinker as tp
    from tttd.types import TrainDatum

    model, save = spec.pop("model"), spec.pop("save")
    pol = tp.TinkerPolicy(model, **spec)
    pol.load(save)
    got = pol.sample([[{"role": "user", "content": "hello world"}]], 2, SamplingParams(max_tokens=12, seeds=[21]))
    batch = [TrainDatum(s.prompt_tokens, s.tokens, s.logprobs, [1.0] * len(s.tokens)) for s in got[0]]
    m = pol.train_step(batch, TrainConfig(learning_rate=0.02))
    pol.close()
    print(json.dumps({"tokens": [s.tokens for s in got[0]], "trained_tokens": m["tokens"]}))


if __name__ == "__main__":
    if os.environ.get("TTTD_SKYRL_RESUME"):
        resume(json.loads(os.environ["TTTD_SKYRL_RESUME"]))
    else:
        main()
