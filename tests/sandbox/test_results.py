"""Strict decoding of result frames: anything malformed is BadData with a reason, never another
exception (item 7 of issue 9, on the decoder alone; through the sandbox in test_jail.py)."""

from __future__ import annotations

import json
import random
import struct

import numpy as np
import pytest

from tttd.sandbox import results as R

TOKEN = "0123456789abcdef"


def frame(doc, payload=b"", token=TOKEN) -> bytearray:
    j = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    return bytearray(b"TTR1" + token.encode() + struct.pack(">Q", len(j)) + j + payload)


def decode(buf):
    return R.decode_program(*R.decode_frame(buf, TOKEN))


def test_round_trip_with_arrays():
    a = np.arange(6, dtype="<f8").reshape(2, 3)
    buf = frame({"value": {"a": {"__tttd_array__": 0}, "n": [1, None, "x"]},
                 "arrays": [{"dtype": "<f8", "shape": [2, 3]}]}, a.tobytes())
    v = decode(buf)
    assert v["n"] == [1, None, "x"] and v["a"].tolist() == a.tolist()
    v["a"][0, 0] = 7.0  # writable: verifiers may work in place


@pytest.mark.parametrize("shape", [[0, 10**30], [-1], [2**41], [1] * 33, ["3"], [1.5], None, {}, [True]])
def test_absurd_shapes(shape):
    with pytest.raises(R.BadData):
        decode(frame({"value": {"__tttd_array__": 0}, "arrays": [{"dtype": "<f8", "shape": shape}]}))


@pytest.mark.parametrize("doc", [
    {"value": 1}, {"value": 1, "arrays": {}}, {"value": 1, "arrays": [1]}, [1, 2], "x", None,
    {"value": {"__tttd_array__": 0}, "arrays": []},
    {"value": {"__tttd_array__": 5}, "arrays": [{"dtype": "<f8", "shape": [0]}]},
    {"value": [{"__tttd_array__": 0}, {"__tttd_array__": 0}], "arrays": [{"dtype": "<f8", "shape": [0]}]},
    {"value": 1, "arrays": [{"dtype": "|O", "shape": [1]}]},
    {"value": 1, "arrays": [{"dtype": "<U4", "shape": [1]}]},
    {"value": 1, "arrays": [{"dtype": ["<f8"], "shape": [1]}]},
])
def test_wrong_documents(doc):
    with pytest.raises(R.BadData):
        decode(frame(doc, b"\0" * 8))


def test_sizes_must_match_exactly():
    doc = {"value": {"__tttd_array__": 0}, "arrays": [{"dtype": "<i4", "shape": [4]}]}
    assert decode(frame(doc, b"\0" * 16)).tolist() == [0, 0, 0, 0]
    with pytest.raises(R.BadData, match="needs"):
        decode(frame(doc, b"\0" * 15))
    with pytest.raises(R.BadData, match="unexpected"):
        decode(frame(doc, b"\0" * 17))


def test_frame_level_forgeries():
    good = frame({"value": 1, "arrays": []})
    assert decode(good) == 1
    for bad in (bytearray(), good[:10], b"XXXX" + good[4:], frame({"value": 1, "arrays": []}, token="f" * 16),
                good[:-1], bytearray(good[:20]) + struct.pack(">Q", 2**63) + good[28:]):
        with pytest.raises(R.BadData):
            decode(bytearray(bad))
    with pytest.raises(R.BadData, match="nested"):
        decode(frame(b'{"value": ' + b"[" * 50_000 + b"]" * 50_000 + b', "arrays": []}'))
    with pytest.raises(R.BadData):
        decode(frame(b'{"value": 1' + b"9" * 5000 + b', "arrays": []}'))  # int too long to convert


def test_random_mutations_never_raise_anything_else():
    a = np.arange(5, dtype="<i8")
    base = frame({"value": {"x": {"__tttd_array__": 0}, "s": "é"}, "arrays": [{"dtype": "<i8", "shape": [5]}]},
                 a.tobytes())
    rng = random.Random(0)
    for _ in range(3000):
        buf = bytearray(base)
        for _ in range(rng.randint(1, 4)):
            i = rng.randrange(len(buf))
            op = rng.random()
            if op < 0.5:
                buf[i] = rng.randrange(256)
            elif op < 0.75:
                del buf[i:i + rng.randint(1, 8)]
            else:
                buf[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        try:
            decode(buf)
        except R.BadData:
            pass


def test_command_reports():
    rep, v, bad = R.decode_command({"exit": 0, "signal": None, "result": "present"}, memoryview(b'{"a": [1, 2]}'))
    assert v == {"a": [1, 2]} and bad == ""
    rep, v, bad = R.decode_command({"exit": 0, "signal": None, "result": "present"}, memoryview(b"{bad"))
    assert v is None and "malformed" in bad
    rep, v, bad = R.decode_command({"exit": 1, "signal": None, "result": "the result file is not a regular file"},
                                   memoryview(b""))
    assert v is None and "regular" in bad
    for doc in ({"exit": "0", "signal": None, "result": "absent"}, {"exit": 0}, [0]):
        with pytest.raises(R.BadData):
            R.decode_command(doc, memoryview(b""))
