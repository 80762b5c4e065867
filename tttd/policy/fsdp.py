"""Sharded weights under torchrun: FSDP2 ``fully_shard`` for the local backend (``parallel=fsdp``).

    torchrun --nproc-per-node N -m tttd run TASK --backend-option parallel=fsdp ...

The default data parallelism (``parallel=replicate``, :mod:`tttd.policy.distributed`) keeps the
whole model, its trainable weights and gradients on every rank and the one Adam state on rank 0.
With ``parallel=fsdp`` every rank applies ``torch.distributed.fsdp.fully_shard`` to each decoder
layer and to the rest of the model (embeddings, final norm, output layer: one root group), so each
rank holds 1/N of every weight (base and LoRA, or all weights under full fine-tuning), of every
gradient and of the Adam state; a layer's weights are all-gathered just before it computes and
freed after. This is for full fine-tuning (the gradients and the two Adam moments, in the
weights' dtype, are 3x the weights and dominate) and for bases whose *training* does not fit one
GPU.

What every rank does in step with the others (an all-gather of a layer waits for every rank, so
the command flow of :mod:`tttd.policy.dp_coordinator` is kept, and every rank takes part in each
collective in the same order):

- **train**: the step's micro-batches are dealt as with ``replicate`` (contiguous runs balanced by
  padded tokens, one process's micro-batches); every rank runs as many forward/backward rounds as
  the longest run has micro-batches, a rank with fewer runs rounds on a one-token datum whose mask
  is 0 (its gradient is exactly 0, which adds nothing). Gradients accumulate locally and are
  reduce-scattered once, after the last round; FSDP averages them (gloo has no pre-multiplied sum,
  so ``set_gradient_divide_factor(1)`` is not usable there), and tttd multiplies them back by N:
  the loss is a token *sum*, as in one process. Then every rank clips (the norm is all-reduced)
  and steps Adam on its own shard.
- **sample** (hf engine): every rank un-shards the whole model (all-gathers every group, keeps it
  through ``generate``), samples its share of the groups as with ``replicate``, and re-shards.
  So **sampling holds the whole model on every rank**: the hf engine saves no memory while it
  samples. The vllm engine is refused with ``parallel=fsdp`` (it publishes the adapter from the
  trainer's weights, which are shards here).
- **save / load** (checkpoints): the files are exactly ``replicate``'s and one process's (the
  adapter or model as peft/safetensors write it, the optimizer state keyed by parameter index):
  rank 0 writes them from the all-gathered weights and Adam state; on load rank 0
  reads them and scatters each rank's shard. So a run may be resumed with any world size, with
  ``parallel=fsdp`` or without, or by one process (where ``parallel=fsdp`` shards nothing).

Exactness: with 2 ranks, each rank holding at most one micro-batch, the step is bit-equal to one
process: the reduce-scatter adds two gradients (a + b is one float either way), FSDP's division
by 2 and tttd's multiplication by 2 are exact in binary floating point, and Adam is elementwise,
so the shards are the one-process weights' slices. ``grad_norm`` is the norm of the shards'
norms, which may differ from one process's in the last bits (it does not change the weights
unless ``max_grad_norm`` clips). With more ranks the reduction order is gloo's/NCCL's, and with a
world size that is not a power of two the division is not exact: weights agree to float
rounding. Not supported with ``parallel=fsdp``: the vllm engine, and the KL-to-base term under
full fine-tuning (its frozen reference copy would be a whole model per rank).
"""

from __future__ import annotations

import contextlib
from typing import Any, Sequence

PARALLEL = ("replicate", "fsdp")


def check_parallel(parallel: str, engine: Any) -> Any:
    """The ``parallel`` option as it enters the local backend (one-line ValueError); returns the
    engine to build (``auto`` is ``hf`` under fsdp)."""
    if parallel not in PARALLEL:
        raise ValueError(f"unknown parallel {parallel!r}; choose one of {', '.join(PARALLEL)}")
    if parallel == "fsdp" and engine == "auto":
        return "hf"
    if parallel == "fsdp" and engine != "hf" and isinstance(engine, str):
        raise ValueError(f"parallel=fsdp samples with the hf engine only, not {engine!r} (the vllm engine "
                         "publishes the adapter from the trainer's weights, which fsdp shards)")
    return engine


def _decoder_layers(causal_lm) -> list:
    decoder = causal_lm.get_decoder() if hasattr(causal_lm, "get_decoder") else causal_lm.model
    layers = getattr(decoder, "layers", None)
    if layers is None:
        raise ValueError(f"parallel=fsdp: cannot find the decoder layers of {type(causal_lm).__name__}")
    return list(layers)


def _root_module(policy: Any):
    import torch

    class Root(torch.nn.Module):
        """The whole model as one module whose forward is the trainer's log-prob computation, so
        FSDP's root hooks gather the embeddings and output layer around it (the trainer calls
        the decoder and the output layer separately, which would bypass the model's own root)."""

        def __init__(self) -> None:
            super().__init__()
            self.model = policy.model
            object.__setattr__(self, "_policy", policy)

        def forward(self, batch: Sequence[Any], idx: list[int]):
            return self._policy._token_logprobs(self._policy.causal_lm(), batch, idx)

    return Root()


class Sharded:
    """The FSDP2 state of one rank's policy (built in :class:`LocalPolicy.__init__`, before the
    optimizer: ``fully_shard`` replaces the parameters by sharded DTensors)."""

    def __init__(self, policy: Any) -> None:
        import torch.distributed as dist
        from torch.distributed.device_mesh import init_device_mesh
        from torch.distributed.fsdp import FSDPModule, fully_shard

        self.world = dist.get_world_size()
        self.rank = dist.get_rank()
        self.mesh = init_device_mesh(policy.device.type, (self.world,))
        for layer in _decoder_layers(policy.causal_lm()):
            fully_shard(layer, mesh=self.mesh)
        self.root = _root_module(policy)
        fully_shard(self.root, mesh=self.mesh)
        # the root must be initialised first: sampling runs the layers without the root's forward
        self.root._get_fsdp_state()._lazy_init()
        self.groups = [m for m in self.root.modules() if isinstance(m, FSDPModule)]
        self.policy = policy

    # ------------------------------------------------------------------ whole model

    @contextlib.contextmanager
    def gathered(self):
        """Every rank: the whole model un-sharded inside (sampling, saving, loading)."""
        for m in self.groups:
            m.set_reshard_after_forward(False, recurse=False)
            m.unshard()
        try:
            yield
        finally:
            for m in self.groups:
                m.reshard()
                m.set_reshard_after_forward(m is not self.root, recurse=False)

    # ------------------------------------------------------------------ training

    def accumulate(self, data: Sequence[Any], config: Any, rounds: int, budget: int) -> dict[str, float]:
        """Every rank: zero the gradients, run ``rounds`` forward/backward rounds over this
        rank's micro-batches (then zero-mask rounds), reduce-scatter once, and scale the
        averaged gradient back to the sum. Returns this rank's loss/token sums."""
        import torch

        from tttd.losses import importance_sampling_loss
        from tttd.types import TrainDatum

        p = self.policy
        data = list(data)
        chunks = p._micro_batches(data, budget) if data else []
        if len(chunks) > rounds:
            raise ValueError(f"parallel=fsdp: {len(chunks)} micro-batches for {rounds} rounds")
        pad = p.tokenizer.pad_token_id
        dummy = TrainDatum([pad], [pad], [0.0], [0.0], [0.0])
        p.optimizer.zero_grad(set_to_none=True)
        dev = p.device
        loss_sum = diff_sum = tokens = 0.0
        p.model.train()
        try:
            for r in range(rounds):
                for m in self.groups:
                    m.set_requires_gradient_sync(r == rounds - 1, recurse=False)
                part = [data[k] for k in chunks[r]] if r < len(chunks) else [dummy]
                logq = torch.tensor([v for d in part for v in d.logprobs], dtype=torch.float32, device=dev)
                adv = torch.tensor([v for d in part for v in d.advantages], dtype=torch.float32, device=dev)
                ones = torch.tensor([m for d in part for m in d.mask_or_ones()], dtype=torch.float32, device=dev)
                logp = self.root(part, list(range(len(part)))).float()
                loss = importance_sampling_loss(logp, logq, adv, ones, config.clip)
                loss.backward()
                if r < len(chunks):
                    loss_sum += float(loss.detach())
                    diff_sum += float(((logq - logp.detach()) * ones).sum())
                    tokens += float(ones.sum())
        finally:
            p.model.train(False)
            for m in self.groups:
                m.set_requires_gradient_sync(True, recurse=False)
        with torch.no_grad():
            for param in p.params:
                if param.grad is not None:
                    param.grad.mul_(self.world)
        return {"loss": loss_sum, "tokens": tokens, "kl_sample_train_sum": diff_sum}

    def base_logprobs(self, data: Sequence[Any], rounds: int, budget: int) -> list[float]:
        """Every rank: the base model's log-probs of this rank's data (LoRA off), in ``rounds``
        forwards (zero-mask rounds past this rank's micro-batches, their values dropped)."""
        import torch

        from tttd.types import TrainDatum

        p = self.policy
        if p.full_finetune:
            raise ValueError("parallel=fsdp does not support the KL-to-base term (kl_coef > 0) under full fine-tuning")
        data = list(data)
        chunks = p._micro_batches(data, budget) if data else []
        pad = p.tokenizer.pad_token_id
        out: list[float] = []
        flags = [param.requires_grad for param in p.params]
        try:
            with torch.no_grad(), p.model.disable_adapter():
                for r in range(rounds):
                    part = [data[k] for k in chunks[r]] if r < len(chunks) else [TrainDatum([pad], [pad], [0.0], [0.0], [0.0])]
                    values = self.root(part, list(range(len(part)))).float().tolist()
                    if r < len(chunks):
                        out.extend(values)
        finally:
            # peft re-enables the adapter by module; under fully_shard it left the output layer's
            # LoRA frozen (measured: 42 of 44 trainable tensors after the first KL step)
            for param, flag in zip(p.params, flags):
                param.requires_grad_(flag)
        return out

    def optimizer_step(self, config: Any) -> float:
        """Every rank: clip (the norm is all-reduced over the shards) and step Adam on its shard."""
        import math

        import torch

        p = self.policy
        for group in p.optimizer.param_groups:
            group["lr"] = config.learning_rate
        cap = p.max_grad_norm if p.max_grad_norm is not None else math.inf
        norm = torch.nn.utils.clip_grad_norm_(p.params, cap)
        if hasattr(norm, "full_tensor"):
            norm = norm.full_tensor()
        p.optimizer.step()
        p.optimizer.zero_grad(set_to_none=True)
        return float(norm)

    # ------------------------------------------------------------------ checkpoints

    def full_optimizer_state(self) -> dict[str, Any]:
        """Every rank: the Adam state with each shard all-gathered, keyed as one process keys it
        (rank 0 writes it)."""
        opt = self.policy.optimizer
        state: dict[int, dict[str, Any]] = {}
        for i, param in enumerate(self.policy.params):
            entry = opt.state.get(param)
            if not entry:
                continue
            state[i] = {k: (v.full_tensor() if hasattr(v, "full_tensor") else v).detach().clone()
                        for k, v in sorted(entry.items())}
        groups = opt.state_dict()["param_groups"]
        return {"state": state, "param_groups": groups}

    def scatter(self, full, like):
        """Every rank: rank 0's full tensor ``full`` (others: None) as this rank's shard of ``like``."""
        import torch
        from torch.distributed.tensor import distribute_tensor

        if not hasattr(like, "device_mesh"):  # a plain tensor (Adam's step count): a broadcast
            dev = self.policy.device  # (NCCL sends device tensors only)
            t = full.to(dev, like.dtype) if self.rank == 0 else torch.empty(like.shape, dtype=like.dtype, device=dev)
            torch.distributed.broadcast(t, src=0)
            return t.to(like.device)
        shape = like.shape
        src = full.to(like.device, like.dtype) if self.rank == 0 else torch.empty(shape, dtype=like.dtype, device=like.device)
        return distribute_tensor(src, like.device_mesh, like.placements, src_data_rank=0).to_local()

    def load_full(self, weights: dict[str, Any] | None, opt_state: dict[str, Any] | None) -> None:
        """Every rank: rank 0's full trainable weights (by parameter name) and Adam state (by
        index) into each rank's shards. Only tensors cross between the ranks (no pickles): which
        parameters have Adam state travels as a 0/1 tensor; the other ranks keep their own
        ``param_groups`` (built the same way; the learning rate is set before every step)."""
        import torch

        p = self.policy
        names = {id(param): name for name, param in p.model.named_parameters()}
        if self.rank == 0:
            assert weights is not None and opt_state is not None
        with torch.no_grad():
            for param in p.params:
                full = weights[names[id(param)]] if self.rank == 0 else None
                param.to_local().copy_(self.scatter(full, param))
        has = torch.zeros(len(p.params), dtype=torch.int64)
        if self.rank == 0:
            for i in opt_state["state"]:
                has[int(i)] = 1
        has = has.to(p.device)
        torch.distributed.broadcast(has, src=0)
        has = has.cpu()
        opt = p.optimizer
        groups = opt_state["param_groups"] if self.rank == 0 else opt.state_dict()["param_groups"]
        sd: dict[str, Any] = {"state": {}, "param_groups": groups}
        for i in [k for k in range(len(p.params)) if has[k]]:
            param = p.params[i]
            entry = opt_state["state"][i] if self.rank == 0 else {}
            step = self.scatter(entry.get("step"), torch.zeros((), dtype=torch.float32))
            sd["state"][i] = {"step": step,
                              "exp_avg": self._dt(entry.get("exp_avg"), param),
                              "exp_avg_sq": self._dt(entry.get("exp_avg_sq"), param)}
        opt.load_state_dict(sd)

    def _dt(self, full, like):
        from torch.distributed.tensor import DTensor

        local = self.scatter(full, like)
        return DTensor.from_local(local, like.device_mesh, like.placements, run_check=False,
                                  shape=like.shape, stride=like.stride())


def shard(policy: Any, parallel: str) -> Sharded | None:
    """``fully_shard`` this rank's model when ``parallel=fsdp`` under torchrun with 2+ ranks; None
    otherwise (one process shards nothing: the same run, resumed alone)."""
    from tttd.policy.distributed import channel

    ch = channel()
    if parallel != "fsdp" or ch is None or ch.size < 2:
        return None
    return Sharded(policy)


def save_sharded(policy: Any, path: Any) -> None:
    """Every rank: all-gather the weights and the Adam state; rank 0 (``path`` set) writes the
    checkpoint :func:`tttd.policy.local_checkpoint.save_checkpoint` writes for one process."""
    from tttd.policy.local_checkpoint import save_checkpoint

    s = policy.sharded
    opt_state = s.full_optimizer_state()
    every = not policy.full_finetune
    weights = {name: (param.full_tensor() if hasattr(param, "full_tensor") else param).detach()
               for name, param in policy.model.named_parameters() if param.requires_grad or not every}
    if s.rank == 0:
        save_checkpoint(policy, path, weights=weights, optimizer_state=opt_state)


def load_sharded(policy: Any, checkpoint: dict[str, Any] | None) -> None:
    """Every rank: rank 0's ``checkpoint`` (:func:`tttd.policy.local_checkpoint.read_checkpoint`,
    None on the others) into each rank's shards; rank 0 also takes its counters and RNG."""
    from tttd.policy.local_checkpoint import apply_counters

    s = policy.sharded
    s.load_full(checkpoint["weights"] if checkpoint else None, checkpoint["optimizer"] if checkpoint else None)
    if checkpoint:
        apply_counters(policy, checkpoint["state"], checkpoint["rng"])
