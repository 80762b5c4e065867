"""A small, exact, torch-free policy for fast loop tests.

It writes digit strings: each of ``length`` tokens is drawn from one categorical distribution
over the 10 digits (softmax of ``logits``). ``train_step`` is the real importance-sampling
policy-gradient step on those logits (gradient of -sum ratio * A), so it learns.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from tttd.policy import SamplingParams, TokenUsage, TrainConfig
from tttd.types import Sample, TrainDatum


class FakeDigitPolicy:
    trainable = True

    def __init__(self, length: int = 12, seed: int = 0, trainable: bool = True):
        self.length = length
        self.logits = np.zeros(10)
        self.trainable = trainable
        self._usage = TokenUsage()
        self.steps = 0

    def _logp(self) -> np.ndarray:
        z = self.logits - self.logits.max()
        return z - np.log(np.exp(z).sum())

    def sample(self, prompts, n, params: SamplingParams):
        rng = np.random.default_rng(params.seed)
        logp = self._logp()
        out = []
        for prompt in prompts:
            ptoks = [len(m["content"]) % 97 for m in prompt]
            group = []
            for _ in range(n):
                toks = rng.choice(10, size=self.length, p=np.exp(logp)).tolist()
                group.append(Sample(prompt_tokens=ptoks, tokens=toks, logprobs=[float(logp[t]) for t in toks],
                                    text="".join(map(str, toks)), stop_reason="stop"))
                self._usage.sampled_tokens += len(toks)
            self._usage.prompt_tokens += len(ptoks)  # one request per prompt (n samples)
            self._usage.requests += 1
            out.append(group)
        return out

    def train_step(self, batch: list[TrainDatum], config: TrainConfig):
        logp = self._logp()
        p = np.exp(logp)
        grad = np.zeros(10)
        loss = 0.0
        for d in batch:
            for tok, q, a in zip(d.tokens, d.logprobs, d.advantages):
                ratio = np.exp(logp[tok] - q)
                loss -= ratio * a
                onehot = np.zeros(10)
                onehot[tok] = 1.0
                grad += ratio * a * (onehot - p)  # d(ratio*A)/dlogits
        self.logits = self.logits + config.learning_rate * grad
        self.steps += 1
        n = sum(len(d.tokens) for d in batch)
        self._usage.trained_tokens += sum(len(d.prompt_tokens) + len(d.tokens) for d in batch)  # whole sequences
        self._usage.requests += 1
        return {"loss": float(loss), "tokens": n}

    def save(self, path: str) -> None:
        Path(path).mkdir(parents=True, exist_ok=True)
        tmp = Path(path) / "fake.json.tmp"
        tmp.write_text(json.dumps({"logits": self.logits.tolist(), "steps": self.steps}))
        os.replace(tmp, Path(path) / "fake.json")

    def load(self, path: str) -> None:
        data = json.loads((Path(path) / "fake.json").read_text())
        self.logits = np.array(data["logits"])
        self.steps = data["steps"]

    def usage(self) -> TokenUsage:
        return TokenUsage(**self._usage.to_dict())

    def close(self) -> None:
        pass
