"""``python -m tttd ...``: the ``tttd`` command, also one process per rank under ``torchrun``.

    torchrun --nproc-per-node N -m tttd run TASK ...

Outside torchrun (or with one rank) this is exactly the ``tttd`` console script. Under torchrun
every rank joins the job first (:func:`tttd.policy.distributed.start`, which also narrows each
rank to its own GPU before torch starts); rank 0 then runs the command as one process would and
ranks 1..N-1 serve its policy (:mod:`tttd.policy.dp_follower`) until rank 0 tells them to stop.
"""

from __future__ import annotations

import sys


def run_dir(argv: list[str]) -> str | None:
    """The run directory a ``run --out DIR`` or ``resume DIR`` command line names (None if none)."""
    for i, arg in enumerate(argv[:-1]):
        if arg == "--out":
            return argv[i + 1]
    if argv and argv[0] == "resume":
        return next((a for a in argv[1:] if not a.startswith("-")), None)
    return None


def main(argv: list[str] | None = None) -> int:
    from tttd.policy import distributed

    if not distributed.launched():
        from tttd.cli.main import main as cli_main

        return cli_main(argv)
    rank = distributed.world()[0]
    distributed.RUN_DIR = run_dir(sys.argv[1:] if argv is None else argv)
    try:
        distributed.timeout_s()  # a bad TTTD_DP_TIMEOUT_S is one line before anyone waits
        distributed.pin_gpu()
        distributed.start()
    except Exception as exc:  # noqa: BLE001 - ConfigError or DistributedError: one line
        print(f"tttd: error: rank {rank}: {exc}" if "rank" not in str(exc) else f"tttd: error: {exc}",
              file=sys.stderr)
        return 2 if type(exc).__name__ == "ConfigError" else 3
    if rank != 0:
        from tttd.policy.dp_follower import follow

        try:
            return follow()
        finally:
            distributed.shutdown()
    from tttd.cli.main import main as cli_main

    try:
        return cli_main(argv)
    finally:
        distributed.shutdown()


if __name__ == "__main__":
    sys.exit(main())
