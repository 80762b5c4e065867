"""The ``vllm`` sampling engine: vLLM beside the transformers + peft trainer, LoRA hot-swapped.

Exactness. Prompts are rendered by the trainer's tokenizer and handed to vLLM as token ids, so the
sampler and trainer condition on the same tokens. Sampling is plain ancestral sampling at the
requested temperature: the model's ``generation_config.json`` defaults are ignored
(``generation_config="vllm"``), and every request sets ``top_k=0`` (off), ``top_p=1, min_p=0`` and neutral
penalties. Log-probs come from ``logprobs_mode="processed_logprobs"``: the log-softmax of the logits
after the temperature (vLLM's default ``raw_logprobs`` is taken before it). At temperature 1 with
nothing else enabled the two modes are the same numbers, the raw model's log-probs, which the
trainer recomputes; at another temperature the processed ones are the sampler's distribution ``q``
that the importance ratio needs (as the hf engine records). ``logprobs=0`` asks for the sampled
token's log-prob only.

Ending. vLLM stops at the eos ids the trainer uses (``stop_token_ids``), at the model's own eos, at
the first stop string, or after the token budget (clamped to the context window); the tokens are
then cut exactly as the hf engine cuts them (:func:`tttd.policy.model_io.finish_sample`), so both engines return
the same :class:`Sample` for the same tokens.

Seeds. One vLLM request per sample, seeded ``derive(seed of its prompt, sample index)``. (One
request with ``n`` samples would not do: vLLM seeds its ``n`` children ``seed + j``, so prompt i's
sample 1 and prompt i+1's sample 0 would share a random stream and, for similar prompts, come out
identical; measured here with consecutive per-prompt seeds.) vLLM's prefix cache shares the
prompt's KV cache among a prompt's requests.

Weights. After every optimizer step and after a checkpoint load, the policy's LoRA adapter is saved
to a private folder and added to vLLM under a new name and a new integer id that are never reused
(vLLM caches adapters by id: a reused id can serve stale weights); the previous adapter is removed
and its folder deleted. ``adapter_step`` is the optimizer step whose weights are served.

Memory. On a single GPU (trainer and vLLM on one device) vLLM starts with sleep mode on and sleeps
at level 1 during every train step: its KV cache is released and its weights are offloaded to CPU
memory (the base weights never change under LoRA, so level 2's discard-and-reload is not needed);
it wakes before the next sampling. On several GPUs vLLM uses tensor parallelism over all visible
devices (README "One GPU, several GPUs"); the trainer stays on ``policy.device``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import weakref
from pathlib import Path
from typing import Any

from tttd.policy import SamplingParams, check_sampling, prompt_seeds
from tttd.policy.engines.common import EngineHost, derive, quiet_vllm
from tttd.types import Message, Sample

LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)  # vLLM's allowed max_lora_rank values
CPU_MEMORY_FRACTION = 0.15  # on a CPU, gpu_memory_utilization is the fraction of RAM reserved
GPU_MEMORY_FRACTION = 0.5  # one GPU shared with the trainer


def _tensor_parallel(heads: int, kv_heads: int, count: int | None = None) -> int:
    """The largest tensor-parallel size <= the visible GPUs that vLLM can shard this model over:
    it divides the attention heads, and the KV heads divide it or it divides them."""
    if count is None:
        import torch

        count = torch.cuda.device_count()
    return max(tp for tp in range(1, max(1, count) + 1)
               if heads % tp == 0 and (kv_heads % tp == 0 or tp % kv_heads == 0))


class VLLMEngine:
    """vLLM sampling for a :class:`LocalPolicy` (see the module docstring).

    ``options`` are passed to ``vllm.LLM`` and override the defaults chosen here (e.g.
    ``gpu_memory_utilization``, ``tensor_parallel_size``, ``max_model_len``, ``enforce_eager``).
    One engine may serve successive policies of the same model and LoRA shape
    (:meth:`attach`), which the tests use to start vLLM once per session.
    """

    name = "vllm"

    def __init__(self, model_path: str, *, lora_rank: int, device: str, dtype: str, seed: int = 0,
                 max_model_len: int | None = None, heads: int = 1, kv_heads: int = 1,
                 options: dict[str, Any] | None = None) -> None:
        quiet_vllm()
        import vllm

        on_gpu = device.startswith("cuda")
        tp = _tensor_parallel(heads, kv_heads) if on_gpu else 1
        self.settings: dict[str, Any] = dict(
            model=model_path, tokenizer=model_path, dtype=dtype, seed=seed,
            enable_lora=True, max_lora_rank=next(r for r in LORA_RANKS if r >= lora_rank),
            max_loras=1, generation_config="vllm", logprobs_mode="processed_logprobs",
            gpu_memory_utilization=GPU_MEMORY_FRACTION if on_gpu else CPU_MEMORY_FRACTION,
            tensor_parallel_size=tp,
            enable_sleep_mode=on_gpu,
        )
        if not on_gpu:  # no inductor compile of each new shape on a CPU (minutes on 2 cores)
            self.settings["enforce_eager"] = True
        if max_model_len is not None:
            self.settings["max_model_len"] = max_model_len
        self.settings.update(options or {})
        self.sleep_mode = bool(self.settings.get("enable_sleep_mode"))
        from tttd.policy.engines import reaper

        # adapters handed to vLLM live here; removed on close, at exit, or by the watchdog
        self._dir = Path(tempfile.mkdtemp(prefix="tttd-vllm-adapters-"))
        self._cleanup = weakref.finalize(self, shutil.rmtree, str(self._dir), ignore_errors=True)
        t0 = time.perf_counter()
        before = reaper.children()
        self.llm = vllm.LLM(**self.settings)
        self.load_seconds = time.perf_counter() - t0
        # vLLM's engine processes must not outlive a killed tttd (they hold the GPU's memory)
        self._watchdog = reaper.watch(reaper.children() - before, (str(self._dir),))
        self.version = vllm.__version__
        self.max_model_len = int(self.llm.llm_engine.model_config.max_model_len)
        self.policy: EngineHost | None = None
        self.lora_rank = lora_rank
        self.adapter_step: int | None = None
        self.adapters_published = 0
        self._lora = None  # the LoRARequest being served
        self._next_id = 1  # integer adapter ids: never reused in this engine's life
        self._asleep = False
        self.ignore_eos = False  # benchmarks: generate exactly max_tokens, no text
        self.timings: dict[str, float] = {}  # seconds of the last publish / sleep / wake

    @classmethod
    def for_policy(cls, policy: EngineHost, options: dict[str, Any]) -> "VLLMEngine":
        cfg = policy.causal_lm().config
        cfg = getattr(cfg, "text_config", cfg)
        dtype = str(policy.dtype).replace("torch.", "")
        return cls(policy.model_path, lora_rank=policy.lora_rank, device=policy.device.type,
                   dtype=dtype, seed=policy.seed, heads=int(cfg.num_attention_heads),
                   kv_heads=int(getattr(cfg, "num_key_value_heads", None) or cfg.num_attention_heads),
                   options=options)

    # ------------------------------------------------------------------ weights

    def attach(self, policy: EngineHost) -> None:
        """Serve ``policy``'s weights from now on (its current adapter is published at once)."""
        if policy.full_finetune:
            raise ValueError("the vllm engine serves LoRA adapters only; full fine-tuning keeps the hf engine")
        if policy.model_path != self.settings["model"]:
            raise ValueError(f"this vLLM engine serves {self.settings['model']}, not {policy.model_path}")
        if policy.lora_rank > self.settings["max_lora_rank"]:
            raise ValueError(f"LoRA rank {policy.lora_rank} > this engine's max_lora_rank "
                             f"{self.settings['max_lora_rank']}")
        peft_cfg = policy.model.peft_config["default"]
        targets = peft_cfg.target_modules
        names = set(targets) if isinstance(targets, (set, list, tuple)) else {str(targets)}
        if "lm_head" in names or "embed_tokens" in names or peft_cfg.modules_to_save:
            raise ValueError("vLLM cannot serve LoRA on lm_head/embeddings or modules_to_save; "
                             "use engine=hf for that adapter")
        self.policy = policy
        self.weights_updated()

    def weights_updated(self) -> None:
        """Publish the policy's current adapter under a new name; unload the previous one."""
        from vllm.lora.request import LoRARequest

        assert self.policy is not None, "attach a policy first"
        self.wake()
        t0 = time.perf_counter()
        lora_id = self._next_id
        self._next_id += 1
        step = int(self.policy.step)
        path = self._dir / f"adapter-{lora_id}"
        self.policy.model.save_pretrained(str(path))
        old = self._lora
        if old is not None:
            self.llm.llm_engine.remove_lora(old.lora_int_id)
            shutil.rmtree(old.lora_path, ignore_errors=True)
        self._lora = LoRARequest(f"tttd-{os.getpid()}-{lora_id}-step{step}", lora_id, str(path))
        self.llm.llm_engine.add_lora(self._lora)
        self.adapter_step = step
        self.adapters_published += 1
        self.timings["publish_s"] = time.perf_counter() - t0

    # ------------------------------------------------------------------ memory

    def before_train(self) -> None:
        if self.sleep_mode and not self._asleep:
            t0 = time.perf_counter()
            self.llm.sleep(level=1)  # KV cache released, weights offloaded to CPU memory
            self._asleep = True
            self.timings["sleep_s"] = time.perf_counter() - t0

    def wake(self) -> None:
        if self._asleep:
            t0 = time.perf_counter()
            self.llm.wake_up()
            self._asleep = False
            self.timings["wake_s"] = time.perf_counter() - t0

    # ------------------------------------------------------------------ sampling

    def sample(self, prompts: list[list[Message]], n: int, params: SamplingParams) -> list[list[Sample]]:
        policy = self.policy
        assert policy is not None, "attach a policy first"
        check_sampling(n, params)
        self.wake()
        encoded = [policy.render(p) for p in prompts]
        seeds = prompt_seeds(params, len(prompts), policy.seed * 1_000_003 + policy.sample_calls)
        policy.sample_calls += 1
        for ids in encoded:
            if self.max_model_len - len(ids) < 1:
                raise ValueError(f"a prompt of {len(ids)} tokens leaves no room in the "
                                 f"{self.max_model_len}-token context")
        flat = self._run([ids for ids in encoded for _ in range(n)],
                         [min(params.max_tokens, self.max_model_len - len(ids)) for ids in encoded for _ in range(n)],
                         [derive(seed, j) for seed in seeds for j in range(n)], params)
        out = [flat[i * n:(i + 1) * n] for i in range(len(encoded))]
        if params.forced_answer:  # phase 2 in the context left (tttd.policy.forced_answer)
            def more(requests: list[list[int]], more_seeds: list[int]) -> list[Sample | None]:
                rooms = [self.max_model_len - len(r) for r in requests]
                ok = [k for k, room in enumerate(rooms) if room >= 1]
                got = self._run([requests[k] for k in ok], [rooms[k] for k in ok],
                                [derive(more_seeds[k], 0) for k in ok], params)
                res: list[Sample | None] = [None] * len(requests)
                for k, smp in zip(ok, got):
                    res[k] = smp
                return res

            out = policy.force_answers(out, seeds, more)
        return out

    def _run(self, requests_ids: list[list[int]], budgets: list[int], seeds: list[int],
             params: SamplingParams) -> list[Sample]:
        """One vLLM request per (token-id prompt, budget, seed); Samples cut as the hf engine cuts."""
        policy = self.policy
        assert policy is not None
        if not requests_ids:
            return []
        requests = [{"prompt_token_ids": ids} for ids in requests_ids]
        sampling = [self._params(params, b, seed) for b, seed in zip(budgets, seeds)]
        results = self.llm.generate(requests, sampling, lora_request=self._lora, use_tqdm=False)
        out: list[Sample] = []
        for ids, result in zip(requests_ids, results):
            comp = result.outputs[0]
            tokens = list(comp.token_ids)
            logprobs = [float(pos[tok].logprob) for tok, pos in zip(tokens, comp.logprobs)]
            if self.ignore_eos:
                smp = Sample(prompt_tokens=list(ids), tokens=tokens, logprobs=logprobs,
                             text="", stop_reason="length")
            else:
                smp = policy.finish(ids, tokens, logprobs, params)
                if comp.finish_reason == "stop":
                    smp.stop_reason = "stop"
            out.append(smp)
        policy.count_sampling(sum(len(ids) for ids in requests_ids), sum(len(s.tokens) for s in out))
        return out

    def _params(self, params: SamplingParams, max_tokens: int, seed: int):
        import vllm

        policy = self.policy
        assert policy is not None
        return vllm.SamplingParams(
            n=1, temperature=params.temperature, top_k=0, top_p=1.0, min_p=0.0,
            presence_penalty=0.0, frequency_penalty=0.0, repetition_penalty=1.0,
            max_tokens=max_tokens, min_tokens=0, seed=seed,
            stop=list(params.stop) or None,
            stop_token_ids=[] if self.ignore_eos else list(policy.eos_ids),
            ignore_eos=self.ignore_eos, logprobs=0, skip_special_tokens=False,
            include_stop_str_in_output=False, detokenize=not self.ignore_eos,
        )

    def score(self, prompt_tokens: list[int], tokens: list[int]) -> list[float]:
        """Log-probs of ``tokens`` after ``prompt_tokens`` under the served weights (vLLM's
        prompt log-probs; raw and processed modes agree for prompt tokens)."""
        import vllm

        self.wake()
        ids = list(prompt_tokens) + list(tokens)
        sp = vllm.SamplingParams(n=1, max_tokens=1, temperature=1.0, prompt_logprobs=0, seed=0)
        result = self.llm.generate([{"prompt_token_ids": ids}], sp, lora_request=self._lora,
                                   use_tqdm=False)[0]
        plp = result.prompt_logprobs
        return [float(plp[k][ids[k]].logprob) for k in range(len(prompt_tokens), len(ids))]

    # ------------------------------------------------------------------ records

    def info(self) -> dict[str, Any]:
        import torch
        import transformers

        shown = {k: v for k, v in self.settings.items() if k not in ("model", "tokenizer")}
        return {
            "engine": "vllm",
            "versions": {"vllm": self.version, "torch": torch.__version__,
                         "transformers": transformers.__version__},
            "settings": shown,
            "max_model_len": self.max_model_len,
            "adapter_step": self.adapter_step,
            "load_seconds": round(self.load_seconds, 2),
        }

    def close(self) -> None:
        """Unload the adapter and shut vLLM down (its engine process and memory)."""
        llm, self.llm = getattr(self, "llm", None), None
        if llm is not None:
            try:
                llm.llm_engine.engine_core.shutdown()
            except Exception:
                pass
            del llm
        self._cleanup()
        self.policy = None
        watchdog, self._watchdog = getattr(self, "_watchdog", None), None
        if watchdog is not None:  # the engine processes are gone; the watchdog has nothing to do
            watchdog.kill()
            watchdog.wait()
        try:
            import torch

            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        except Exception:
            pass
