"""Rank 0's side of data-parallel training (:mod:`tttd.policy.distributed` says what and why).

A :class:`Coordinator` is attached to rank 0's :class:`~tttd.policy.local.LocalPolicy` when tttd
runs under torchrun (:func:`attach`); the policy hands it sampling and gradient accumulation and
tells it when the weights change. Everything else (the optimizer step, checkpoints) stays in the
policy, on rank 0 only, except with ``parallel=fsdp`` (:mod:`tttd.policy.fsdp`), where every rank
holds a shard: then every rank steps its shard of Adam, and checkpoints are gathered (save) or
scattered (load) by all ranks together, rank 0 alone reading and writing the files.
"""

from __future__ import annotations

from dataclasses import asdict, replace
from typing import TYPE_CHECKING, Any, Sequence

from tttd.policy import SamplingParams, TrainConfig, prompt_seeds
from tttd.policy import dp_wire as wire
from tttd.policy.distributed import (DistributedError, _post, broadcast_params, channel, collective,
                                     flat_grads, set_grads, shard_chunks, wait_replies)
from tttd.types import Message, Sample, TrainDatum

if TYPE_CHECKING:  # pragma: no cover
    from tttd.policy.local import LocalPolicy


def attach(policy: "LocalPolicy", kwargs: dict[str, Any]) -> "Coordinator | None":
    """Rank 0 of a started job: the coordinator of ``policy`` (built with ``kwargs``); else None."""
    ch = channel()
    if ch is None or ch.rank != 0 or ch.size < 2:
        return None
    return Coordinator(policy, kwargs)


def _json_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    out = dict(kwargs)
    if not isinstance(out.get("engine", "hf"), str):
        raise ValueError("under torchrun the engine must be given by name (each rank builds its own)")
    if out.get("dtype") is not None and not isinstance(out["dtype"], str):
        out["dtype"] = str(out["dtype"]).replace("torch.", "")
    out["model"] = str(out["model"])
    return out


def share_sample(policy, prompts: list[list[Message]], n: int, params: SamplingParams,
                 width: int) -> list[list[Sample]]:
    """One rank's share of a sampling call (``prompts`` may be empty); with ``parallel=fsdp``
    every rank un-shards the model around it, even with nothing to sample (a collective)."""
    if policy.sharded is None:
        return padded_sample(policy.engine, prompts, n, params, width) if prompts else []
    with policy.sharded.gathered():
        return padded_sample(policy.engine, prompts, n, params, width) if prompts else []


def padded_sample(engine, prompts: list[list[Message]], n: int, params: SamplingParams,
                  width: int) -> list[list[Sample]]:
    """``engine.sample`` with the prompts left-padded to ``width`` (the whole batch's), where the
    engine pads (hf): each row is then computed as one process computes it, log-probs included,
    not only the same tokens. Other engines (vllm) sample each sequence on its own anyway."""
    if not hasattr(engine, "min_width"):
        return engine.sample(prompts, n, params)
    engine.min_width = width
    try:
        return engine.sample(prompts, n, params)
    finally:
        engine.min_width = 0


class Coordinator:
    """Rank 0's half of each command; the other ranks run :mod:`tttd.policy.dp_follower`."""

    def __init__(self, policy: "LocalPolicy", kwargs: dict[str, Any]) -> None:
        self.ch = channel()
        self.policy = policy
        ch = self.ch
        seq = _post(ch, {"op": "init", "kwargs": _json_kwargs(kwargs)})
        replies = wait_replies(ch, seq, "built its policy", in_step=False)
        for r, body in enumerate(replies, start=1):
            if body["device"] != policy.device.type:
                raise DistributedError(f"rank {r} of {ch.size} runs on {body['device']} but rank 0 on "
                                       f"{policy.device.type}: give every rank the same kind of device")
        self.sync()  # every rank starts from rank 0's weights

    def info(self) -> dict[str, Any]:
        """What the run records (config.json ``_engine.data_parallel``)."""
        return {"ranks": self.ch.size, "backend": self.ch.backend, "parallel": self.policy.parallel}

    def collective(self, what: str, fn, *args):
        """``fn(*args)`` on rank 0, in step with the other ranks; a failure is one line."""
        return collective(self.ch, what, fn, *args)

    # ------------------------------------------------------------------ sampling

    def sample(self, prompts: list[list[Message]], n: int, params: SamplingParams) -> list[list[Sample]]:
        """Each rank samples a contiguous block of the prompts, each prompt with its own seed."""
        p, ch = self.policy, self.ch
        seeds = prompt_seeds(params, len(prompts), p.seed * 1_000_003 + p.sample_calls)
        calls = p.sample_calls
        per, extra = divmod(len(prompts), ch.size)
        bounds = [0]
        for r in range(ch.size):
            bounds.append(bounds[-1] + per + (1 if r < extra else 0))
        width = max((len(p.render(m)) for m in prompts), default=0)  # one process's padded width
        shares = []
        for r in range(ch.size):
            a, b = bounds[r], bounds[r + 1]
            shares.append({"prompts": prompts[a:b], "n": n, "pad_to": width,
                           "params": wire.params_row(replace(params, seed=None, seeds=seeds[a:b]))} if b > a else None)
        seq = _post(ch, {"op": "sample"}, shares)
        own = self.collective("sampling", share_sample, p, prompts[:bounds[1]], n,
                              replace(params, seed=None, seeds=seeds[:bounds[1]]), width)
        replies = wait_replies(ch, seq, "sampled its share of the groups")
        p.sample_calls = calls + 1  # as one process: one call
        groups = list(own)
        for body in replies:
            if body.get("groups"):
                groups.extend(wire.samples_from(body["groups"]))
                p.count_sampling(*body["usage"])
        return groups

    # ------------------------------------------------------------------ training

    def accumulate(self, batch: Sequence[TrainDatum], config: TrainConfig) -> dict[str, float]:
        """Fill rank 0's gradients with the whole batch's (each rank's share, summed in rank
        order); the metrics of :meth:`LocalPolicy.accumulate_gradients` for the whole batch."""
        import torch

        p, ch = self.policy, self.ch
        p._check(batch)
        budget = p.micro_batch_tokens or config.micro_batch_tokens
        if budget < 1:
            raise ValueError(f"micro_batch_tokens must be >= 1, got {budget}")
        values = [v for d in batch for v in d.logprobs] + [v for d in batch for v in d.advantages]
        if not torch.isfinite(torch.tensor(values, dtype=torch.float32)).all():
            raise ValueError("train_step got non-finite logprobs or advantages")
        chunks = p._micro_batches(batch, budget)
        weights = [len(c) * max(len(batch[k].prompt_tokens) + len(batch[k].tokens) for k in c) for c in chunks]
        runs = shard_chunks(weights, ch.size)
        shards = [[k for ci in run for k in chunks[ci]] for run in runs]
        rounds = max(len(run) for run in runs)  # parallel=fsdp: forward/backward rounds on every rank
        metrics: dict[str, float] = {}
        batch = list(batch)
        if config.kl_coef > 0:
            batch, metrics["kl_policy_base"] = self._kl_shift(batch, shards, budget, config.kl_coef, rounds)
            config = replace(config, kl_coef=0.0)
        step = p.step + 1
        shares = [{"data": wire.data_rows([batch[k] for k in idx]), "config": asdict(config)} if idx else None
                  for idx in shards]
        seq = _post(ch, {"op": "train", "step": step, "rounds": rounds, "micro_batch_tokens": budget,
                         "config": asdict(config)}, shares)
        own = [batch[k] for k in shards[0]]
        if p.sharded:  # each rank's gradient shard is already the sum (reduce-scatter)
            m0 = self.collective(f"training of optimizer step {step}", p.sharded.accumulate, own, config, rounds, budget)
            parts = [m0] + [body["metrics"] for body in wait_replies(ch, seq, f"trained its shard of optimizer step {step}")]
            return self._merge(metrics, parts, chunks, shards)
        if own:
            m0 = p.accumulate_gradients(own, config)
        else:
            p.optimizer.zero_grad(set_to_none=True)
            m0 = {}
        parts = [m0] + [body["metrics"] for body in wait_replies(ch, seq, f"trained its shard of optimizer step {step}")]
        gathered = []
        for flat in flat_grads(p.params):
            bufs = [torch.empty_like(flat) for _ in range(ch.size)]
            collective(ch, f"gather of the gradients (optimizer step {step})", ch.dist.gather, flat, bufs, dst=0)
            total = None
            for r in range(ch.size):  # rank order: the one-process accumulation order
                if shards[r]:
                    total = bufs[r].clone() if total is None else total.add_(bufs[r])
            gathered.append(total)
        set_grads(p.params, gathered)
        return self._merge(metrics, parts, chunks, shards)

    @staticmethod
    def _merge(metrics: dict[str, float], parts: list[dict[str, float]], chunks: list, shards: list) -> dict[str, float]:
        """The ranks' metrics as one process's (sums in rank order)."""
        tokens = sum(m.get("tokens", 0.0) for m in parts)
        loss = diff = 0.0
        for m in parts:  # in rank order, as one process adds its micro-batches'
            loss += m.get("loss", 0.0)
            diff += m.get("kl_sample_train_sum", 0.0)
        metrics.update(loss=loss, tokens=tokens, kl_sample_train=diff / max(1, int(tokens)), kl_sample_train_sum=diff,
                       micro_batches=float(len(chunks)), ranks_used=float(sum(map(bool, shards))))
        return metrics

    def _kl_shift(self, batch: list[TrainDatum], shards: list[list[int]], budget: int,
                  coef: float, rounds: int) -> tuple[list[TrainDatum], float]:
        """The KL-to-base advantage shift with the batch-wide mean (each rank computes the base
        log-probs of its share)."""
        import torch

        from tttd.losses import kl_advantage_shift

        p, ch = self.policy, self.ch
        shares = [{"data": wire.data_rows([batch[k] for k in idx]), "micro_batch_tokens": budget} if idx else None
                  for idx in shards]
        seq = _post(ch, {"op": "kl", "rounds": rounds, "micro_batch_tokens": budget}, shares)
        own = [batch[k] for k in shards[0]]
        if p.sharded:
            base = self.collective("base log-probs", p.sharded.base_logprobs, own, rounds, budget)
        else:
            base = p._base_logprobs(own, p._micro_batches(own, budget)).float().tolist() if own else []
        for body in wait_replies(ch, seq, "computed base log-probs of its share"):
            if body.get("base"):
                base.extend(wire.unpack(body["base"]))
        dev = p.device

        def flat(attr: str) -> torch.Tensor:
            return torch.tensor([v for d in batch for v in getattr(d, attr)], dtype=torch.float32, device=dev)

        ones = torch.tensor([m for d in batch for m in d.mask_or_ones()], dtype=torch.float32, device=dev)
        adv, dbar = kl_advantage_shift(flat("advantages"), flat("logprobs"),
                                       torch.tensor(base, dtype=torch.float32, device=dev), ones, coef)
        values = adv.tolist()
        out, pos = [], 0
        for d in batch:
            out.append(replace(d, advantages=values[pos:pos + len(d.tokens)]))
            pos += len(d.tokens)
        return out, dbar

    def after_step(self) -> None:
        """After rank 0's optimizer step: the new weights to every rank (the train command's end;
        with parallel=fsdp every rank has stepped its own shard)."""
        if self.policy.sharded:
            return
        broadcast_params(self.ch, self.policy.params, f"after optimizer step {self.policy.step}")

    def sync(self) -> None:
        """Rank 0's weights and step to every rank (at start and after a checkpoint load)."""
        _post(self.ch, {"op": "sync", "step": self.policy.step})
        if not self.policy.sharded:
            broadcast_params(self.ch, self.policy.params, "sync")

    def save(self, path) -> None:
        """parallel=fsdp: every rank gathers its shards, rank 0 writes the checkpoint."""
        from tttd.policy.fsdp import save_sharded

        _post(self.ch, {"op": "save"})
        self.collective("checkpoint save", save_sharded, self.policy, path)

    def load(self, path) -> None:
        """parallel=fsdp: rank 0 reads and checks the checkpoint (a refusal happens before any
        rank moves), then every rank takes its shard."""
        from tttd.policy.fsdp import load_sharded
        from tttd.policy.local_checkpoint import read_checkpoint

        checkpoint = read_checkpoint(self.policy, path)
        _post(self.ch, {"op": "load"})
        self.collective("checkpoint load", load_sharded, self.policy, checkpoint)

    def close(self) -> None:
        _post(self.ch, {"op": "close"})
