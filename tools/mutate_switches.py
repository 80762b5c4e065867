#!/usr/bin/env python3
"""Prove that every user-settable option has a test that fails when the option is ignored.

For each row of ``tools/switch_mutations.py`` (switch, file, find -> replace, tests): patch a
temporary copy of the repository so that the option is silently dropped, run that row's tests
against the copy, restore the file. A row is ``killed`` when a test fails, ``SURVIVED`` when all
pass (the option has no test that notices it), ``STALE`` when ``find`` no longer occurs exactly
once (update the table), ``ERROR`` when pytest could not run the tests (collection error, unknown
test id). Exit status: 0 only when every row is killed.

    .venv/bin/python tools/mutate_switches.py            # all rows (minutes)
    .venv/bin/python tools/mutate_switches.py -k clip    # rows whose switch, file or description has "clip"
    .venv/bin/python tools/mutate_switches.py --check    # only check that every row still applies

The copy is imported through PYTHONPATH (checked before anything runs), so the working tree is
never modified. All the rows' tests first run once unmutated in the copy and must pass: a row can
only be killed by a test that passes without it. The tiny test model is shared with the working
tree's pytest cache (or ``TTTD_TEST_MODEL``) so it is not rebuilt.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

from switch_mutations import MUTATIONS, M  # noqa: E402

IGNORE = shutil.ignore_patterns(".git", ".venv*", "runs", "__pycache__", ".pytest_cache", "*.egg-info",
                                ".hypothesis", "node_modules", "*.pyc")


def copy_tree(dest: Path) -> Path:
    tree = dest / "tree"
    shutil.copytree(ROOT, tree, ignore=IGNORE, symlinks=True)
    models = ROOT / ".pytest_cache" / "d" / "tttd-models"
    if models.is_dir():  # the tiny test model, built by an earlier pytest run here
        shutil.copytree(models, tree / ".pytest_cache" / "d" / "tttd-models", symlinks=True)
    return tree


def environment(tree: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(tree) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.pop("TTTD_FAULT", None)
    return env


def pytest(tree: Path, env: dict[str, str], tests: list[str], timeout: float) -> tuple[int, str]:
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-rf", "--no-header", "-p", "no:randomly", *tests]
    try:
        done = subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        return -1, (exc.stdout or b"").decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
    return done.returncode, done.stdout + done.stderr


def occurrences(tree: Path, m: M) -> int:
    path = tree / m.file
    return path.read_text().count(m.find) if path.is_file() else 0


def run_one(tree: Path, env: dict[str, str], m: M, timeout: float) -> tuple[str, str]:
    """(status, detail) of one row; the file is restored whatever happens."""
    path = tree / m.file
    n = occurrences(tree, m)
    if n != 1:
        return "STALE", f"'find' occurs {n} times in {m.file}"
    original = path.read_text()
    try:
        path.write_text(original.replace(m.find, m.replace))
        rc, out = pytest(tree, env, list(m.tests), timeout)
    finally:
        path.write_text(original)
    if rc == 1:
        failed = sorted({line.split()[1].split("[")[0] for line in out.splitlines() if line.startswith("FAILED ")})
        return "killed", ", ".join(f.split("::")[-1] for f in failed) or "a failure"
    if rc == -1:
        return "killed", f"timed out after {timeout:.0f} s"
    if rc == 0:
        return "SURVIVED", "all its tests passed"
    tail = " | ".join(out.strip().splitlines()[-3:])
    return "ERROR", f"pytest exit {rc}: {tail[-300:]}"


def table(rows: list[tuple[M, str, str]]) -> str:
    head = ("switch", "mutation", "result")
    lines = [f"| {' | '.join(head)} |", "|---|---|---|"]
    for m, status, detail in rows:
        result = f"killed by {detail}" if status == "killed" else f"**{status}**: {detail}"
        lines.append(f"| {m.switch} | {m.what or m.replace} ({m.file}) | {result} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-k", dest="patterns", action="append",
                    help="only rows whose switch, file or description contains this (repeatable: any of them)")
    ap.add_argument("--check", action="store_true", help="only check that every row's 'find' occurs once")
    ap.add_argument("--timeout", type=float, default=900.0, help="seconds per pytest run (default 900)")
    ap.add_argument("--no-baseline", action="store_true", help="skip the unmutated run of the rows' tests")
    args = ap.parse_args(argv)

    rows = [m for m in MUTATIONS if not args.patterns
            or any(p.lower() in f"{m.switch} {m.file} {m.what}".lower() for p in args.patterns)]
    if not rows:
        print(f"no row matches {args.patterns!r}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="tttd-mutants-") as tmp:
        tree = copy_tree(Path(tmp))
        if args.check:
            stale = [(m, occurrences(tree, m)) for m in rows if occurrences(tree, m) != 1]
            for m, n in stale:
                print(f"STALE: {m.switch}: {m.find!r} occurs {n} times in {m.file}")
            print(f"{len(rows) - len(stale)}/{len(rows)} rows apply")
            return 1 if stale else 0
        env = environment(tree)
        where = subprocess.run([sys.executable, "-c", "import tttd; print(tttd.__file__)"], cwd=tree, env=env,
                               capture_output=True, text=True).stdout.strip()
        if not where.startswith(str(tree)):
            print(f"error: the copy is not what gets imported ({where!r}); is tttd installed non-editable "
                  "with a .pth that precedes PYTHONPATH?", file=sys.stderr)
            return 2
        tests = sorted({t for m in rows for t in m.tests})
        t0 = time.time()
        if not args.no_baseline:
            print(f"baseline: {len(tests)} test selections, unmutated ...", flush=True)
            rc, out = pytest(tree, env, tests, args.timeout * 2)
            if rc != 0:
                print(out[-4000:])
                print("error: the rows' tests fail without any mutation; fix them first", file=sys.stderr)
                return 2
        results = []
        for i, m in enumerate(rows, 1):
            t = time.time()
            status, detail = run_one(tree, env, m, args.timeout)
            results.append((m, status, detail))
            print(f"[{i}/{len(rows)}] {status:8s} {m.switch}: {m.what} ({time.time() - t:.0f} s) {detail}",
                  flush=True)
    print()
    print(table(results))
    bad = [r for r in results if r[1] != "killed"]
    print(f"\n{len(results) - len(bad)}/{len(results)} mutations killed in {time.time() - t0:.0f} s"
          + (f"; {len(bad)} not: " + ", ".join(f"{m.switch} ({s})" for m, s, _ in bad) if bad else ""))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
