"""The ``tttd report`` subcommand."""

from __future__ import annotations

import argparse
from pathlib import Path


def cmd_report(args: argparse.Namespace) -> int:
    from tttd.rundir import RunDir

    from tttd.ablate.spec import is_ablation_dir  # issue 21: an ablation directory gets its own report

    if len(args.runs) == 1 and is_ablation_dir(args.runs[0]):
        from tttd.report.ablation import build_ablation_report

        print(f"report: {build_ablation_report(args.runs[0], args.out)}  (the ablation's table and curves)")
        return 0
    for p in args.runs:
        RunDir(p).check()  # one-line error before anything is written
    try:
        import jinja2  # noqa: F401
        import matplotlib  # noqa: F401
    except ImportError as exc:
        raise ImportError(f"tttd report needs the plot extra: pip install 'tttd[plot]' ({exc})") from None
    from tttd.report.build import build_report, default_out

    out = Path(args.out) if args.out else default_out(args.runs)
    runs = with_baselines(args.runs)
    html = build_report(runs, out)
    print(f"report: {html}  (self-contained; PNGs in {out}/)")
    return 0


def with_baselines(paths: list[str]) -> list[str]:
    """The runs, each followed by the frozen baseline ``tttd demo`` keeps inside its run directory
    (``RUN/baseline-frozen``), so the demo's report compares the two without extra arguments."""
    from tttd.rundir import NotARunError, RunDir

    out: list[str] = []
    for p in paths:
        out.append(p)
        base = Path(p) / "baseline-frozen"
        if base.is_dir() and str(base) not in paths:
            try:
                RunDir(base).check()
            except NotARunError:
                continue
            out.append(str(base))
    return out


def add_report_parser(sub) -> None:
    rp = sub.add_parser("report", help="an offline HTML report (plots, lineage, best solution) of runs",
                        description="Write one self-contained HTML file (images embedded) and PNGs from "
                                    "run directories alone; several runs are overlaid and tabulated.")
    rp.add_argument("runs", nargs="+", metavar="RUN", help="run directories, or one ablation directory (tttd ablate)")
    rp.add_argument("--out", help="output folder (default RUN/report, or reports/compare-<time> for several)")
    rp.set_defaults(func=cmd_report)
