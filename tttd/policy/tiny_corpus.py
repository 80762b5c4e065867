"""The pretraining corpus of the tiny model (:mod:`tttd.policy.tiny`): Python standard-library
sources, digit-heavy lines and short ChatML chats whose assistant turn ends with ``<|im_end|>``.
Deterministic for a given seed and Python version."""

from __future__ import annotations

import random
import sysconfig
from pathlib import Path

PAD_TOKEN = "<|endoftext|>"
IM_START = "<|im_start|>"
IM_END = "<|im_end|>"

_SKIP_DIRS = {"test", "tests", "site-packages", "dist-packages", "idlelib", "lib2to3", "__pycache__"}


def _stdlib_texts(max_chars: int) -> list[str]:
    """Python sources from the standard library, in sorted path order, at most ``max_chars``.

    Each file contributes at most 20k characters so the corpus spans many modules."""
    root = Path(sysconfig.get_paths()["stdlib"])
    files = sorted(
        p for p in root.rglob("*.py") if not (_SKIP_DIRS & set(p.relative_to(root).parts[:-1]))
    )
    texts: list[str] = []
    total = 0
    for path in files:
        try:
            text = path.read_text(encoding="utf-8", errors="replace")[:20_000]
        except OSError:
            continue
        if not text.strip():
            continue
        texts.append(text)
        total += len(text)
        if total >= max_chars:
            break
    if not texts:
        raise RuntimeError(f"no Python sources found under {root}; cannot build a tiny model")
    return texts


def _digit_line(rng: random.Random) -> str:
    kind = rng.randrange(6)
    if kind == 0:
        return " ".join(str(rng.randrange(10)) for _ in range(rng.randint(3, 16)))
    if kind == 1:
        name = rng.choice(["x", "y", "values", "a", "data", "h", "best"])
        nums = ", ".join(str(rng.randrange(100)) for _ in range(rng.randint(2, 10)))
        return f"{name} = [{nums}]"
    if kind == 2:
        return f"{rng.random():.{rng.randint(2, 6)}f}"
    if kind == 3:
        return "".join(str(rng.randrange(10)) for _ in range(rng.randint(4, 24)))
    if kind == 4:
        a, b = rng.randrange(1000), rng.randrange(1000)
        return f"{a} + {b} = {a + b}"
    return ", ".join(f"{rng.uniform(-1, 1):.3f}" for _ in range(rng.randint(2, 6)))


def _digit_docs(rng: random.Random, n_docs: int) -> list[str]:
    return ["\n".join(_digit_line(rng) for _ in range(rng.randint(8, 30))) + "\n" for _ in range(n_docs)]


def chat_text(messages: list[dict[str, str]], add_generation_prompt: bool = False) -> str:
    """Render messages exactly as :data:`CHAT_TEMPLATE` does (for data generation and tests)."""
    out = "".join(f"{IM_START}{m['role']}\n{m['content']}{IM_END}\n" for m in messages)
    return out + (f"{IM_START}assistant\n" if add_generation_prompt else "")


def _chat_docs(rng: random.Random, texts: list[str], n_docs: int) -> list[str]:
    """Short ChatML conversations: a question (a stdlib docstring or comment line, or a request
    for numbers) and a short answer (digits or a code line) closed by ``<|im_end|>``."""
    lines = [
        ln.strip().strip('"#').strip()
        for t in texts[:200]
        for ln in t.splitlines()
        if 20 <= len(ln.strip()) <= 100
    ]
    code = [ln.strip() for t in texts[:200] for ln in t.splitlines() if 8 <= len(ln.strip()) <= 60]
    asks = [
        "Write a list of numbers.",
        "Give me some digits.",
        "Improve the solution.",
        "Reply with a number.",
        "Write one line of Python.",
    ]
    docs = []
    for _ in range(n_docs):
        turns = []
        for _ in range(rng.randint(2, 5)):
            msgs = []
            if rng.random() < 0.3:
                msgs.append({"role": "system", "content": rng.choice(lines)})
            question = rng.choice(asks)
            if rng.random() < 0.6:
                question = rng.choice(lines) + "\n" + question
            msgs.append({"role": "user", "content": question})
            answer = _digit_line(rng) if rng.random() < 0.6 else rng.choice(code)
            msgs.append({"role": "assistant", "content": answer})
            turns.append(chat_text(msgs))
        docs.append("".join(turns))
    return docs
