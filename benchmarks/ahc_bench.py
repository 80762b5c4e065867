"""What racing saves on AHC evaluation, measured on recorded candidates.

    python benchmarks/ahc_bench.py                      # record 22 AHC058 candidates x 150 cases, then report
    python benchmarks/ahc_bench.py --cases 50 --record /tmp/ahc.json   # smaller; keep the recording
    python benchmarks/ahc_bench.py --replay /tmp/ahc.json              # report again from a recording

1. **Record.** Every candidate of ``benchmarks/ahc_candidates.py`` (22 AHC058 programs of varied
   quality, two of them buggy) is compiled once in the jail and run on EVERY case (no early stop)
   through the real sandbox and local pool; each case's verdict, score and CPU time (the
   candidate's user+sys, from the in-jail wait4 report) is recorded.
2. **Replay.** For every ordered pair (child, parent) of candidates whose parent was accepted on
   all cases (the parent's per-case scores are what racing compares to), the full evaluation
   (cases in order, stop at the first failure, as the paper) and racing (the same, plus the
   paired test of :func:`tttd.tasks.ahc.runner.can_still_win` at each stage end) are replayed
   from the recording. Printed: CPU-seconds per candidate for both, the saving, and whether racing
   ever discarded a child that the full evaluation shows beats its parent ("false discards").

CPU-seconds = the candidate's own CPU time (user+sys of the program, what the contest limits to
2 s per case). Each case run also costs a fixed sandbox start (harness, wrapper, bwrap; see
benchmarks/sandbox_bench.py), not included; the "case runs" line counts those. The recorded
programs are fast (a few ms to 0.5 s per case); with real contest programs, which use most of
their 2 s on every case, the saving in case runs is the saving in CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ahc_candidates import CANDIDATES, source  # noqa: E402

from tttd.executor import LocalExecutor  # noqa: E402
from tttd.tasks.ahc import cpp  # noqa: E402
from tttd.tasks.ahc.runner import can_still_win, parse_stages  # noqa: E402
from tttd.tasks.ahc.scorers import score_case  # noqa: E402
from tttd.tasks.ahc.tasks import load_inputs  # noqa: E402

PROBLEM = "ahc058"


def record(n_cases: int, workers: int, names=None) -> dict:
    seeds = list(range(n_cases))
    inputs = load_inputs(PROBLEM, seeds)
    out = {"problem": PROBLEM, "cases": n_cases, "workers": workers, "candidates": {}}
    with LocalExecutor(workers=workers) as pool:
        for name in (names or CANDIDATES):
            t0 = time.perf_counter()
            comp = cpp.read_compile(pool.submit(cpp.compile_program(source(name))).result())
            t1 = time.perf_counter()
            if not comp.ok:
                raise SystemExit(f"{name} does not compile:\n{comp.message}")
            results = pool.map([cpp.case_program(comp.binary, text) for text in inputs])
            t2 = time.perf_counter()
            cases = []
            for text, res in zip(inputs, results):
                run = cpp.read_case(res)
                status, score = run.status, 0
                if status == "AC":
                    verdict = score_case(PROBLEM, text, run.output)
                    status, score = ("AC", verdict.score) if verdict.ok else ("WA", 0)
                cases.append({"status": status, "score": score, "cpu_s": run.cpu_s})
            own = sum(c["cpu_s"] for c in cases)
            out["candidates"][name] = {"compile_wall_s": t1 - t0, "cases_wall_s": t2 - t1,
                                       "own_cpu_s": own, "cases": cases}
            ok = sum(c["status"] == "AC" for c in cases)
            mean = sum(c["score"] for c in cases) / n_cases
            print(f"recorded {name:14s} accepted {ok:3d}/{n_cases}  mean {mean:12,.1f}  "
                  f"CPU {own:6.2f} s  wall {t2 - t1:6.1f} s", flush=True)
    return out


def replay_one(child: list[dict], parent_scores: list[int], ends: list[int], z: float) -> tuple[int, bool]:
    """(case runs, raced out) for one child against one parent."""
    ran = 0
    stage = 0
    for i, case in enumerate(child):
        ran += 1
        if case["status"] != "AC":
            return ran, False
        if ran == ends[stage] and stage + 1 < len(ends):
            if not can_still_win([c["score"] for c in child[:ran]], parent_scores[:ran], z):
                return ran, True
            stage += 1
    return ran, False


def report(rec: dict, settings: list[tuple[str, float]]) -> None:
    n = rec["cases"]
    cands = rec["candidates"]
    print(f"\n{len(cands)} candidates x {n} cases ({PROBLEM}); CPU-s = the programs' own user+sys time")
    info = {}
    for name, c in cands.items():
        complete = all(x["status"] == "AC" for x in c["cases"])
        info[name] = dict(complete=complete, mean=sum(x["score"] for x in c["cases"]) / n,
                          scores=[x["score"] for x in c["cases"]], cases=c["cases"])
    parents = [p for p in info if info[p]["complete"]]

    def cpu(case_list, k):
        return sum(x["cpu_s"] for x in case_list[:k])

    for stages_spec, z in settings:
        ends = parse_stages(stages_spec, n)
        tot_full = tot_race = 0.0
        runs_full = runs_race = 0
        pairs = discards = false_discards = worse_kept = 0
        rows = []
        for name, c in info.items():
            f_cpu = r_cpu = 0.0
            k = 0
            for p in parents:
                if p == name:
                    continue
                k += 1
                full_runs, _ = replay_one(c["cases"], info[p]["scores"], [n], z)
                race_runs, raced = replay_one(c["cases"], info[p]["scores"], ends, z)
                f_cpu += cpu(c["cases"], full_runs)
                r_cpu += cpu(c["cases"], race_runs)
                runs_full += full_runs
                runs_race += race_runs
                pairs += 1
                beats = c["complete"] and c["mean"] > info[p]["mean"]
                if raced:
                    discards += 1
                    false_discards += beats
                elif c["complete"] and not beats:
                    worse_kept += 1
            tot_full += f_cpu
            tot_race += r_cpu
            rows.append((name, c["mean"], c["complete"], f_cpu / max(1, k), r_cpu / max(1, k)))
        print(f"\n== racing stages {ends[:-1]} then all {n}, z = {z:g} "
              f"({pairs} child/parent pairs, parents = the {len(parents)} fully accepted candidates)")
        if stages_spec == settings[0][0] and z == settings[0][1]:
            print(f"{'candidate':14s} {'mean score':>12s} {'ok':>3s} {'CPU-s full':>11s} {'CPU-s racing':>13s} {'saving':>7s}")
            for name, mean, ok, f, r in rows:
                print(f"{name:14s} {mean:12,.1f} {'y' if ok else 'n':>3s} {f:11.3f} {r:13.3f} {100 * (1 - r / f):6.1f}%")
        print(f"total CPU-s per pass over all pairs: full {tot_full:.1f}, racing {tot_race:.1f}, "
              f"saving {100 * (1 - tot_race / tot_full):.1f}%; case runs {runs_full} -> {runs_race} "
              f"({100 * (1 - runs_race / runs_full):.1f}% fewer)")
        print(f"discarded {discards}/{pairs} children; false discards (child beats its parent on all "
              f"{n} cases, yet raced out): {false_discards}; worse children still fully evaluated: {worse_kept}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", type=int, default=150, help="cases per candidate (seeds 0..N-1)")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--record", help="save the recording to this JSON file")
    ap.add_argument("--replay", help="report from this recording instead of recording")
    ap.add_argument("--smoke", action="store_true", help="tiny sizes: checks that the command runs (the tests use it); not a measurement")
    args = ap.parse_args()
    if args.smoke:
        args.cases, args.workers = 2, 1
    if args.replay:
        rec = json.loads(Path(args.replay).read_text())
    else:
        rec = record(args.cases, args.workers, names=list(CANDIDATES)[:2] if args.smoke else None)
        if args.record:
            Path(args.record).write_text(json.dumps(rec))
    settings = [("10,40", 2.0), ("10,40", 1.0), ("10,40", 3.0), ("10", 2.0), ("5,20,60", 2.0), ("20,60", 2.0)]
    report(rec, settings)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
