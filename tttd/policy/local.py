"""The local policy backend: transformers + peft on a CPU or one GPU.

Sampling (:meth:`LocalPolicy.sample`) is done by the policy's engine (:mod:`tttd.policy.engines`:
``hf``, transformers' ``generate`` in this model, or ``vllm`` beside it); both render prompts with
the tokenizer's chat template and cut completions the same way (:mod:`tttd.policy.model_io`). A
completion ends at the eos token(s) (``<|im_end|>`` for ChatML models) or at the first
``params.stop`` string, else after ``max_tokens`` (``stop_reason="length"``). ``Sample.logprobs``
are the sampler's log-probabilities of the *tempered* distribution (at temperature 1, the
policy's; the paper samples at temperature 1).

Training (:meth:`LocalPolicy.train_step`) is one optimizer step of the token-summed
importance-sampling loss of :mod:`tttd.losses` (optionally PPO-clipped), with gradient
accumulation over micro-batches of about ``micro_batch_tokens`` padded tokens. Log-probs of the
target tokens are computed from the final hidden states in chunks of 256 positions through the
output layer (under activation checkpointing), so no fp32 full-vocabulary tensor for the whole
batch ever exists (DESIGN.md: that tensor dominated peak memory). Optional KL to the base model
(``kl_coef > 0``): base log-probs are computed with the LoRA adapter disabled (a frozen copy of the
initial weights under full fine-tuning) and folded in with :func:`tttd.losses.kl_advantage_shift`.
Adam(betas=(0.9, 0.95), eps=1e-8, no weight decay) as in the paper preset; no gradient clipping
unless ``max_grad_norm`` is set.

Deviations from the paper (which trains gpt-oss-120b through Tinker): LoRA ``alpha`` defaults to
32 (Tinker's fixed alpha, so rank 32 has scale 1); the trainer recomputes log-probs at
temperature 1, so sampling at another temperature makes the importance ratio off-policy by design.
Determinism: prompt i samples from its own seed, ``params.seeds[i]`` (else derived from
``params.seed``, else from the policy seed and a checkpointed call counter), and sample j of it
from its own generator (``LogprobRecorder``), so a group does not depend on the batch it shares or
the batch size, and save/load/continue reproduces the same tokens on the same hardware.

Memory: ``gradient_checkpointing`` (default on for CUDA) recomputes each decoder layer in the
backward pass; the model is in ``train()`` mode only around the training forward/backward (the
layers are checkpointed only then) and dropout is set to 0 everywhere, so training mode computes
the sampler's log-probs. ``train_unembed`` (default True, as Tinker) adds a LoRA on the output
layer, which peft's ``all-linear`` leaves out. ``chat_template_kwargs`` reach the chat template.

Data parallel (``torchrun -m tttd``): rank 0's policy hands sampling and gradient accumulation to
its coordinator (``self.dp``, :mod:`tttd.policy.dp_coordinator`); see :mod:`tttd.policy.distributed`.
``parallel="fsdp"`` shards the model over the ranks with FSDP2 (``self.sharded``, :mod:`tttd.policy.fsdp`).
"""

from __future__ import annotations

import copy
import math
import os
import time
import warnings
from typing import Sequence

import torch
from transformers import AutoModelForCausalLM
from transformers.utils import logging as hf_logging

# Library chatter that says nothing to a tttd user: per-shard progress bars on every load/save,
# and a deprecation notice peft triggers inside transformers.
hf_logging.disable_progress_bar()
warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
# A LoRA on a tied output layer (train_unembed) changes the output only, which is what we want.
warnings.filterwarnings("ignore", message=".*tie_word_embeddings=True.*tied layer is part of the adapter.*")

from tttd.losses import importance_sampling_loss, kl_advantage_shift
from tttd.policy import SamplingParams, TokenUsage, TrainConfig
from tttd.policy.engines import Engine, choose_engine, make_engine
from tttd.policy.local_checkpoint import load_checkpoint, save_checkpoint
from tttd.policy.local_setup import enable_checkpointing, lora_targets, no_dropout
from tttd.policy.model_io import eos_token_ids, finish_sample, render_chat
from tttd.policy.train_batches import check_batch, micro_batches
from tttd.types import Message, Sample, TrainDatum

LOGPROB_CHUNK = 256  # positions per output-layer chunk in the trainer


def resolve_model(model: str | os.PathLike) -> tuple[str, bool]:
    """(path or hub name, local_files_only): ``tiny``/``small`` build (or reuse) a local model,
    ``smollm2`` is the installed real model, a name that is nowhere fails fast
    (:func:`tttd.policy.models.resolve`)."""
    from tttd.policy.models import resolve

    return resolve(model)


class LocalPolicy:
    """A trainable policy on this machine (see the module docstring).

    ``model``: a Hugging Face folder, a hub name (needs the weights in the local HF cache or a
    network), ``"tiny"``/``"small"`` (built locally by :mod:`tttd.policy.tiny`) or a named real
    model installed by ``tttd models install`` (``"smollm2"``, :mod:`tttd.policy.models`).
    ``lora_rank``/``lora_alpha``/``target_modules``: the adapter (alpha defaults to 32, Tinker's
    convention). ``full_finetune``: train every weight instead. ``device``: ``"cuda"``/``"cpu"``
    (default: cuda if available); ``dtype``: default bf16 on cuda, fp32 on cpu.
    ``max_batch_size``: most sequences per ``generate`` call (default: from free GPU memory, 256 on
    CPU). ``micro_batch_tokens``: overrides ``TrainConfig.micro_batch_tokens`` when set.
    ``learning_rate``: used when a ``TrainConfig`` is not given to :meth:`train_step`.
    ``parallel``: under torchrun, ``replicate`` (every rank holds the model) or ``fsdp`` (FSDP2).
    """

    trainable = True
    dp = None  # the data-parallel coordinator on rank 0 under torchrun (tttd.policy.dp_coordinator)

    def __init__(
        self,
        model: str | os.PathLike = "tiny",
        lora_rank: int = 32,
        lora_alpha: float | None = None,
        target_modules: str | list[str] = "all-linear",
        full_finetune: bool = False,
        device: str | None = None,
        dtype: str | torch.dtype | None = None,
        seed: int = 0,
        learning_rate: float | None = None,
        max_batch_size: int | None = None,
        micro_batch_tokens: int | None = None,
        max_grad_norm: float | None = None,
        gradient_checkpointing: bool | None = None,
        train_unembed: bool = True,
        chat_template_kwargs: dict | None = None,
        engine: "str | Engine" = "hf",
        engine_options: dict | None = None,
        parallel: str = "replicate",
    ) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        built_with = {k: v for k, v in locals().items() if k not in ("self", "AutoModelForCausalLM", "AutoTokenizer")}
        if lora_rank < 1 and not full_finetune:
            raise ValueError(f"lora_rank must be >= 1, got {lora_rank}")
        from tttd.policy.fsdp import check_parallel, shard

        engine = check_parallel(parallel, engine)
        self.parallel = parallel
        if max_batch_size is not None and max_batch_size < 1:
            raise ValueError(f"max_batch_size must be >= 1, got {max_batch_size}")
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        if dtype is None:
            dtype = torch.bfloat16 if self.device.type == "cuda" else torch.float32
        elif isinstance(dtype, str):
            names = {"bf16": torch.bfloat16, "bfloat16": torch.bfloat16, "fp16": torch.float16,
                     "float16": torch.float16, "fp32": torch.float32, "float32": torch.float32}
            if dtype not in names:
                raise ValueError(f"unknown dtype {dtype!r}; choose one of {', '.join(names)}")
            dtype = names[dtype]
        self.dtype = dtype
        self.seed = seed
        self.full_finetune = full_finetune
        self.lora_rank = lora_rank
        self.lora_alpha = 32.0 if lora_alpha is None else float(lora_alpha)
        self.learning_rate = learning_rate
        self.max_batch_size = max_batch_size
        if micro_batch_tokens is None:  # a named real model's own chunk (tttd.policy.models)
            from tttd.policy.models import policy_defaults

            micro_batch_tokens = policy_defaults(model).get("micro_batch_tokens")  # type: ignore[assignment]
        self.micro_batch_tokens = micro_batch_tokens
        self.max_grad_norm = max_grad_norm
        if chat_template_kwargs is not None and not isinstance(chat_template_kwargs, dict):
            raise ValueError(f"chat_template_kwargs must be a mapping, got {chat_template_kwargs!r}")
        self.chat_template_kwargs = dict(chat_template_kwargs or {})
        self.train_unembed = bool(train_unembed)
        # default: on for CUDA (real models: 290 KiB per token per layer at the 8B shape without
        # it), off on CPU (tiny models, where recomputing only costs time)
        self.gradient_checkpointing = (self.device.type == "cuda") if gradient_checkpointing is None \
            else bool(gradient_checkpointing)
        self.model_name = str(model)
        path, local_only = resolve_model(model)
        self.model_path = path
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=local_only)
            base = AutoModelForCausalLM.from_pretrained(path, dtype=dtype, local_files_only=local_only)
        except OSError as exc:
            raise ValueError(f"cannot load model {path!r}: {exc}") from exc
        if self.tokenizer.chat_template is None:
            raise ValueError(f"model {path!r} has no chat template; tttd renders prompts with it")
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.tokenizer.padding_side = "left"
        self.eos_ids = eos_token_ids(base, self.tokenizer)
        base.to(self.device)
        torch.manual_seed(seed)  # LoRA A matrices are random: make them reproducible
        if full_finetune:
            self.model = base
            self._ref_model = None  # frozen copy for KL, made on first use
        else:
            from peft import LoraConfig, get_peft_model

            config = LoraConfig(
                r=lora_rank,
                lora_alpha=self.lora_alpha,
                lora_dropout=0.0,
                target_modules=lora_targets(base, target_modules, self.train_unembed),
                task_type="CAUSAL_LM",
                bias="none",
            )
            self.model = get_peft_model(base, config)
        if full_finetune and not self.train_unembed:
            base.get_output_embeddings().weight.requires_grad_(False)  # (tied: the embedding too)
        no_dropout(self.model)
        if self.gradient_checkpointing:
            enable_checkpointing(self.causal_lm())
        # eval() while sampling; train() only around the training forward/backward (transformers
        # checkpoints layers only in training mode). Dropout is 0 either way (no_dropout), so the
        # trainer's log-probs equal the sampler's.
        self.model.eval()
        self.sharded = shard(self, parallel)  # parallel=fsdp under torchrun: FSDP2 (tttd.policy.fsdp)
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.Adam(
            self.params, lr=learning_rate or TrainConfig().learning_rate, betas=(0.9, 0.95), eps=1e-8
        )
        self.step = 0
        self.sample_calls = 0
        self._usage = TokenUsage()
        self._init_engine(engine, engine_options)
        from tttd.policy.dp_coordinator import attach

        self.dp = attach(self, built_with)  # rank 0 under torchrun: the other ranks' coordinator (None otherwise)

    def _init_engine(self, engine: "str | Engine", options: dict | None) -> None:
        """The sampling engine (:mod:`tttd.policy.engines`): ``hf``, ``vllm``, ``auto``, or an
        engine instance to attach (shared, not closed with this policy)."""
        self._owns_engine = isinstance(engine, str)
        if not self._owns_engine:
            self.engine_name, self.engine_reason = engine.name, "given"
            engine.attach(self)  # type: ignore[union-attr]
            self.engine = engine
            return
        self.engine_name, self.engine_reason = choose_engine(
            engine, full_finetune=self.full_finetune, model_path=self.model_path,
            device=self.device.type, train_unembed=self.train_unembed and not self.full_finetune)
        self.engine = make_engine(self.engine_name, self, options)

    def engine_info(self) -> dict:
        """The sampling engine, its versions and settings, and why it was chosen (run records)."""
        fmt = self.answer_format()  # where a forced final answer would act (tttd.policy.forced_answer)
        return {**self.engine.info(), "reason": self.engine_reason, "answer_format": fmt.name if fmt else None,
                **({"data_parallel": self.dp.info()} if self.dp else {})}

    # ------------------------------------------------------------------------------ helpers

    def causal_lm(self):
        """The transformers model under the adapter (the trainer's forward; ``config`` has the shapes)."""
        return self.model if self.full_finetune else self.model.get_base_model()

    _causal_lm = causal_lm

    def render(self, messages: list[Message]) -> list[int]:
        """Token ids of a chat prompt, rendered with the chat template plus the generation prompt."""
        return render_chat(self.tokenizer, messages, self.chat_template_kwargs)

    def finish(self, prompt: list[int], new: list[int], logprobs: list[float],
               params: SamplingParams) -> Sample:
        """Cut a generated row at its eos token or first stop string (:func:`finish_sample`)."""
        return finish_sample(self.tokenizer, self.eos_ids, prompt, new, logprobs, params)

    _finish = finish

    def count_sampling(self, prompt_tokens: int, sampled_tokens: int) -> None:
        """One sampling request's tokens, for :meth:`usage` (called by the engines)."""
        self._usage.requests += 1
        self._usage.prompt_tokens += prompt_tokens
        self._usage.sampled_tokens += sampled_tokens

    # ------------------------------------------------------------------------------ sampling

    def sample(
        self, prompts: list[list[Message]], n: int, params: SamplingParams
    ) -> list[list[Sample]]:
        """``n`` completions per chat prompt from the sampling engine (:mod:`tttd.policy.engines`)."""
        return self.dp.sample(prompts, n, params) if self.dp else self.engine.sample(prompts, n, params)

    def answer_format(self):
        """The chat template's thinking/answer split (:mod:`tttd.policy.forced_answer`), or None."""
        from tttd.policy.forced_answer import detect

        return detect(self.tokenizer.chat_template)

    def context_window(self) -> int | None:
        return getattr(self.causal_lm().config, "max_position_embeddings", None)

    def force_answers(self, groups: list[list[Sample]], seeds: list[int], sample_more) -> list[list[Sample]]:
        """Phase 2 of the forced final answer for samples out of budget (any engine)."""
        from tttd.policy.forced_answer import continue_samples

        tok = self.tokenizer
        return continue_samples(
            groups, seeds, self.answer_format(),
            encode=lambda text: list(tok(text, add_special_tokens=False)["input_ids"]),
            decode=lambda ids: tok.decode(ids, skip_special_tokens=False),
            text_of=lambda ids: tok.decode(ids, skip_special_tokens=False),
            sample_more=sample_more)

    # ------------------------------------------------------------------------------ training

    _check = staticmethod(check_batch)  # a batch the trainer can take (tttd.policy.train_batches)
    _micro_batches = staticmethod(micro_batches)  # also used by the data-parallel ranks

    def _token_logprobs(self, model, batch: Sequence[TrainDatum], idx: list[int]) -> torch.Tensor:
        """Log-probs of the completion tokens of ``batch[idx]``, concatenated (1-D, in order)."""
        from torch.utils.checkpoint import checkpoint

        seqs = [batch[k].prompt_tokens + batch[k].tokens for k in idx]
        width = max(len(s) for s in seqs)
        pad_id = self.tokenizer.pad_token_id
        ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        for r, s in enumerate(seqs):
            ids[r, : len(s)] = torch.tensor(s, dtype=torch.long)
            mask[r, : len(s)] = 1
        ids, mask = ids.to(self.device), mask.to(self.device)
        decoder = model.get_decoder() if hasattr(model, "get_decoder") else model.model
        hidden = decoder(input_ids=ids, attention_mask=mask, use_cache=False).last_hidden_state
        rows, cols, targets = [], [], []
        for r, k in enumerate(idx):
            p, t = len(batch[k].prompt_tokens), len(batch[k].tokens)
            rows.append(torch.full((t,), r, dtype=torch.long))
            cols.append(torch.arange(p - 1, p + t - 1))
            targets.append(torch.tensor(batch[k].tokens, dtype=torch.long))
        row, col = torch.cat(rows).to(self.device), torch.cat(cols).to(self.device)
        target = torch.cat(targets).to(self.device)
        h = hidden[row, col]  # (N, hidden): only positions that predict completion tokens
        head = model.get_output_embeddings()
        scale = getattr(model.config, "logit_scale", None)
        softcap = getattr(model.config, "final_logit_softcapping", None)

        def chunk_logprobs(hc: torch.Tensor, tc: torch.Tensor) -> torch.Tensor:
            logits = head(hc).float()
            if scale is not None:
                logits = logits * scale
            if softcap is not None:
                logits = torch.tanh(logits / softcap) * softcap
            return torch.log_softmax(logits, dim=-1).gather(1, tc[:, None]).squeeze(1)

        parts = []
        for s in range(0, h.shape[0], LOGPROB_CHUNK):
            hc, tc = h[s : s + LOGPROB_CHUNK], target[s : s + LOGPROB_CHUNK]
            if torch.is_grad_enabled() and hc.requires_grad:
                parts.append(checkpoint(chunk_logprobs, hc, tc, use_reentrant=False))
            else:
                parts.append(chunk_logprobs(hc, tc))
        return torch.cat(parts)

    @torch.no_grad()
    def _base_logprobs(self, batch: Sequence[TrainDatum], chunks: list[list[int]]) -> torch.Tensor:
        """Completion-token log-probs under the base model (adapter off / initial weights)."""
        if self.full_finetune:
            if self._ref_model is None:
                self._ref_model = self._initial_weights()
            return torch.cat([self._token_logprobs(self._ref_model, batch, c) for c in chunks])
        with self.model.disable_adapter():
            return torch.cat([self._token_logprobs(self.causal_lm(), batch, c) for c in chunks])

    def _initial_weights(self):
        """The KL reference of full fine-tuning: the initial weights, frozen. Before any step they
        are the current ones (a copy); after a resume (issue 32: it used to copy the trained
        weights) they are read again from the model's files, as at the start."""
        if self.step == 0:
            return copy.deepcopy(self.model).requires_grad_(False)
        path, local_only = resolve_model(self.model_name)
        ref = AutoModelForCausalLM.from_pretrained(path, dtype=self.dtype, local_files_only=local_only)
        no_dropout(ref)
        return ref.to(self.device).eval().requires_grad_(False)

    def logprobs(self, batch: Sequence[TrainDatum]) -> list[list[float]]:
        """Current policy log-probs of each datum's completion tokens (no gradient)."""
        self._check(batch)
        budget = self.micro_batch_tokens or TrainConfig().micro_batch_tokens
        out: list[list[float]] = []
        with torch.no_grad():
            for c in self._micro_batches(batch, budget):
                flat = self._token_logprobs(self.causal_lm(), batch, c).float().cpu().tolist()
                pos = 0
                for k in c:
                    out.append(flat[pos : pos + len(batch[k].tokens)])
                    pos += len(batch[k].tokens)
        return out

    def train_step(self, batch: list[TrainDatum], config: TrainConfig | None = None) -> dict[str, float]:
        """One optimizer step on ``batch`` (see the module docstring); returns metrics: ``loss``
        (token-summed), ``tokens``, ``kl_sample_train`` (mean logq - logp before the step),
        ``grad_norm``, ``micro_batches``, ``seconds`` and, with ``kl_coef > 0``, ``kl_policy_base``."""
        config = config or TrainConfig(learning_rate=self.learning_rate or TrainConfig().learning_rate)
        t0 = time.perf_counter()
        self.engine.before_train()  # vLLM on the same GPU sleeps (KV cache freed)
        metrics = self.dp.accumulate(batch, config) if self.dp else self.accumulate_gradients(batch, config)
        for group in self.optimizer.param_groups:
            group["lr"] = config.learning_rate
        norm_cap = self.max_grad_norm if self.max_grad_norm is not None else math.inf
        if self.sharded:  # every rank clips and steps its own shard
            metrics["grad_norm"] = self.dp.collective("optimizer step", self.sharded.optimizer_step, config)
        else:
            metrics["grad_norm"] = float(torch.nn.utils.clip_grad_norm_(self.params, norm_cap))
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1
        if self.dp:
            self.dp.after_step()  # the new weights to the other ranks
        self.engine.weights_updated()  # vLLM: the new adapter under a new name
        self._usage.trained_tokens += sum(len(d.prompt_tokens) + len(d.tokens) for d in batch)
        metrics["seconds"] = time.perf_counter() - t0
        return metrics

    def accumulate_gradients(self, batch: Sequence[TrainDatum], config: TrainConfig) -> dict[str, float]:
        """Zero the gradients and fill them with the batch's loss gradient (no optimizer step)."""
        self._check(batch)
        budget = self.micro_batch_tokens or config.micro_batch_tokens
        if budget < 1:
            raise ValueError(f"micro_batch_tokens must be >= 1, got {budget}")
        chunks = self._micro_batches(batch, budget)
        dev = self.device

        def flat(attr: str) -> torch.Tensor:
            values = [v for d in batch for v in getattr(d, attr)]
            return torch.tensor(values, dtype=torch.float32, device=dev)

        sampler_lp, adv = flat("logprobs"), flat("advantages")
        if not (torch.isfinite(sampler_lp).all() and torch.isfinite(adv).all()):
            raise ValueError("train_step got non-finite logprobs or advantages")
        # 0 on appended (not sampled) tokens: no loss, no KL term (tttd.policy.forced_answer)
        ones = torch.tensor([m for d in batch for m in d.mask_or_ones()], dtype=torch.float32, device=dev)
        metrics: dict[str, float] = {}
        if config.kl_coef > 0:
            base_lp = self._base_logprobs(batch, chunks).float()
            adv, dbar = kl_advantage_shift(adv, sampler_lp, base_lp, ones, config.kl_coef)
            metrics["kl_policy_base"] = dbar
        self.optimizer.zero_grad(set_to_none=True)
        model = self.causal_lm()
        self.model.train()  # layers are checkpointed only in training mode (dropout is 0)
        try:
            total_loss, diff_sum = self._backward(batch, chunks, model, sampler_lp, adv, ones, config)
        finally:
            self.model.eval()
        n_tokens = int(ones.sum().item())
        metrics.update(
            loss=total_loss,
            tokens=float(n_tokens),
            kl_sample_train=diff_sum / max(1, n_tokens),
            kl_sample_train_sum=diff_sum,  # summed over tokens (data-parallel ranks add these)
            micro_batches=float(len(chunks)),
        )
        return metrics

    def _backward(self, batch, chunks, model, sampler_lp, adv, ones, config) -> tuple[float, float]:
        """Forward and backward over the micro-batches; returns (loss, sum of logq - logp)."""
        total_loss, diff_sum, offset = 0.0, 0.0, 0
        for c in chunks:
            n_tok = sum(len(batch[k].tokens) for k in c)
            sl = slice(offset, offset + n_tok)
            offset += n_tok
            logp = self._token_logprobs(model, batch, c).float()
            loss = importance_sampling_loss(logp, sampler_lp[sl], adv[sl], ones[sl], config.clip)
            loss.backward()
            total_loss += float(loss.detach())
            diff_sum += float(((sampler_lp[sl] - logp.detach()) * ones[sl]).sum())
        return total_loss, diff_sum

    # ------------------------------------------------------------------------------ state

    def save(self, path: str | os.PathLike) -> None:
        """Write weights (adapter or full), optimizer, RNG states and counters into ``path``
        atomically (see :mod:`tttd.policy.local_checkpoint`)."""
        if self.sharded:
            self.dp.save(path)  # the ranks gather the shards, rank 0 writes the same files
        else:
            save_checkpoint(self, path)

    def load(self, path: str | os.PathLike) -> None:
        """Restore what :meth:`save` wrote (same model, same LoRA shape) into this policy."""
        if self.sharded:
            self.dp.load(path)  # rank 0 reads and checks, then every rank takes its shard
        else:
            load_checkpoint(self, path)
        self.engine.weights_updated()
        if self.dp:
            self.dp.sync()

    def usage(self) -> TokenUsage:
        return TokenUsage(**self._usage.to_dict())

    def close(self) -> None:
        """Free the model, the sampling engine it owns (and GPU memory)."""
        if getattr(self, "dp", None):
            self.dp.close()
            self.dp = None
        engine = getattr(self, "engine", None)
        if engine is not None and self._owns_engine:
            engine.close()
        self.engine = None
        for name in ("model", "_ref_model", "optimizer", "params"):
            if hasattr(self, name):
                setattr(self, name, None)
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
