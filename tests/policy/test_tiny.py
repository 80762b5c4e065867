"""Tests of the local tiny-model builder (tttd.policy.tiny)."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from tttd.policy import tiny  # noqa: E402

TEXTS = [
    "x = [3, 1, 4, 1, 5, 9, 2, 6]",
    "def f(a, b):\n    return a + b  # 12345.678\n",
    "Ünïcödé café naïve 2026 — ok?",
    "   leading spaces\n\n\ttabs and   runs    of spaces\r\n",
    "It's we'll THEY'RE don't 0.3809 1e-9",
    "<|im_start|>user\nhi<|im_end|>\n",
]


def test_folder_is_a_normal_hf_model(tiny_model_dir):
    names = {p.name for p in tiny_model_dir.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"} <= names
    config = json.loads((tiny_model_dir / "config.json").read_text())
    assert config["model_type"] == "qwen2"
    build = json.loads((tiny_model_dir / "tttd_build.json").read_text())
    assert 500_000 < build["parameters"] < 2_000_000
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, local_files_only=True)
    assert sum(p.numel() for p in model.parameters()) == build["parameters"]


def test_pretraining_lowered_the_loss(tiny_model_dir):
    info = json.loads((tiny_model_dir / "tttd_build.json").read_text())["pretrain"]
    assert info["steps"] > 0
    assert info["loss"] < info["first_loss"] - 0.3


def test_reloaded_tokenizer_gives_the_same_ids(tiny_model_dir):
    from tokenizers import Tokenizer
    from transformers import AutoTokenizer

    trained = Tokenizer.from_file(str(tiny_model_dir / "tokenizer.json"))
    reloaded = AutoTokenizer.from_pretrained(tiny_model_dir, local_files_only=True)
    assert type(reloaded).__name__ == "Qwen2Tokenizer"
    for text in TEXTS:
        ids = trained.encode(text, add_special_tokens=False).ids
        assert reloaded(text, add_special_tokens=False)["input_ids"] == ids, text
        assert reloaded.decode(ids) == trained.decode(ids, skip_special_tokens=False)
    # digits are split one per token, as Qwen2 does
    assert len(reloaded("123456", add_special_tokens=False)["input_ids"]) == 6


def test_a_different_pretokenizer_would_change_ids(tiny_model_dir):
    """Guards the reason for matching Qwen2's pre-tokeniser: the pipelines are not equivalent."""
    from tokenizers import Tokenizer, pre_tokenizers

    trained = Tokenizer.from_file(str(tiny_model_dir / "tokenizer.json"))
    plain = Tokenizer.from_file(str(tiny_model_dir / "tokenizer.json"))
    plain.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    text = "self.assertEqual(obj.__class__, x)\n    if x:\n        return 12345"
    assert plain.encode(text).ids != trained.encode(text).ids


def test_chat_template_and_special_tokens(tiny_model_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir, local_files_only=True)
    msgs = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "2 + 2?"}]
    text = tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
    assert text == tiny.chat_text(msgs, add_generation_prompt=True)
    assert text.endswith("<|im_start|>assistant\n")
    assert tok.eos_token == tiny.IM_END and tok.pad_token == tiny.PAD_TOKEN
    for special in tiny.SPECIAL_TOKENS:
        assert len(tok(special, add_special_tokens=False)["input_ids"]) == 1
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert ids[0] == tok.convert_tokens_to_ids(tiny.IM_START)
    gen = json.loads((tiny_model_dir / "generation_config.json").read_text())
    assert gen["eos_token_id"][0] == tok.convert_tokens_to_ids(tiny.IM_END)


def test_cached_model_is_reused(tiny_model_dir):
    before = (tiny_model_dir / "model.safetensors").stat().st_mtime_ns
    again = tiny.build_tiny_model(
        "tiny", cache_dir=tiny_model_dir.parent.parent, pretrain_steps=12, progress=False
    )
    assert again == tiny_model_dir
    assert (tiny_model_dir / "model.safetensors").stat().st_mtime_ns == before


def test_paths_follow_the_cache_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("TTTD_CACHE", str(tmp_path / "c"))
    assert tiny.tiny_model_path("tiny") == tmp_path / "c" / "models" / "tiny-v1"
    assert tiny.tiny_model_path("small").name == "small-v1"
    assert tiny.tiny_model_path("tiny", seed=3).name == "tiny-v1-seed3"
    assert tiny.tiny_model_path("tiny", pretrain_steps=5).name == "tiny-v1-pt5steps"
    monkeypatch.delenv("TTTD_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert tiny.tiny_model_path("tiny") == tmp_path / "x" / "tttd" / "models" / "tiny-v1"


def test_bad_arguments_are_rejected(tmp_path):
    with pytest.raises(ValueError, match="unknown tiny model size"):
        tiny.build_tiny_model("huge", cache_dir=tmp_path)
    with pytest.raises(ValueError, match="pretrain_seconds"):
        tiny.build_tiny_model("tiny", cache_dir=tmp_path, pretrain_seconds=-1)


def test_a_crash_leaves_no_half_written_model(tmp_path, monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("simulated crash")

    monkeypatch.setattr(tiny, "_random_model", boom)
    with pytest.raises(RuntimeError, match="simulated crash"):
        tiny.build_tiny_model("tiny", cache_dir=tmp_path, pretrain_steps=0, progress=False)
    models = tmp_path / "models"
    assert list(models.iterdir()) == []  # neither the target nor a temporary folder remains


def test_tokenizer_training_is_deterministic():
    spec = dict(tiny.SIZES["tiny"], tokenizer_chars=200_000, vocab_size=1024)
    texts = tiny._stdlib_texts(200_000)
    a = tiny._train_tokenizer(texts, [], spec)
    b = tiny._train_tokenizer(texts, [], spec)
    assert a.to_str() == b.to_str()


def test_corpus_has_digits_and_chats():
    import random

    rng = random.Random(0)
    digits = tiny._digit_docs(rng, 5)
    assert all(sum(ch.isdigit() for ch in d) > len(d) // 5 for d in digits)
    chats = tiny._chat_docs(rng, tiny._stdlib_texts(100_000), 5)
    assert all(d.count(tiny.IM_START) == d.count(tiny.IM_END) > 0 for d in chats)
    assert all("<|im_start|>assistant\n" in d for d in chats)


def test_a_cached_folder_from_another_recipe_is_not_reused(tmp_path):
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    recipe = {"size": "tiny", "version": tiny.VERSION, "revision": tiny.REVISION, "seed": 0, "pretrain_steps": None,
              "pretrain_seconds": None}
    (folder / "tttd_build.json").write_text(json.dumps({"recipe": dict(recipe, seed=1)}))
    assert not tiny._complete(folder, recipe)
    (folder / "tttd_build.json").write_text(json.dumps({"recipe": recipe}))
    assert tiny._complete(folder, recipe)
    (folder / "config.json").unlink()
    assert not tiny._complete(folder, recipe)


@pytest.mark.slow
def test_fixed_step_builds_are_deterministic(tmp_path):
    from safetensors.torch import load_file

    a = tiny.build_tiny_model("tiny", cache_dir=tmp_path / "a", pretrain_steps=2, progress=False)
    b = tiny.build_tiny_model("tiny", cache_dir=tmp_path / "b", pretrain_steps=2, progress=False)
    wa, wb = load_file(str(a / "model.safetensors")), load_file(str(b / "model.safetensors"))
    assert wa.keys() == wb.keys()
    assert all(bool((wa[k] == wb[k]).all()) for k in wa)
    assert (a / "tokenizer.json").read_text() == (b / "tokenizer.json").read_text()
