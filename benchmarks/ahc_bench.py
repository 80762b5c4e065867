"""What racing saves and loses on AHC evaluation, measured on recorded candidates.

    python benchmarks/ahc_bench.py --problem ahc058 --record /tmp/ahc058.json   # record, then report
    python benchmarks/ahc_bench.py --replay /tmp/ahc058.json                    # report again, no case runs
    python benchmarks/ahc_bench.py --replay /tmp/ahc058.json --parents top      # parents from the better half

1. **Record.** Every candidate of the problem's pool (``benchmarks/ahc_candidates.py``: 22 AHC058
   programs; ``benchmarks/ahc039_candidates.py``: 22 AHC039 programs; varied quality, two buggy
   ones each) is compiled once in the jail and run on EVERY case (no early stop) through the real
   sandbox and local pool; each case's verdict, score and CPU time (the candidate's user+sys, from
   the in-jail wait4 report) is recorded. Inputs: ``$TTTD_REFERENCE_DATA/ahc/<problem>/inputs``
   when present, else the built-in generator (the same files).
2. **Replay.** ``--simulate`` children (default 1,000) in groups of ``--group`` (default 8) under
   one parent each: the parent a fully accepted candidate drawn at random, the children distinct
   other candidates drawn at random (a recorded candidate stands for every child with its per-case
   scores). Each child is replayed twice from the recording, with no case run again: the full
   evaluation (cases in index order, stop at the first failure, as the paper) and racing (the
   child's own random case order, the same stop at a failure, plus the sequential test of
   :class:`tttd.racing.RaceTest` at each stage end against the parent's per-case scores).
   Printed per setting (stages, alpha): case-seconds per child for both and the ratio, case runs
   per child, good children lost (accepted on every case with a mean above the parent's, yet
   raced out), the false-drop rate (children with a mean >= the parent's that were raced out)
   with its 95% Clopper-Pearson interval, the ratio on the other children alone, and the children
   the archive's flush would keep (the best 2 accepted of a group) that racing drops.

Case-seconds = the candidate's own CPU time (user+sys of the program, what the contest limits to
2 s per case). Each case run also costs a fixed sandbox start (harness, wrapper, bwrap; see
benchmarks/sandbox_bench.py), not included; the "runs/child" column counts those. The recorded
programs are fast (a few ms to 0.5 s per case); with real contest programs, which use most of
their 2 s on every case, the saving in case runs is the saving in CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import ahc039_candidates  # noqa: E402
import ahc_candidates  # noqa: E402

from tttd.executor import LocalExecutor  # noqa: E402
from tttd.tasks.ahc import cpp  # noqa: E402
from tttd.racing import RaceTest  # noqa: E402
from tttd.tasks.ahc.runner import parse_stages  # noqa: E402
from tttd.tasks.ahc.scorers import score_case  # noqa: E402
from tttd.tasks.ahc.tasks import load_inputs  # noqa: E402

POOLS = {"ahc058": ahc_candidates, "ahc039": ahc039_candidates}


def inputs_dir(problem: str) -> str | None:
    """The public inputs under ``$TTTD_REFERENCE_DATA/ahc/<problem>/inputs`` when present (the
    same files the generator makes; reading them skips generating AHC039's large cases)."""
    base = os.environ.get("TTTD_REFERENCE_DATA")
    path = Path(base) / "ahc" / problem / "inputs" if base else None
    return str(path) if path is not None and path.is_dir() else None


def record(problem: str, n_cases: int, workers: int, names=None) -> dict:
    seeds = list(range(n_cases))
    inputs = load_inputs(problem, seeds, inputs_dir(problem))
    pool_mod = POOLS[problem]
    source = pool_mod.source
    out = {"problem": problem, "cases": n_cases, "workers": workers, "candidates": {}}
    with LocalExecutor(workers=workers) as pool:
        for name in (names or pool_mod.CANDIDATES):
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
                    verdict = score_case(problem, text, run.output)
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


def replay(cases: list[dict], order: list[int], ends: list[int], test: "RaceTest | OldZRule | None",
           parent_scores: list[int]) -> tuple[int, float, bool]:
    """(case runs, case CPU-s, raced out) of one child evaluated on ``order``: stop at the first
    case not accepted (the paper's rule, with or without racing); with ``test``, stop at a stage
    end where the test drops the child against its parent's scores on the same cases."""
    cpu, stage = 0.0, 0
    for ran, i in enumerate(order, 1):
        cpu += cases[i]["cpu_s"]
        if cases[i]["status"] != "AC":
            return ran, cpu, False
        if test is not None and ran == ends[stage] and stage + 1 < len(ends):
            seen = order[:ran]
            if test.drop([cases[j]["score"] for j in seen], [parent_scores[j] for j in seen]):
                return ran, cpu, True
            stage += 1
    return len(order), cpu, False


def clopper_pearson(k: int, n: int, conf: float = 0.95) -> tuple[float, float]:
    from scipy.stats import beta

    if n == 0:
        return 0.0, 1.0
    lo = 0.0 if k == 0 else float(beta.ppf((1 - conf) / 2, k, n - k + 1))
    hi = 1.0 if k == n else float(beta.ppf(1 - (1 - conf) / 2, k + 1, n - k))
    return lo, hi


class OldZRule:
    """The rule racing used before issue 35, for comparison: drop when the mean paired difference
    is more than ``z`` standard errors below zero (no finite-population, skewness or multiple-look
    terms); it ran the cases in index order ("z=2/index"), which gives each child/parent pair one
    fixed outcome; "z=2" replays it on random orders like the new test, to measure its error rate."""

    def __init__(self, z: float):
        self.z = z

    def drop(self, child: list[int], parent: list[int]) -> bool:
        d = [float(c) - float(p) for c, p in zip(child, parent)]
        n = len(d)
        mean = sum(d) / n
        if n < 2:
            return mean < 0
        var = sum((x - mean) ** 2 for x in d) / (n - 1)
        return mean + self.z * (var / n) ** 0.5 < 0


def simulate(rec: dict, stages_spec: str, alpha: float | str, n_sim: int, group: int, seed: int,
             parent_pool: str = "all") -> dict:
    """``n_sim`` simulated children in groups of ``group`` under one parent each (the parent: a
    fully accepted candidate drawn at random, from all of them or, with ``parent_pool="top"``,
    from the better half by mean; the children: distinct other candidates drawn at random), each
    replayed twice from the recording: the full evaluation (index order) and racing (a random
    order of its own)."""
    n = rec["cases"]
    info = {}
    for name, c in rec["candidates"].items():
        complete = all(x["status"] == "AC" for x in c["cases"])
        info[name] = dict(complete=complete, mean=sum(x["score"] for x in c["cases"]) / n,
                          scores=[x["score"] for x in c["cases"]], cases=c["cases"])
    parents = sorted((p for p in info if info[p]["complete"]), key=lambda p: -info[p]["mean"])
    if parent_pool == "top":
        parents = parents[:max(1, len(parents) // 2)]
    ends = parse_stages(stages_spec, n)
    old = isinstance(alpha, str)  # "z=2": the rule before issue 35 ("z=2/index": in index order, as it ran)
    index_order = old and alpha.endswith("/index")
    test = OldZRule(float(alpha[2:].split("/")[0])) if old else RaceTest(alpha, len(ends) - 1, n)
    rng = random.Random(seed)
    t = dict(cpu_full=0.0, cpu_race=0.0, runs_full=0, runs_race=0, children=0, good=0, good_lost=0,
             null=0, null_dropped=0, dropped=0, worse=0, worse_cpu_full=0.0, worse_cpu_race=0.0,
             topk=0, topk_lost=0)
    for _ in range(n_sim // group):
        p = rng.choice(parents)
        pmean, pscores = info[p]["mean"], info[p]["scores"]
        kids = rng.sample([x for x in info if x != p], group)
        kept_full, raced = [], set()
        for kid in kids:
            k = info[kid]
            order = list(range(n))
            rng.shuffle(order)
            f_runs, f_cpu, _ = replay(k["cases"], list(range(n)), [n], None, pscores)
            r_runs, r_cpu, out = replay(k["cases"], list(range(n)) if index_order else order, ends, test, pscores)
            t["cpu_full"] += f_cpu
            t["cpu_race"] += r_cpu
            t["runs_full"] += f_runs
            t["runs_race"] += r_runs
            t["children"] += 1
            t["dropped"] += out
            if out:
                raced.add(kid)
            if k["complete"]:
                kept_full.append(kid)
                t["good"] += k["mean"] > pmean
                t["good_lost"] += out and k["mean"] > pmean
                t["null"] += k["mean"] >= pmean
                t["null_dropped"] += out and k["mean"] >= pmean
            if not (k["complete"] and k["mean"] > pmean):
                t["worse"] += 1
                t["worse_cpu_full"] += f_cpu
                t["worse_cpu_race"] += r_cpu
        top = sorted(kept_full, key=lambda x: -info[x]["mean"])[:TOPK]  # the archive's flush rule
        t["topk"] += len(top)
        t["topk_lost"] += sum(x in raced for x in top)
    return t


TOPK = 2  # the archive's default topk_children
#: (stages, alpha) replayed; the first is the documented recommendation
SETTINGS = [("30,60,100", 0.01), ("30,60,100", 0.05), ("30,60,100", 0.001), ("20,40,80", 0.01),
            ("10,20,40,80", 0.01), ("10,40", 0.01), ("10,40", "z=2/index"),
            ("10,40", "z=2")]


def report(rec: dict, settings: list[tuple[str, float]], n_sim: int, group: int, seed: int,
           parent_pool: str) -> None:
    n = rec["cases"]
    print(f"\n{len(rec['candidates'])} candidates x {n} cases ({rec['problem']}); case-s = the programs' own "
          f"user+sys CPU time per case, recorded once and replayed; {n_sim} simulated children in groups of "
          f"{group} (parents: {parent_pool}), seed {seed}")
    print(f"{'stages':>16s} {'alpha':>9s} {'case-s/child full':>17s} {'racing':>8s} {'fewer':>6s} "
          f"{'runs/child':>11s} {'dropped':>8s} {'good lost':>10s} {'false-drop rate [95% CP]':>26s} "
          f"{'worse: fewer':>12s} {'top-2 lost':>11s} {'cap':>6s}")
    for stages_spec, alpha in settings:
        t = simulate(rec, stages_spec, alpha, n_sim, group, seed, parent_pool)
        c = t["children"]
        lo, hi = clopper_pearson(t["null_dropped"], t["null"])
        rate = t["null_dropped"] / max(1, t["null"])
        print(f"{stages_spec:>16s} {alpha!s:>9s} {t['cpu_full'] / c:17.4f} {t['cpu_race'] / c:8.4f} "
              f"{t['cpu_full'] / t['cpu_race']:5.2f}x {t['runs_full'] / c:5.1f}->{t['runs_race'] / c:5.1f} "
              f"{t['dropped']:8d} {t['good_lost']:4d}/{t['good']:<5d} "
              f"{t['null_dropped']:3d}/{t['null']:<4d}={rate:.4f} [{lo:.4f},{hi:.4f}] "
              f"{t['worse_cpu_full'] / max(1e-12, t['worse_cpu_race']):11.2f}x {t['topk_lost']:4d}/{t['topk']:<5d} "
              f"{t['cpu_full'] / max(1e-12, t['cpu_full'] - t['worse_cpu_full']):5.2f}x")
    print("good = a child accepted on every case whose mean beats its parent's; false drop = a child whose "
          "mean is >= its parent's, raced out (the test's error); worse: the saving on the other children; "
          f"top-{TOPK} lost = children the archive would keep at flush (best {TOPK} accepted of the group) "
          "that racing drops; cap = the ratio if every child but the good ones cost nothing (good children "
          "run every case: their value is the mean over all of them)")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--problem", choices=sorted(POOLS), default="ahc058")
    ap.add_argument("--cases", type=int, default=150, help="cases per candidate (seeds 0..N-1)")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--record", help="save the recording to this JSON file")
    ap.add_argument("--replay", help="report from this recording instead of recording")
    ap.add_argument("--simulate", type=int, default=1000, help="simulated children per setting")
    ap.add_argument("--group", type=int, default=8, help="children per simulated parent (one group)")
    ap.add_argument("--seed", type=int, default=0, help="the simulation's pairings and case orders")
    ap.add_argument("--parents", choices=("all", "top"), default="all",
                    help="draw parents from all fully accepted candidates or from their better half")
    ap.add_argument("--smoke", action="store_true", help="tiny sizes: checks that the command runs (the tests use it); not a measurement")
    args = ap.parse_args()
    if args.smoke:
        args.cases, args.workers, args.simulate = 2, 1, 4
    if args.replay:
        rec = json.loads(Path(args.replay).read_text())
    else:
        names = list(POOLS[args.problem].CANDIDATES)[:2] if args.smoke else None
        rec = record(args.problem, args.cases, args.workers, names=names)
        if args.record:
            Path(args.record).write_text(json.dumps(rec))
    group = max(1, min(args.group, len(rec["candidates"]) - 1))
    report(rec, SETTINGS, args.simulate, group, args.seed, args.parents)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
