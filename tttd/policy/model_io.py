"""The token side of a local model, shared by the trainer and every sampling engine: rendering a
chat prompt, the tokens that end a completion, and cutting sampled tokens into a :class:`Sample`.

Both engines (``hf``, ``vllm``) cut with :func:`finish_sample`, so they return the same Sample
for the same tokens. Needs a tokenizer object only (no torch import here).
"""

from __future__ import annotations

from typing import Any, Sequence

from tttd.policy import SamplingParams
from tttd.types import Message, Sample


def render_chat(tokenizer: Any, messages: list[Message], chat_template_kwargs: dict[str, Any]) -> list[int]:
    """Token ids of a chat prompt, rendered with the chat template plus the generation prompt."""
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True,
                                         **chat_template_kwargs)
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def eos_token_ids(model: Any, tokenizer: Any) -> list[int]:
    """Tokens that end a completion: the model's and tokenizer's eos, plus ``<|im_end|>`` when the
    vocabulary has it (ChatML models whose eos is ``<|endoftext|>``)."""
    cfg = getattr(model, "generation_config", None)
    eos = getattr(cfg, "eos_token_id", None)
    candidates = (eos if isinstance(eos, list) else [eos]) + [tokenizer.eos_token_id]
    if "<|im_end|>" in tokenizer.get_vocab():
        candidates.append(tokenizer.convert_tokens_to_ids("<|im_end|>"))
    ids: list[int] = []
    for value in candidates:
        if value is not None and int(value) not in ids:
            ids.append(int(value))
    if not ids:
        raise ValueError("the model declares no eos token; cannot tell where a completion ends")
    return ids


def first_stop(text: str, stops: Sequence[str]) -> int | None:
    """Where the first of ``stops`` begins in ``text`` (None: none occurs)."""
    hits = [text.find(s) for s in stops if s]
    hits = [h for h in hits if h >= 0]
    return min(hits) if hits else None


def finish_sample(tokenizer: Any, eos_ids: Sequence[int], prompt: list[int], new: list[int],
                  logprobs: list[float], params: SamplingParams) -> Sample:
    """Cut a generated row at its eos token or first stop string.

    ``tokens`` keep the token that ended the completion (eos, or the token that completed a stop
    string) with its log-prob, so the model is also trained to stop; ``text`` is the decoded
    completion without the eos token's text and cut just before the stop string (as OpenAI does).
    """
    end, reason, eos_hit = len(new), "length", False
    for k, tok in enumerate(new):
        if tok in eos_ids:
            end, reason, eos_hit = k + 1, "stop", True
            break
    tokens = new[:end]
    text = tokenizer.decode(tokens[:-1] if eos_hit else tokens, skip_special_tokens=False)
    cut = first_stop(text, params.stop)
    if cut is not None:
        # the shortest token prefix whose text contains the stop string (monotone: bisect)
        lo, hi = 1, len(tokens)
        while lo < hi:
            mid = (lo + hi) // 2
            if first_stop(tokenizer.decode(tokens[:mid], skip_special_tokens=False), params.stop) is not None:
                hi = mid
            else:
                lo = mid + 1
        tokens, text, reason = tokens[:lo], text[:cut], "stop"
    return Sample(prompt_tokens=list(prompt), tokens=tokens, logprobs=logprobs[: len(tokens)],
                  text=text, stop_reason=reason)  # type: ignore[arg-type]
