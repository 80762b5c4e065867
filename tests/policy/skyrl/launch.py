"""Start SkyRL's open Tinker-compatible server (``skyrl`` 0.3.0, JAX on the CPU) with THIS
interpreter; run inside the server's own virtual environment (see ``.ci/run``).

    python launch.py api --host H --port P --base-model DIR --backend jax ...
    python launch.py engine ...   (started by the api process; not by hand)

Two snags of skyrl 0.3.0 worked around here (test tooling only, not tttd code):
- on Python 3.11 pydantic refuses ``typing.TypedDict`` in ``skyrl/tinker/types.py``: alias the
  ``typing_extensions`` one first;
- the api process launches its engine with ``uv run``: launch it with ``sys.executable`` instead.
"""

from __future__ import annotations

import sys
import typing

import typing_extensions

typing.TypedDict = typing_extensions.TypedDict  # type: ignore[misc]


def run_engine(argv: list[str]) -> None:
    from skyrl.tinker import engine

    sys.argv = ["skyrl.tinker.engine", *argv]
    engine.main()


def run_api(argv: list[str]) -> None:
    import argparse

    import uvicorn
    from skyrl.tinker import api
    from skyrl.tinker.config import EngineConfig, add_model, config_to_argv
    from skyrl.utils.log import get_uvicorn_log_config

    api._build_uv_run_cmd_engine = lambda _parent, cfg: [  # noqa: SLF001
        sys.executable, __file__, "engine", *config_to_argv(cfg)]
    parser = argparse.ArgumentParser(description="SkyRL tinker API server")
    add_model(parser, EngineConfig)
    parser.add_argument("--host", type=str, default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)
    cfg = EngineConfig.model_validate({k: v for k, v in vars(args).items() if k in EngineConfig.model_fields})
    api.app.state.engine_config = cfg
    uvicorn.run(api.app, host=args.host, port=args.port, log_config=get_uvicorn_log_config())


if __name__ == "__main__":
    mode, rest = sys.argv[1], sys.argv[2:]
    {"api": run_api, "engine": run_engine}[mode](rest)
