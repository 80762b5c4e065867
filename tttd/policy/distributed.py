"""Data-parallel training of the local backend on torch.distributed (``torchrun``).

    torchrun --nproc-per-node N -m tttd run TASK ...               # one node: N GPUs (or N CPU processes)
    torchrun --nnodes M --nproc-per-node N --rdzv-backend c10d \\
             --rdzv-endpoint HOST:PORT --rdzv-id RUN -m tttd run TASK ...   # M nodes

One tttd process per rank (:mod:`tttd.__main__` starts it). **Rank 0** runs the whole loop:
selection, sampling, evaluation, archive, run directory, checkpoints, exactly as one process
would; its :class:`~tttd.policy.local.LocalPolicy` becomes the *coordinator* of the others.
**Ranks 1..N-1** run :func:`follow`: they build the same policy and do what rank 0 asks, one
command at a time:

- ``sample``: each rank samples its share of the groups (contiguous blocks of prompts). Every
  prompt carries its own seed and every sample its own generator (:mod:`tttd.policy.engines`),
  so a group is the same whichever rank samples it.
- ``train``: the step's micro-batches are formed exactly as one process forms them
  (``micro_batch_tokens``: gradient accumulation keeps its meaning: at most that many padded
  tokens per forward/backward on every rank) and dealt to the ranks in contiguous runs balanced
  by padded tokens (:func:`shard_chunks`; long and short completions spread by weight, not by
  count). Each rank accumulates the gradient of its run; rank 0 gathers the N gradients and
  adds them **in rank order**, steps the one optimizer (the Adam state lives on rank 0 only,
  and is checkpointed once, by rank 0), and broadcasts the new trainable weights. Summing in a
  fixed order, not with an all-reduce whose order depends on the algorithm, makes the step
  deterministic, and **exactly** the one-process step whenever every rank holds at most one
  micro-batch (the one-process run adds the same gradients in the same order); with several
  micro-batches per rank the partial sums are grouped differently, so the weights agree to
  float rounding (~1e-7 relative in fp32), not bit for bit. With fewer micro-batches than ranks
  some ranks have no share (nothing is split finer, which would change the sum).
- ``kl``: with ``kl_coef > 0`` each rank first computes the base model's log-probs of its run;
  rank 0 shifts the advantages with the batch-wide mean, as one process does.
- ``sync`` (after a checkpoint load): rank 0's weights to every rank; ``init``/``close``/``stop``.

Resume: only rank 0 holds state (weights, Adam, RNG, counters), so a run may be resumed with any
number of ranks, with ``tttd`` alone, or the other way round; it continues exactly when the old
and the new world sizes both give every rank at most one micro-batch (and up to float rounding
otherwise).

Channel: commands and replies go through the rendezvous' key-value store (torch's TCPStore) as
JSON (:mod:`tttd.policy.dp_wire`), never pickles; gradients and weights through the process
group's collectives (gloo on CPUs, NCCL on GPUs). The ranks trust each other and the rendezvous
network, as any torchrun job does: keep it on a private network. Every rank writes a heartbeat
into the store twice a second. Rank 0 waits for replies in short slices: a rank whose heartbeat
stops for ``DEAD_AFTER_S`` is reported dead, one that does not finish a command within
``TTTD_DP_TIMEOUT_S`` (default 1800 s) hung, a rank's own error is reported with its rank: each
as one line (:class:`DistributedError`), and the step in flight is not committed, so
``tttd resume`` continues exactly. Collectives start only once every rank has replied, so they
do not wait on a slow rank.

GPUs: each rank sees only its own GPU (``CUDA_VISIBLE_DEVICES`` is narrowed to the rank's local
index before torch starts), so the trainer and a vllm engine of that rank share it; vLLM runs
as one replica per rank (data parallel), see docs/backends.md for the rule against tensor
parallelism. This default (``parallel=replicate``) keeps the whole model on every rank;
``parallel=fsdp`` shards weights, gradients and Adam state with FSDP2 (:mod:`tttd.policy.fsdp`).
"""

from __future__ import annotations

import os
import threading
import time
from datetime import timedelta
from typing import Any

from tttd.faults import RunFault
from tttd.policy import dp_wire as wire

ENV_TIMEOUT = "TTTD_DP_TIMEOUT_S"
DEFAULT_TIMEOUT_S = 1800.0
HEARTBEAT_S = 0.5
DEAD_AFTER_S = float(os.environ.get("TTTD_DP_DEAD_AFTER_S", "10"))
POLL_S = 0.02


#: the run directory of this job (set by :mod:`tttd.__main__` from the command line), for the
#: resume hint of a :class:`DistributedError`
RUN_DIR: str | None = None


class DistributedError(RunFault):
    """A rank died, hung or failed, or a collective failed: one line naming the rank."""

    exit_code = 3


def _stopped(text: str) -> DistributedError:
    hint = f"`tttd resume {RUN_DIR}`" if RUN_DIR else "`tttd resume` on the run directory"
    return DistributedError(f"{text}; the step in flight was not committed: fix it, then {hint} continues "
                            "exactly (with torchrun or without)")


def world() -> tuple[int, int, int]:
    """(rank, world size, local rank) from torchrun's environment; (0, 1, 0) outside it."""
    try:
        return (int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1")),
                int(os.environ.get("LOCAL_RANK", "0")))
    except ValueError:
        return 0, 1, 0


def launched() -> bool:
    """True under torchrun (or any launcher setting the same variables) with more than one rank."""
    return world()[1] > 1


def timeout_s() -> float:
    raw = os.environ.get(ENV_TIMEOUT)
    if raw is None:
        return DEFAULT_TIMEOUT_S
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value > 0:
        from tttd.config import ConfigError

        raise ConfigError(f"{ENV_TIMEOUT} must be a number of seconds > 0, got {raw!r}")
    return value


def refuse_backend(backend: str) -> str | None:
    """Why ``backend`` cannot run under torchrun (None: it can). Only the local backend trains
    here; tinker and api send every step to a service, which does its own parallelism."""
    if not launched() or backend == "local":
        return None
    return (f"torchrun started {world()[1]} tttd processes but the {backend} backend cannot use them "
            f"(it {'trains on the service' if backend == 'tinker' else 'only samples from an endpoint'}); "
            "run it as plain `tttd` (data parallelism is for --backend local)")


def pin_gpu() -> None:
    """Before torch starts: this rank sees only its own GPU (the LOCAL_RANK-th visible one)."""
    _, _, local = world()
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is None:
        os.environ["CUDA_VISIBLE_DEVICES"] = str(local)
        return
    ids = [v for v in visible.split(",") if v.strip()]
    if local < len(ids):
        os.environ["CUDA_VISIBLE_DEVICES"] = ids[local]


# ------------------------------------------------------------------------------ the channel


class _Channel:
    """The store (commands, replies, heartbeats) and the process group of this job."""

    def __init__(self) -> None:
        import torch
        import torch.distributed as dist

        self.rank, self.size, _ = world()
        self.timeout = timeout_s()
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(0)  # pin_gpu left this rank one GPU
        try:
            dist.init_process_group(backend, timeout=timedelta(seconds=max(self.timeout, 60.0)))
        except Exception as exc:  # noqa: BLE001 - rendezvous failures come in many types
            raise DistributedError(f"rank {self.rank}: cannot join the {self.size}-rank job "
                                   f"({backend}): {_first_line(exc)}") from None
        self.backend = backend
        self.dist = dist
        self.store = dist.distributed_c10d._get_default_store()
        self.seq = 0
        self._stop = threading.Event()
        self._beats = 0
        self._seen: dict[int, tuple[str, float]] = {}
        threading.Thread(target=self._beat, name="tttd-dp-heartbeat", daemon=True).start()

    def _beat(self) -> None:
        while not self._stop.is_set():
            self._beats += 1
            try:
                self.store.set(f"tttd/hb/{self.rank}", str(self._beats))
            except Exception:  # noqa: BLE001 - the store went away: the job is ending
                return
            self._stop.wait(HEARTBEAT_S)

    def alive(self, rank: int) -> bool:
        """False once ``rank``'s heartbeat has not changed for ``DEAD_AFTER_S``."""
        try:
            value = self.store.get(f"tttd/hb/{rank}").decode() if self.store.check([f"tttd/hb/{rank}"]) else ""
        except Exception:  # noqa: BLE001
            return False
        now = time.monotonic()
        last = self._seen.get(rank)
        if last is None or last[0] != value:
            self._seen[rank] = (value, now)
            return True
        return now - last[1] < DEAD_AFTER_S

    def close(self) -> None:
        self._stop.set()


_CHANNEL: _Channel | None = None


def start() -> _Channel:
    """Join the job (every rank, before anything else happens in it)."""
    global _CHANNEL
    if _CHANNEL is None:
        _CHANNEL = _Channel()
    return _CHANNEL


def channel() -> _Channel | None:
    return _CHANNEL


def shutdown() -> None:
    """Rank 0, at exit: tell the other ranks to stop, then leave the process group."""
    global _CHANNEL
    ch = _CHANNEL
    if ch is None:
        return
    if ch.rank == 0:
        try:
            _post(ch, {"op": "stop"})
        except Exception:  # noqa: BLE001 - the store is gone: the others are gone too
            pass
    ch.close()
    try:
        ch.dist.destroy_process_group()
    except Exception:  # noqa: BLE001
        pass
    _CHANNEL = None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:300] if text else ''}"


def _post(ch: _Channel, command: dict[str, Any], shares: list[Any] | None = None) -> int:
    """Rank 0: publish a command (``shares[r]``: rank r's own payload) and return its number."""
    seq = ch.seq
    ch.seq += 1
    if shares is not None:
        for r in range(1, ch.size):
            ch.store.set(f"tttd/share/{seq}/{r}", wire.encode({"share": shares[r]}))
    ch.store.set(f"tttd/cmd/{seq}", wire.encode(command))
    return seq


def _reply(ch: _Channel, seq: int, body: dict[str, Any]) -> None:
    ch.store.set(f"tttd/rep/{seq}/{ch.rank}", wire.encode(body))


def wait_replies(ch: _Channel, seq: int, what: str, in_step: bool = True) -> list[dict[str, Any]]:
    """Rank 0: every other rank's reply to command ``seq`` (index r-1 for rank r), or a
    :class:`DistributedError` naming the rank that died, hung or failed."""
    stop = _stopped if in_step else DistributedError
    pending = set(range(1, ch.size))
    got: dict[int, dict[str, Any]] = {}
    t0 = time.monotonic()
    last_check = 0.0
    while pending:
        for r in sorted(pending):
            key = f"tttd/rep/{seq}/{r}"
            if ch.store.check([key]):
                body = wire.decode(ch.store.get(key))
                ch.store.delete_key(key)
                if "error" in body:
                    raise stop(f"rank {r} of {ch.size} failed while it {what}: {body['error']}")
                got[r] = body
                pending.discard(r)
        if not pending:
            break
        now = time.monotonic()
        if now - last_check >= HEARTBEAT_S:
            last_check = now
            dead = [r for r in sorted(pending) if not ch.alive(r)]
            if dead:
                raise stop(
                    f"rank {dead[0]} of {ch.size} stopped (no heartbeat for {DEAD_AFTER_S:g} s: killed or "
                    f"crashed) while it {what}")
            if now - t0 > ch.timeout:
                raise stop(
                    f"rank {min(pending)} of {ch.size} did not finish within {ch.timeout:g} s ({ENV_TIMEOUT}) "
                    f"while it {what}: it hangs (its heartbeat goes on)")
        time.sleep(POLL_S)
    return [got[r] for r in range(1, ch.size)]


def collective(ch: _Channel, what: str, fn, *args, **kwargs):
    """A collective op; a failure becomes one line naming the rank(s) that are gone, if any."""
    try:
        return fn(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - gloo/NCCL raise RuntimeError or DistBackendError
        dead: list[int] = []
        t0 = time.monotonic()  # a peer that just died still has a fresh heartbeat: wait for it to go stale
        while not dead and time.monotonic() - t0 < DEAD_AFTER_S + 2 * HEARTBEAT_S:
            dead = [r for r in range(ch.size) if r != ch.rank and not ch.alive(r)]
            time.sleep(HEARTBEAT_S)
        who = f"rank {dead[0]} of {ch.size} is gone; " if dead else ""
        raise _stopped(f"rank {ch.rank}: the {ch.backend} {what} failed ({who}{_first_line(exc)})") from None


# ------------------------------------------------------------------------------ sharding


def shard_chunks(weights: list[int], ranks: int) -> list[list[int]]:
    """Deal micro-batches (their padded token counts ``weights``, in batch order) to ``ranks``
    ranks as contiguous runs, minimising the largest run's tokens (binary search over the cap,
    greedy packing). Returns one list of micro-batch indices per rank (some empty when there
    are fewer micro-batches than ranks)."""
    if not weights:
        return [[] for _ in range(ranks)]

    def pack(cap: int) -> list[list[int]]:
        runs: list[list[int]] = [[]]
        load = 0
        for k, w in enumerate(weights):
            if runs[-1] and load + w > cap:
                runs.append([])
                load = 0
            runs[-1].append(k)
            load += w
        return runs

    lo, hi = max(weights), sum(weights)
    while lo < hi:
        mid = (lo + hi) // 2
        if len(pack(mid)) <= ranks:
            hi = mid
        else:
            lo = mid + 1
    runs = pack(lo)
    if len(runs) < ranks and len(weights) >= ranks:  # one micro-batch each at least: split the longest runs
        while len(runs) < ranks:
            k = max((i for i in range(len(runs)) if len(runs[i]) > 1), key=lambda i: sum(weights[j] for j in runs[i]))
            run = runs[k]
            cut = max(1, len(run) // 2)
            runs[k:k + 1] = [run[:cut], run[cut:]]
    return runs + [[] for _ in range(ranks - len(runs))]


# ------------------------------------------------------------------------------ tensors


def dtype_groups(params) -> list[list[int]]:
    """Indices of ``params`` grouped by dtype (one flat buffer per dtype), in first-seen order."""
    groups: dict[Any, list[int]] = {}
    for i, p in enumerate(params):
        groups.setdefault(p.dtype, []).append(i)
    return list(groups.values())


def flat_grads(params) -> list[Any]:
    """One flat gradient buffer per dtype group (zeros where a parameter got no gradient)."""
    import torch

    out = []
    for idx in dtype_groups(params):
        parts = []
        for i in idx:
            p = params[i]
            g = p.grad if p.grad is not None else torch.zeros_like(p)
            parts.append(g.detach().reshape(-1))
        out.append(torch.cat(parts))
    return out


def set_grads(params, flats) -> None:
    for idx, flat in zip(dtype_groups(params), flats):
        pos = 0
        for i in idx:
            p = params[i]
            n = p.numel()
            p.grad = flat[pos:pos + n].view_as(p).clone()
            pos += n


def flat_params(params) -> list[Any]:
    import torch

    return [torch.cat([params[i].detach().reshape(-1) for i in idx]) for idx in dtype_groups(params)]


def set_params(params, flats) -> None:
    import torch

    with torch.no_grad():
        for idx, flat in zip(dtype_groups(params), flats):
            pos = 0
            for i in idx:
                p = params[i]
                n = p.numel()
                p.copy_(flat[pos:pos + n].view_as(p))
                pos += n


def broadcast_params(ch: _Channel, params, what: str) -> None:
    """Rank 0's trainable weights to every rank (exact copies)."""
    flats = flat_params(params)
    for flat in flats:
        collective(ch, f"broadcast of the weights ({what})", ch.dist.broadcast, flat, src=0)
    if ch.rank != 0:
        set_params(params, flats)
