"""Each backend's declared options (tttd.policy.backends) match its constructor, and both preflight
and build_policy use the declaration (issue 27)."""

from __future__ import annotations

import importlib
import inspect

import pytest

from tttd.config import ConfigError, resolve_config
from tttd.policy.backends import BACKENDS, REQUIRED, backend_spec


@pytest.mark.parametrize("name", sorted(BACKENDS))
def test_declaration_matches_the_constructor(name):
    spec = BACKENDS[name]
    module_name, _, cls_name = spec.target.partition(":")
    try:
        cls = getattr(importlib.import_module(module_name), cls_name)
    except ImportError as exc:
        pytest.skip(f"the {name} backend is not installed: {exc}")
    params = {p.name: p for p in inspect.signature(cls).parameters.values()}
    assert spec.names() == list(params), "declared options differ from the constructor's keywords"
    for opt in spec.options:
        default = params[opt.name].default
        expected = REQUIRED if default is inspect.Parameter.empty else default
        assert opt.default == expected or (opt.default is REQUIRED and expected is REQUIRED), opt.name
        assert opt.help and opt.type, opt.name
    assert spec.trainable == cls.trainable


def test_unknown_backend_option_is_one_line_listing_the_declared_options():
    from tttd.cli.preflight import check_run_config

    cfg = resolve_config(flag_values={"backend": "api", "model": "m", "train": False})
    cfg.backend_options = {"base_uri": "http://127.0.0.1:9/v1"}
    with pytest.raises(ConfigError) as err:
        check_run_config(cfg)
    msg = str(err.value)
    assert "\n" not in msg and "unknown backend option 'base_uri' for the api backend" in msg
    assert msg.endswith("its options: " + ", ".join(backend_spec("api").user_options()))
    assert "model" not in backend_spec("api").user_options()  # the run's own --model


def test_build_policy_hands_over_only_declared_run_settings(monkeypatch):
    import tttd.build as loop

    got = {}

    class Fake:
        def __init__(self, **kwargs):
            got.update(kwargs)

    monkeypatch.setattr(loop, "backend_class", lambda name: Fake)
    cfg = resolve_config(flag_values={"backend": "api", "model": "m", "train": False})
    cfg.backend_options = {"concurrency": 3}
    loop.build_policy(cfg)
    # api declares model and chat_template_kwargs of the run's settings, not lora_rank/seed/engine
    assert got == {"model": "m", "chat_template_kwargs": None, "concurrency": 3}


def test_unknown_backend_name():
    with pytest.raises(ValueError, match="unknown backend 'nope'; choose one of local, tinker, api"):
        backend_spec("nope")
