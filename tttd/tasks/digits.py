"""Shared pieces of the digit-string toy tasks (``demo``, ``maxcut``): answers are strings of digits,
which the tiny local model can write, and prompts show the current string, its value and the
parent's value."""

from __future__ import annotations

from tttd.types import Candidate, Message, State


def digit_prompt(first_line: str, state: State, parent: State | None, value_word: str,
                 goal: str) -> list[Message]:
    """The one-message prompt of a digit task: what to write, the current string and its value,
    the parent's value, and which direction is better."""
    lines = [first_line]
    if state.value is not None:
        lines.append(f"Current: {state.artifact.get('digits', '')} {value_word} {state.value:.4f}.")
    if parent is not None and parent.value is not None:
        lines.append(f"Before: {value_word} {parent.value:.4f}.")
    lines.append(f"{goal} Answer with digits only.")
    return [{"role": "user", "content": "\n".join(lines)}]


def parse_digits(completion: str, least: int, most: int) -> Candidate:
    """The digits of ``completion`` (every other character ignored), cut at ``most``; fewer than
    ``least`` is a parse error."""
    digits = "".join(ch for ch in completion if "0" <= ch <= "9")[:most]
    if len(digits) < least:
        need = str(least) if least == most else f"at least {least}"
        return Candidate(text=completion, error=f"need {need} digits, got {len(digits)}")
    return Candidate(text=completion, data=digits)
