"""Data-parallel training throughput of the local backend (issue 34): training tokens/s at 1, 2, ...
ranks under torchrun, and the scaling efficiency (tokens/s at N ranks / (N x tokens/s at 1 rank)).

Usage:
    python benchmarks/dp_bench.py                               # tiny model, CPU, gloo: 1 and 2 ranks
    python benchmarks/dp_bench.py --model small                 # the 26M-parameter local model
    PYTHONPATH=. python benchmarks/dp_bench.py --device cuda --ranks 1,2,4,8 \\
        --random-init-shape qwen3-8b-like --batch 64 --tokens 2048        # GPUs (nccl)

Each rank count is its own torchrun job (``python -m torch.distributed.run --standalone
--nproc-per-node N benchmarks/dp_bench.py --worker ...``, the 1-rank job included, so every job
pays the same launch and runs with the same threads per rank: one thread per rank
unless ``--threads`` says otherwise). In the job, rank 0 builds the LocalPolicy, whose
coordinator drives the other ranks exactly as in a run (:mod:`tttd.policy.distributed`), and times
``--repeats`` optimizer steps (after one warm-up step) on a synthetic batch: ``--batch``
completions of ``--tokens`` random tokens after a 32-token prompt, random advantages, LoRA rank
32, micro-batches of ``--batch / max(ranks)`` completions, so every rank count accumulates the
same micro-batches (each rank holds ``micro-batches / N`` of them). Tokens/s counts prompt and
completion tokens, as the ledger's ``trained_tokens``. The figure is the best of the repeats.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PROMPT = 32


def worker(args: argparse.Namespace) -> int:
    from tttd.policy import distributed

    if distributed.launched():
        distributed.pin_gpu()
        distributed.start()
    try:
        if distributed.world()[0] != 0:
            from tttd.policy.dp_follower import follow

            return follow()
        from tttd.policy import TrainConfig
        from tttd.policy.local import LocalPolicy
        from tttd.types import TrainDatum

        ranks_max = max(int(r) for r in args.ranks.split(","))
        per_micro = max(1, args.batch // ranks_max)
        policy = LocalPolicy(args.model_path, device=args.device, lora_rank=32,
                             micro_batch_tokens=per_micro * (PROMPT + args.tokens), parallel=args.parallel)
        vocab = policy.causal_lm().config.vocab_size
        rng = random.Random(0)
        batch = [TrainDatum([rng.randrange(vocab) for _ in range(PROMPT)], [rng.randrange(vocab) for _ in range(args.tokens)],
                            [-1.0] * args.tokens, [rng.uniform(-1, 1)] * args.tokens) for _ in range(args.batch)]
        cfg = TrainConfig(learning_rate=1e-6)
        policy.train_step(batch, cfg)  # warm-up
        best = float("inf")
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            policy.train_step(batch, cfg)
            best = min(best, time.perf_counter() - t0)
        tokens = args.batch * (PROMPT + args.tokens)
        print(json.dumps({"ranks": distributed.world()[1], "step_s": round(best, 4), "tokens": tokens,
                          "tokens_per_s": round(tokens / best, 1), "micro_batches": args.batch // per_micro,
                          "device": args.device, "model": args.model_label, "parallel": args.parallel}), flush=True)
        policy.close()
        return 0
    finally:
        distributed.shutdown()


def model_path(args: argparse.Namespace) -> str:
    if args.random_init_shape:
        sys.path.insert(0, str(HERE))
        from policy_bench import random_init_model

        return str(random_init_model(args.random_init_shape, progress=False))
    if args.model not in ("tiny", "small"):  # a named real model (tttd models install NAME), e.g. smollm2
        from tttd.policy.models import resolve

        return str(resolve(args.model)[0])
    from tttd.policy.tiny import build_tiny_model

    return str(build_tiny_model(args.model, pretrain_steps=0, progress=False))  # throughput: weights irrelevant


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ranks", default="1,2", help="rank counts to time, comma-separated")
    ap.add_argument("--model", default="tiny", help="tiny or small (built locally, random weights), or an installed real model (smollm2)")
    ap.add_argument("--random-init-shape", help="a policy_bench.py shape (qwen2-0.5b, qwen3-8b-like)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch", type=int, default=16, help="completions per step")
    ap.add_argument("--tokens", type=int, default=256, help="tokens per completion")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--parallel", default="replicate", choices=("replicate", "fsdp"),
                    help="the local backend's parallel option (fsdp: FSDP2 fully_shard)")
    ap.add_argument("--threads", type=int, help="OMP_NUM_THREADS per rank (default torchrun's: 1)")
    ap.add_argument("--smoke", action="store_true", help="tiny sizes: checks that the command runs; not a measurement")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--model-path", help=argparse.SUPPRESS)
    ap.add_argument("--model-label", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.smoke:
        args.batch, args.tokens, args.repeats = 4, 16, 1
    if args.worker:
        return worker(args)
    path = model_path(args)
    label = args.random_init_shape or args.model
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(HERE.parent), os.environ.get("PYTHONPATH")]))}
    env["OMP_NUM_THREADS"] = str(args.threads or 1)  # torchrun sets 1 only for N > 1: the same for every N
    env.pop("TTTD_DP_FAULT", None)
    results = []
    for n in [int(r) for r in args.ranks.split(",")]:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(n), __file__,
               "--worker", "--model-path", path, "--model-label", label, "--device", args.device, "--ranks", args.ranks,
               "--batch", str(args.batch), "--tokens", str(args.tokens), "--repeats", str(args.repeats),
               "--parallel", args.parallel]
        done = subprocess.run(cmd, capture_output=True, text=True, env=env)
        rows = [json.loads(ln) for ln in done.stdout.splitlines() if ln.startswith("{")]
        if done.returncode != 0 or not rows:
            print(f"dp_bench: {n} ranks failed (exit {done.returncode}): {done.stderr[-2000:]}", file=sys.stderr)
            return 1
        results.append(rows[0])
        print(json.dumps(rows[0]), flush=True)
    base = results[0]["tokens_per_s"] / results[0]["ranks"]
    print(json.dumps({"efficiency": {str(r["ranks"]): round(r["tokens_per_s"] / (r["ranks"] * base), 3) for r in results},
                      "threads_per_rank": int(env.get("OMP_NUM_THREADS", "1")), "load": os.getloadavg()[0]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
