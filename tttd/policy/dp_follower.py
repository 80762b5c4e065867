"""Ranks 1..N-1 of a data-parallel run: build the policy rank 0 describes, then do what it asks
(:mod:`tttd.policy.distributed` says what and why; :mod:`tttd.policy.dp_coordinator` is the other
half of each command).

A command that fails here is answered with its error (one line, which rank 0 reports with this
rank's number) and the rank waits for the next command; a follower never writes to the run
directory. ``TTTD_DP_FAULT=RANK:OP:K[:hang|:after]`` (tests only) makes rank RANK kill itself with
SIGKILL (or hang) at its K-th ``OP`` command, before it answers (``after``: a train command's
answer is sent, then the rank dies before the gradients are gathered); ``TTTD_DP_TRACE=PATH`` (tests
only) appends one JSON line per command to ``PATH.RANK``: the command, the size of its share, the
rank's optimizer step and the step whose adapter its engine serves.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from typing import Any

from tttd.policy import TrainConfig, backend_class
from tttd.policy import dp_wire as wire
from tttd.policy.dp_coordinator import share_sample
from tttd.policy.distributed import (DistributedError, _Channel, _first_line, _reply, broadcast_params,
                                     channel, collective, flat_grads)


def _fault(rank: int, op: str, count: int, when: str = "") -> None:
    spec = os.environ.get("TTTD_DP_FAULT")
    if not spec:
        return
    where, what, at, *mode = spec.split(":")
    if (mode == ["after"]) != (when == "after"):
        return
    if int(where) == rank and what == op and int(at) == count:
        if mode == ["hang"]:
            while True:
                time.sleep(3600)
        os.kill(os.getpid(), signal.SIGKILL)


def _trace(rank: int, op: str, share: Any, policy: Any = None) -> None:
    path = os.environ.get("TTTD_DP_TRACE")
    if path:
        items = len((share or {}).get("data") or (share or {}).get("prompts") or [])
        row = {"op": op, "items": items}
        if policy is not None:  # this rank's optimizer step and the one its engine serves (vllm)
            row.update(step=policy.step, adapter_step=getattr(policy.engine, "adapter_step", None))
        with open(f"{path}.{rank}", "a") as fh:
            fh.write(json.dumps(row) + "\n")


def _next(ch: _Channel, seq: int) -> dict[str, Any] | None:
    """Command ``seq`` (None once rank 0 is gone)."""
    key = f"tttd/cmd/{seq}"
    last_check = time.monotonic()
    while True:
        try:
            if ch.store.check([key]):
                return wire.decode(ch.store.get(key))
        except Exception:  # noqa: BLE001 - the store (hosted by torchrun or rank 0) is gone
            return None
        now = time.monotonic()
        if now - last_check > 1.0:
            last_check = now
            if not ch.alive(0):
                return None
        time.sleep(0.02)


def _share(ch: _Channel, seq: int) -> Any:
    key = f"tttd/share/{seq}/{ch.rank}"
    if not ch.store.check([key]):
        return None
    body = wire.decode(ch.store.get(key))
    ch.store.delete_key(key)
    return body["share"]


class Follower:
    def __init__(self, ch: _Channel) -> None:
        self.ch = ch
        self.policy: Any = None
        self.counts: dict[str, int] = {}

    def run(self) -> int:
        ch = self.ch
        seq = 0
        while True:
            cmd = _next(ch, seq)
            if cmd is None:
                print(f"tttd: rank {ch.rank}: rank 0 is gone; stopping", file=sys.stderr)
                return 1
            op = cmd["op"]
            if op == "stop":
                self._close()
                return 0
            share = _share(ch, seq)
            self.counts[op] = self.counts.get(op, 0) + 1
            _fault(ch.rank, op, self.counts[op])
            _trace(ch.rank, op, share, self.policy)
            try:
                getattr(self, f"do_{op}")(seq, cmd, share)
            except DistributedError as exc:  # a collective failed: rank 0 reports it too
                print(f"tttd: {exc}", file=sys.stderr)
                return 3
            except Exception as exc:  # noqa: BLE001 - answered, reported by rank 0 with this rank
                if getattr(self.policy, "sharded", None) is not None:
                    # parallel=fsdp: rank 0 may be inside a collective that waits for this rank,
                    # not for its reply: leave, so the collective fails at once and names this rank
                    print(f"tttd: rank {ch.rank}: {_first_line(exc)}", file=sys.stderr)
                    return 3
                _reply(ch, seq, {"error": _first_line(exc)})
            seq += 1

    def _close(self) -> None:
        if self.policy is not None:
            self.policy.close()
            self.policy = None

    # ------------------------------------------------------------------ commands

    def do_init(self, seq: int, cmd: dict[str, Any], share: Any) -> None:
        self._close()
        self.policy = backend_class("local")(**cmd["kwargs"])
        _reply(self.ch, seq, {"device": self.policy.device.type})

    def do_close(self, seq: int, cmd: dict[str, Any], share: Any) -> None:
        self._close()

    def do_sync(self, seq: int, cmd: dict[str, Any], share: Any) -> None:
        self._weights(cmd["step"], "sync")

    def _weights(self, step: int, what: str) -> None:
        p = self.policy
        if p.sharded is None:  # parallel=fsdp: every rank stepped its own shard
            broadcast_params(self.ch, p.params, what)
        p.step = int(step)
        p.engine.weights_updated()  # vllm: this rank's replica serves the new adapter

    def do_sample(self, seq: int, cmd: dict[str, Any], share: Any) -> None:
        p = self.policy
        if share is None:
            if p.sharded is not None:
                collective(self.ch, "sampling", share_sample, p, [], 0, None, 0)  # its part of the un-shard
            _reply(self.ch, seq, {})
            return
        before = p.usage()
        args = (p, share["prompts"], int(share["n"]), wire.params_from(share["params"]), int(share["pad_to"]))
        groups = collective(self.ch, "sampling", share_sample, *args) if p.sharded is not None else share_sample(*args)
        after = p.usage()
        _reply(self.ch, seq, {"groups": wire.sample_rows(groups),
                              "usage": [after.prompt_tokens - before.prompt_tokens,
                                        after.sampled_tokens - before.sampled_tokens]})

    def do_kl(self, seq: int, cmd: dict[str, Any], share: Any) -> None:
        p = self.policy
        if p.sharded is not None:
            data = wire.data_from(share["data"]) if share else []
            base = collective(self.ch, "base log-probs", p.sharded.base_logprobs, data, int(cmd["rounds"]),
                              int(cmd["micro_batch_tokens"]))
            _reply(self.ch, seq, {"base": wire.pack_floats(base)} if base else {})
            return
        if share is None:
            _reply(self.ch, seq, {})
            return
        data = wire.data_from(share["data"])
        base = p._base_logprobs(data, p._micro_batches(data, int(share["micro_batch_tokens"]))).float().tolist()
        _reply(self.ch, seq, {"base": wire.pack_floats(base)})

    def do_train(self, seq: int, cmd: dict[str, Any], share: Any) -> None:
        p = self.policy
        p.engine.before_train()
        if p.sharded is not None:
            self._train_sharded(seq, cmd, share)
            return
        if share is not None:
            metrics = p.accumulate_gradients(wire.data_from(share["data"]), TrainConfig(**share["config"]))
        else:
            p.optimizer.zero_grad(set_to_none=True)
            metrics = {}
        _reply(self.ch, seq, {"metrics": metrics})  # before the collectives: rank 0 waits for it
        _fault(self.ch.rank, "train", self.counts["train"], "after")
        step = int(cmd["step"])
        for flat in flat_grads(p.params):
            collective(self.ch, f"gather of the gradients (optimizer step {step})", self.ch.dist.gather, flat, None, dst=0)
        p.optimizer.zero_grad(set_to_none=True)
        self._weights(step, f"after optimizer step {step}")


    def _train_sharded(self, seq: int, cmd: dict[str, Any], share: Any) -> None:
        """parallel=fsdp: this rank's rounds (the gradients reduce-scatter among the ranks),
        then its shard of the optimizer step."""
        p, step = self.policy, int(cmd["step"])
        config = TrainConfig(**cmd["config"])
        data = wire.data_from(share["data"]) if share else []
        metrics = collective(self.ch, f"training of optimizer step {step}", p.sharded.accumulate, data, config,
                             int(cmd["rounds"]), int(cmd["micro_batch_tokens"]))
        _reply(self.ch, seq, {"metrics": metrics})
        _fault(self.ch.rank, "train", self.counts["train"], "after")
        collective(self.ch, f"optimizer step {step}", p.sharded.optimizer_step, config)
        p.step = step

    def do_save(self, seq: int, cmd: dict[str, Any], share: Any) -> None:
        from tttd.policy.fsdp import save_sharded

        collective(self.ch, "checkpoint save", save_sharded, self.policy, None)

    def do_load(self, seq: int, cmd: dict[str, Any], share: Any) -> None:
        from tttd.policy.fsdp import load_sharded

        collective(self.ch, "checkpoint load", load_sharded, self.policy, None)


def follow() -> int:
    """The life of rank 1..N-1 (after :func:`tttd.policy.distributed.start`)."""
    ch = channel()
    assert ch is not None and ch.rank != 0
    return Follower(ch).run()

