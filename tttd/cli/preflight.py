"""Checks of a resolved run configuration that need the task or the backend, done before anything
is written: a bad option is one line and exit 2, never a traceback or a half-made run directory.

What is checked here (RunConfig.validate checks the plain values):

- the task's options against the options its factory declares (``tttd.task.check_task_options``);
- the backend's options against its declaration (:mod:`tttd.policy.backends`);
- a frozen backend (``trainable = False``, e.g. ``api``) with ``train`` on: refused, because
  nothing would train and the run would silently be a frozen baseline;
- the ``api`` backend without an endpoint: refused (never a silent fall-back to a public service).

Reachability of a remote endpoint is checked when the policy is built (``build_policy`` calls
the policy's ``check_reachable``), which also happens before the run directory is created.
"""

from __future__ import annotations

import os

from tttd.config import ConfigError, RunConfig


def check_run_config(cfg: RunConfig) -> None:
    """Raise :class:`ConfigError` (one line) for options the backend cannot take (its
    declaration in :mod:`tttd.policy.backends`)."""
    from tttd.policy import backend_class
    from tttd.policy.backends import backend_spec

    spec = backend_spec(cfg.backend)
    from tttd.policy.distributed import refuse_backend

    refusal = refuse_backend(cfg.backend)  # torchrun with a backend that cannot use it (issue 34)
    if refusal:
        raise ConfigError(refusal)
    if cfg.backend == "local":  # issue 33: a model name that is nowhere is one line, before torch loads
        from tttd.policy.models import check

        from tttd.policy.fsdp import check_parallel

        try:
            check(cfg.backend_options.get("model", cfg.model))
            check_parallel(cfg.backend_options.get("parallel", "replicate"), cfg.backend_options.get("engine", "hf"))
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
    try:
        backend_class(cfg.backend)  # installed? (its extra's packages import)
    except ImportError as exc:
        raise ConfigError(f"the {cfg.backend} backend is not installed: {exc}") from None
    unknown = sorted(set(cfg.backend_options) - set(spec.names()))
    if unknown:
        raise ConfigError(
            f"unknown backend option{'s' if len(unknown) > 1 else ''} "
            f"{', '.join(map(repr, unknown))} for the {cfg.backend} backend; "
            f"its options: {', '.join(spec.user_options()) or 'none'}")
    if cfg.train and not spec.trainable:
        raise ConfigError(
            f"the {cfg.backend} backend is frozen (it cannot train): add --no-train (or train = "
            "false) to run a frozen baseline")
    if cfg.backend == "api" and not (cfg.backend_options.get("base_url")
                                     or os.environ.get("OPENAI_BASE_URL")):
        raise ConfigError(
            "the api backend needs an endpoint: --backend-option base_url=http://HOST:PORT/v1 "
            "(or OPENAI_BASE_URL)")
