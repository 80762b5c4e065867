"""What the ranks of a data-parallel run send each other (:mod:`tttd.policy.distributed`), as JSON.

Commands, samples and training data travel through the rendezvous' key-value store as JSON text,
never pickles: a rank only ever parses data. Token ids are packed as base64 int32 and log-probs,
advantages and masks as base64 float64, which is exact (a Python float is a float64) and ~3x
smaller than decimal text for the long completions of a real step.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from array import array
from typing import Any

from tttd.policy import SamplingParams
from tttd.types import Sample, TrainDatum

_INTS = ("prompt_tokens", "tokens")
_FLOATS = ("logprobs", "advantages", "mask")


def _pack(kind: str, values) -> dict[str, str]:
    return {kind: base64.b64encode(array("i" if kind == "i32" else "d", values).tobytes()).decode()}


def _unpack(packed: dict[str, str]) -> list:
    (kind, text), = packed.items()
    out = array("i" if kind == "i32" else "d")
    out.frombytes(base64.b64decode(text))
    return out.tolist()


def pack_floats(values) -> dict[str, str]:
    return _pack("f64", values)


def unpack(packed: dict[str, str]) -> list:
    return _unpack(packed)


def _row(obj: Sample | TrainDatum) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if value is not None and f.name in _INTS:
            value = _pack("i32", value)
        elif value is not None and f.name in _FLOATS:
            value = _pack("f64", value)
        row[f.name] = value
    return row


def _unrow(cls, row: dict[str, Any]):
    return cls(**{k: (_unpack(v) if isinstance(v, dict) and k in _INTS + _FLOATS else v) for k, v in row.items()})


def encode(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def decode(raw: bytes) -> dict[str, Any]:
    return json.loads(raw.decode())


def data_rows(batch: list[TrainDatum]) -> list[dict[str, Any]]:
    return [_row(d) for d in batch]


def data_from(rows: list[dict[str, Any]]) -> list[TrainDatum]:
    return [_unrow(TrainDatum, r) for r in rows]


def sample_rows(groups: list[list[Sample]]) -> list[list[dict[str, Any]]]:
    return [[_row(s) for s in g] for g in groups]


def samples_from(rows: list[list[dict[str, Any]]]) -> list[list[Sample]]:
    return [[_unrow(Sample, s) for s in g] for g in rows]


def params_row(params: SamplingParams) -> dict[str, Any]:
    return dataclasses.asdict(params)


def params_from(row: dict[str, Any]) -> SamplingParams:
    return SamplingParams(**row)
