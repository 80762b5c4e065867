"""Build small Qwen2-style models locally, for the demo and the tests (no downloads).

Why: tttd must run end to end on a laptop with no network and no model weights. This module makes
a real Hugging Face model folder (``config.json``, ``model.safetensors``, tokenizer files with a
ChatML chat template, ``generation_config.json``) that every backend then loads through the *same*
code path as a real model (``AutoTokenizer`` / ``AutoModelForCausalLM.from_pretrained``).

How:

1. **Tokenizer**: a byte-level BPE trained (``tokenizers``) on a bounded, deterministically ordered
   slice of Python's standard library sources plus the synthetic lines below. It uses *exactly*
   Qwen2's normaliser (NFC) and pre-tokeniser (Qwen's split regex, then ByteLevel): with
   transformers 5.x ``AutoTokenizer`` on a qwen2-typed folder rebuilds a ``Qwen2Tokenizer`` from
   vocab and merges with that pipeline, so any other pre-tokeniser would silently change the ids
   after reload. Special tokens ``<|endoftext|>`` (pad), ``<|im_start|>``, ``<|im_end|>`` (eos).
2. **Model**: a random-init ``Qwen2ForCausalLM`` (tied embeddings). ``tiny`` ~1.1M parameters,
   ``small`` ~26M.
3. **Pretraining** (optional, on by default): a short next-token run on stdlib text, digit-heavy
   lines (``x = [3, 1, 4]``, ``0.3809``...) and ChatML-formatted chats whose assistant turn ends
   with ``<|im_end|>``. LoRA on a *random* tiny model does not learn (DESIGN.md); about a minute
   of this fixes it (measured with the default 200 steps: LoRA RL on a digit-fraction reward went
   0.16 -> 0.95 in 20 steps of 16 samples at lr 1e-3) and teaches the model to emit digits and to end its turn. Seeded: the data order
   and the initialisation are fixed by ``seed``. The default budget is a fixed step count (200 for
   ``tiny``: ~50 s on 2 idle cores), so the weights are reproducible on one machine and torch
   version, and a build on a busy machine is slower but not worse (a wall-clock budget built a
   12-step model under contention, which was then cached). ``pretrain_seconds`` is available as a
   wall-clock budget instead. The stdlib text differs between Python versions, so models built
   under different Pythons differ.

The result is cached under ``$TTTD_CACHE`` (else ``$XDG_CACHE_HOME/tttd``, else ``~/.cache/tttd``)
in ``models/<size>-v1`` (non-default seed or pretraining budget get their own folder). It is built
in a temporary folder next to the target and renamed into place, so a crash never leaves a
half-written model and concurrent builders cannot corrupt each other (the first rename wins).

This is *not* the paper's setting (the paper uses gpt-oss-120b via Tinker); it exists so the whole
pipeline can be exercised and tested on a CPU.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import sysconfig
import tempfile
import time
from pathlib import Path
from typing import Any

# the training data (stdlib text, digit lines, ChatML chats) and the special tokens
from tttd.policy.tiny_corpus import IM_END, IM_START, PAD_TOKEN, _chat_docs, _digit_docs, _stdlib_texts
from tttd.policy.tiny_corpus import chat_text  # noqa: F401 (tests and benchmarks use tiny.chat_text)

VERSION = "v1"
#: Bumped whenever the build changes; part of the cached recipe, so older builds are rebuilt.
REVISION = 2

SPECIAL_TOKENS = [PAD_TOKEN, IM_START, IM_END]

#: Qwen2's pre-tokenisation regex (transformers.models.qwen2.tokenization_qwen2.PRETOKENIZE_REGEX).
QWEN2_PRETOKENIZE_REGEX = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|"""
    r"""\s*[\r\n]+|\s+(?!\S)|\s+"""
)

#: ChatML, as Qwen uses it (without Qwen's default system prompt).
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

#: Model shapes and build budgets per size. ``pretrain_steps`` is the default pretraining budget:
#: ``tiny`` ~50 s on 2 idle CPU cores (the CPU demo must finish in ~3 minutes including this
#: build); ``small`` ~10-15 minutes on 2 CPU cores, seconds on a GPU.
SIZES: dict[str, dict[str, Any]] = {
    "tiny": {
        "vocab_size": 4096,
        "hidden_size": 128,
        "intermediate_size": 384,
        "num_hidden_layers": 3,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "tokenizer_chars": 3_000_000,
        "corpus_chars": 3_000_000,
        "seq_len": 128,
        "batch_size": 16,
        "lr": 5e-3,
        "pretrain_steps": 200,
    },
    "small": {
        "vocab_size": 8192,
        "hidden_size": 512,
        "intermediate_size": 1280,
        "num_hidden_layers": 8,
        "num_attention_heads": 8,
        "num_key_value_heads": 4,
        "tokenizer_chars": 6_000_000,
        "corpus_chars": 12_000_000,
        "seq_len": 128,
        "batch_size": 16,
        "lr": 1e-3,
        "pretrain_steps": 150,
    },
}

def cache_root() -> Path:
    """The user's tttd cache directory (``$TTTD_CACHE``, ``$XDG_CACHE_HOME/tttd``, ``~/.cache/tttd``)."""
    if os.environ.get("TTTD_CACHE"):
        return Path(os.environ["TTTD_CACHE"]).expanduser()
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]).expanduser() / "tttd"
    return Path.home() / ".cache" / "tttd"


def _check_size(size: str) -> dict[str, Any]:
    if size not in SIZES:
        raise ValueError(f"unknown tiny model size {size!r}; choose one of {', '.join(SIZES)}")
    return SIZES[size]


def tiny_model_path(
    size: str = "tiny",
    cache_dir: str | Path | None = None,
    pretrain_seconds: float | None = None,
    seed: int = 0,
    pretrain_steps: int | None = None,
) -> Path:
    """Where :func:`build_tiny_model` with these arguments caches its model (it may not exist)."""
    _check_size(size)
    root = Path(cache_dir).expanduser() if cache_dir is not None else cache_root()
    name = f"{size}-{VERSION}"
    if seed != 0:
        name += f"-seed{seed}"
    if pretrain_seconds is not None:
        name += f"-pt{pretrain_seconds:g}s"
    elif pretrain_steps is not None and pretrain_steps != SIZES[size]["pretrain_steps"]:
        name += f"-pt{pretrain_steps}steps"
    return root / "models" / name


def build_tiny_model(
    size: str = "tiny",
    cache_dir: str | Path | None = None,
    pretrain_seconds: float | None = None,
    seed: int = 0,
    force: bool = False,
    progress: bool = True,
    pretrain_steps: int | None = None,
    device: str | None = None,
) -> Path:
    """Build (or reuse) a local model folder and return its path.

    ``pretrain_steps``: next-token pretraining steps (0 = none: a random model; None = the size's
    default, 200 for ``tiny``: ~60 s for the whole build on 2 idle cores). ``pretrain_seconds``: a
    wall-clock budget instead (it takes precedence); the learning-rate schedule then follows the
    elapsed time, so the weights depend on the machine's speed (the data order does not). ``device``: where to pretrain
    (default: cuda if available, else cpu); the saved weights are fp32 either way.
    ``force`` rebuilds even if cached. The folder also holds ``tttd_build.json`` (what was done).
    """
    spec = _check_size(size)
    if pretrain_seconds is not None and pretrain_seconds < 0:
        raise ValueError(f"pretrain_seconds must be >= 0, got {pretrain_seconds}")
    if pretrain_steps is not None and pretrain_steps < 0:
        raise ValueError(f"pretrain_steps must be >= 0, got {pretrain_steps}")
    target = tiny_model_path(size, cache_dir, pretrain_seconds, seed, pretrain_steps)
    recipe = {"size": size, "version": VERSION, "revision": REVISION, "seed": seed, "pretrain_steps": pretrain_steps,
              "pretrain_seconds": pretrain_seconds}
    if not force and _complete(target, recipe):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    say = _printer(progress)
    start = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.building-", dir=target.parent))
    try:
        texts = _stdlib_texts(spec["corpus_chars"])
        rng = random.Random(seed)
        digit_docs = _digit_docs(rng, n_docs=max(1, spec["corpus_chars"] // 8000))
        chat_docs = _chat_docs(rng, texts, n_docs=max(1, spec["corpus_chars"] // 8000))
        say(f"[tttd] building {size} model in {target} (tokenizer...)")
        tok = _train_tokenizer(texts, digit_docs + chat_docs, spec)
        hf_tok = _wrap_tokenizer(tok)
        hf_tok.save_pretrained(str(tmp))
        _fix_tokenizer_config(tmp)
        model = _random_model(spec, tok, seed)
        info: dict[str, Any] = {"steps": 0, "seconds": 0.0, "loss": None}
        steps = spec["pretrain_steps"] if pretrain_steps is None else pretrain_steps
        if pretrain_seconds is not None:
            steps = None  # wall-clock budget
        if (steps if steps is not None else pretrain_seconds) > 0:
            info = _pretrain(
                model, tok, texts, digit_docs, chat_docs, spec, seed, steps, pretrain_seconds, say,
                device,
            )
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        model.save_pretrained(str(tmp))
        from transformers import GenerationConfig

        gen = GenerationConfig(  # a turn ends at <|im_end|>; a document at <|endoftext|>
            eos_token_id=[tok.token_to_id(IM_END), tok.token_to_id(PAD_TOKEN)],
            pad_token_id=tok.token_to_id(PAD_TOKEN),
            bos_token_id=None,
        )
        gen.save_pretrained(str(tmp))
        n_params = sum(p.numel() for p in model.parameters())
        build = {
            "recipe": recipe,
            "size": size,
            "version": VERSION,
            "seed": seed,
            "parameters": n_params,
            "pretrain": info,
            "build_seconds": round(time.perf_counter() - start, 2),
            "python": sysconfig.get_python_version(),
        }
        (tmp / "tttd_build.json").write_text(json.dumps(build, indent=2) + "\n")
        _install(tmp, target, force, recipe)
        say(f"[tttd] built {size} model ({n_params:,} parameters) in {build['build_seconds']} s")
        return target
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _complete(folder: Path, recipe: dict[str, Any]) -> bool:
    """A finished build made with ``recipe`` (an older recipe or a partial folder is not reused)."""
    try:
        build = json.loads((folder / "tttd_build.json").read_text())
    except (OSError, ValueError):
        return False
    return build.get("recipe") == recipe and (folder / "config.json").exists()


def _install(tmp: Path, target: Path, force: bool, recipe: dict[str, Any]) -> None:
    """Rename the finished build into place; keep an existing complete build if one raced us."""
    os.chmod(tmp, 0o755)  # mkdtemp made it private; a model folder is an ordinary folder
    if target.exists():
        if not force and _complete(target, recipe):
            return  # another process finished first; its model is equivalent
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        os.rename(target, old)
        shutil.rmtree(old, ignore_errors=True)
    try:
        os.rename(tmp, target)
    except OSError:
        if not _complete(target, recipe):
            raise


def _printer(progress: bool):
    def say(msg: str) -> None:
        if progress:
            print(msg, flush=True)

    return say


# ------------------------------------------------------------------------------------ tokenizer


def _train_tokenizer(texts: list[str], extra: list[str], spec: dict[str, Any]):
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(unk_token=None, fuse_unk=False, byte_fallback=False))
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN2_PRETOKENIZE_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=spec["vocab_size"],
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    budget = spec["tokenizer_chars"]
    corpus: list[str] = []
    total = 0
    for t in texts + extra:
        corpus.append(t)
        total += len(t)
        if total >= budget:
            break
    tok.train_from_iterator(corpus, trainer=trainer)
    return tok


def _wrap_tokenizer(tok):
    from transformers import PreTrainedTokenizerFast

    hf = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token=IM_END,
        pad_token=PAD_TOKEN,
        unk_token=PAD_TOKEN,
        additional_special_tokens=[IM_START, IM_END],
        clean_up_tokenization_spaces=False,
        model_max_length=32768,
    )
    hf.chat_template = CHAT_TEMPLATE
    return hf


def _fix_tokenizer_config(folder: Path) -> None:
    """Declare the folder's tokenizer as a ``Qwen2Tokenizer``, as real Qwen folders do, so loading
    it goes through the same class (and pre-tokeniser) as a real Qwen model."""
    path = folder / "tokenizer_config.json"
    cfg = json.loads(path.read_text())
    cfg["tokenizer_class"] = "Qwen2Tokenizer"
    cfg["errors"] = "replace"
    cfg["add_prefix_space"] = False
    cfg.setdefault("chat_template", CHAT_TEMPLATE)
    path.write_text(json.dumps(cfg, indent=2) + "\n")


# ---------------------------------------------------------------------------------------- model


def _random_model(spec: dict[str, Any], tok, seed: int):
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    heads = spec["num_attention_heads"]
    config = Qwen2Config(
        vocab_size=tok.get_vocab_size(),
        hidden_size=spec["hidden_size"],
        intermediate_size=spec["intermediate_size"],
        num_hidden_layers=spec["num_hidden_layers"],
        num_attention_heads=heads,
        num_key_value_heads=spec["num_key_value_heads"],
        head_dim=spec["hidden_size"] // heads,
        max_position_embeddings=4096,
        tie_word_embeddings=True,
        bos_token_id=None,
        eos_token_id=tok.token_to_id(IM_END),
        pad_token_id=tok.token_to_id(PAD_TOKEN),
        rope_theta=10000.0,
        use_sliding_window=False,
    )
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(config)
    model.to(torch.float32)
    return model


def _pretrain(model, tok, texts, digit_docs, chat_docs, spec, seed, steps, seconds, say, device=None):
    """Next-token pretraining on random windows of a fixed token stream; returns a summary."""
    import torch

    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    model.to(dev)

    rng = random.Random(seed + 1)
    docs = list(texts) + list(digit_docs) + list(chat_docs)
    rng.shuffle(docs)
    pad_id = tok.token_to_id(PAD_TOKEN)
    stream: list[int] = []
    for enc in tok.encode_batch(docs):
        stream.extend(enc.ids)
        stream.append(pad_id)
    data = torch.tensor(stream, dtype=torch.long)
    seq, bsz = spec["seq_len"], spec["batch_size"]
    if len(data) <= seq + 1:
        raise RuntimeError("pretraining corpus too small")
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=spec["lr"], betas=(0.9, 0.95), weight_decay=0.01)
    model.train()
    t0 = time.perf_counter()
    total = steps if steps is not None else None
    warmup = 10
    losses: list[float] = []
    step = 0
    last_print = t0
    while True:
        elapsed = time.perf_counter() - t0
        if total is not None:
            if step >= total:
                break
            frac = step / total
        else:  # time budget: the cosine schedule follows elapsed time
            if elapsed >= seconds:
                break
            frac = elapsed / seconds
        lr = spec["lr"] * min(1.0, (step + 1) / warmup) * (0.1 + 0.9 * 0.5 * (1 + _cos(frac)))
        for group in opt.param_groups:
            group["lr"] = lr
        starts = torch.randint(0, len(data) - seq - 1, (bsz,), generator=gen)
        batch = torch.stack([data[s : s + seq + 1] for s in starts.tolist()]).to(dev)
        logits = model(input_ids=batch[:, :-1]).logits.float()
        loss = torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.size(-1)), batch[:, 1:].reshape(-1)
        )
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        losses.append(float(loss.detach()))
        step += 1
        now = time.perf_counter()
        if now - last_print > 10:
            last_print = now
            recent = sum(losses[-20:]) / len(losses[-20:])
            goal = f"{step}/{total} steps" if total is not None else f"{now - t0:.0f}/{seconds:g} s"
            say(f"[tttd]   pretraining {goal}  loss {recent:.3f}")
    model.eval()
    model.to("cpu")
    recent = losses[-20:]
    return {
        "steps": step,
        "seconds": round(time.perf_counter() - t0, 2),
        "loss": round(sum(recent) / len(recent), 4) if recent else None,
        "first_loss": round(losses[0], 4) if losses else None,
        "tokens": step * seq * bsz,
        "device": dev.type,
    }


def _cos(frac: float) -> float:
    import math

    return math.cos(math.pi * frac)
