"""Forced final answer for reasoning models: the authors' two-phase sampling, for every backend.

A reasoning model (gpt-oss at ``reasoning_effort=high`` in the paper) can spend its whole token
budget thinking and return no answer at all. The authors' sampler (PyPI ``ttt-discover`` 0.2.0,
``TwoPhaseTokenCompleter``; SPEC 1.2) then continues the *same* sequence: it appends a short fixed
"out of thinking tokens" text and the model's final-answer header, and samples the answer in the
context that is left. A sample that is already in its answer just continues. tttd does the same
when ``SamplingParams.forced_answer`` is on (``RunConfig.forced_answer``; the ``paper`` preset):

- only samples that ended because the budget ran out (``stop_reason == "length"``) continue;
- phase 2 samples from ``prompt + phase-1 tokens + appended tokens`` (token ids, never
  re-tokenized), up to the backend's own context clamp, with its own seed;
- the appended tokens get log-prob 0 and mask 0 (:attr:`tttd.types.Sample.mask`): they carry no
  loss and no KL term; both sampled parts are trained. (The authors meant to mask them too, but
  their trainer drops the mask before the loss, so they trained on them: SPEC 7.3 item 10.)

The answer format is read from the chat template (:func:`detect`): gpt-oss Harmony channels
(``<|channel|>final<|message|>``) or ``<think>...</think>`` (Qwen3, DeepSeek-R1 style). With
neither, the option has no effect (nothing marks where thinking ends); ``tttd run --dry-run``
says so. The text appended is tttd's own wording of the authors' sentence.

Deviation from the authors: phase 1 gets ``max_tokens`` new tokens (clamped to the context as
always); the authors' phase-1 limit ``phase1_max_tokens = 26000`` counts the prompt as well, so
with a P-token prompt their model thinks up to P tokens less and has P more for the answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

from tttd.policy import sub_seed
from tttd.types import Sample

#: appended (untrained) when a sample runs out of budget while still thinking
OUT_OF_THINKING = "\n\n... I have used up my thinking budget, so I must give my final answer now."
PHASE2_SALT = 2  # phase 2 of sample j of a prompt with seed s draws from sub_seed(s, j, PHASE2_SALT)


@dataclass(frozen=True)
class AnswerFormat:
    """Where a chat format's answer starts. ``marker``: text whose presence means the answer
    has started; ``header``: the text appended to open the answer; ``close``: what ends the
    thinking part before ``header`` when the text does not already end with ``close``."""

    name: str
    marker: str
    header: str
    close: str = ""

    def in_answer(self, prompt_text: str, completion_text: str) -> bool:
        """True when the completion is already inside its answer (its own header, or the
        generation prompt opened the answer)."""
        return self.marker in completion_text or prompt_text.rstrip().endswith(self.marker)

    def suffix(self, prompt_text: str, completion_text: str) -> str:
        """What to append before phase 2: "" (just continue) or the out-of-thinking text plus
        the header."""
        if self.in_answer(prompt_text, completion_text):
            return ""
        if self.close and not completion_text.endswith(self.close):
            return OUT_OF_THINKING + self.close + self.header
        return OUT_OF_THINKING + self.header


#: gpt-oss: the analysis channel ends with <|end|>; the final message opens a new assistant turn
HARMONY = AnswerFormat("harmony", marker="<|channel|>final<|message|>",
                       header="<|start|>assistant<|channel|>final<|message|>", close="<|end|>")
#: Qwen3 / DeepSeek-R1 style thinking blocks
THINK = AnswerFormat("think", marker="</think>", header="\n</think>\n\n")


def detect(chat_template: str | None) -> AnswerFormat | None:
    """The answer format of a chat template: Harmony when it writes ``<|channel|>``, think
    blocks when it writes ``</think>``, else None (no forced answer possible)."""
    if not chat_template:
        return None
    if "<|channel|>" in chat_template:
        return HARMONY
    if "</think>" in chat_template:
        return THINK
    return None


def describe(chat_template: str | None) -> str:
    fmt = detect(chat_template)
    if fmt is None:
        return "on, but this chat template has no thinking/answer split: no effect"
    return f"on ({fmt.name} format: a sample out of budget while thinking gets an untrained " \
           f"'out of thinking tokens' text and the answer header, then continues)"


#: phase 2 for a list of continuation prompts (token ids) and seeds: one Sample per request,
#: or None where the context leaves no room for a single answer token
SampleMore = Callable[[list[list[int]], list[int]], list["Sample | None"]]


def continue_samples(
    groups: list[list[Sample]],
    seeds: Sequence[int],
    fmt: AnswerFormat | None,
    encode: Callable[[str], list[int]],
    decode: Callable[[list[int]], str],
    text_of: Callable[[list[int]], str],
    sample_more: SampleMore,
) -> list[list[Sample]]:
    """Phase 2 for every sample of ``groups`` that ran out of budget (see the module docstring).

    ``seeds``: one per group (the prompt's sampling seed). ``encode``: text -> token ids (no
    special tokens added); ``decode``: ids -> text with special tokens kept (to find the header);
    ``text_of``: ids -> text as the backend reports ``Sample.text``. Samples that do not continue
    are returned as they were (mask None)."""
    if fmt is None:
        return groups
    jobs: list[tuple[int, int, list[int]]] = []
    requests: list[list[int]] = []
    req_seeds: list[int] = []
    prompt_texts: dict[int, str] = {}
    for i, group in enumerate(groups):
        for j, smp in enumerate(group):
            if smp.stop_reason != "length" or not smp.tokens:
                continue
            if i not in prompt_texts:
                prompt_texts[i] = decode(list(smp.prompt_tokens))
            suffix = fmt.suffix(prompt_texts[i], decode(list(smp.tokens)))
            added = encode(suffix) if suffix else []
            jobs.append((i, j, added))
            requests.append(list(smp.prompt_tokens) + list(smp.tokens) + added)
            req_seeds.append(sub_seed(int(seeds[i]), j, PHASE2_SALT))
    if not jobs:
        return groups
    more = sample_more(requests, req_seeds)
    out = [list(g) for g in groups]
    for (i, j, added), second in zip(jobs, more):
        if second is None:
            continue  # no room left in the context: phase 1 stands
        out[i][j] = join(groups[i][j], added, text_of(added), second)
    return out


def join(first: Sample, added: list[int], added_text: str, second: Sample) -> Sample:
    """Phase 1 + appended tokens (log-prob 0, mask 0) + phase 2, as one sample."""
    mask = list(first.mask) if first.mask is not None else [1.0] * len(first.tokens)
    mask += [0.0] * len(added) + [1.0] * len(second.tokens)
    return Sample(
        prompt_tokens=list(first.prompt_tokens),
        tokens=list(first.tokens) + list(added) + list(second.tokens),
        logprobs=list(first.logprobs) + [0.0] * len(added) + list(second.logprobs),
        text=first.text + added_text + second.text,
        stop_reason=second.stop_reason,
        mask=mask,
    )
