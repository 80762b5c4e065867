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
2. **Replay**, as the loop runs racing (issue 35: a child is dropped only when shown unable to
   enter the archive's top-k under its parent). ``--simulate`` children (default 1,000): parents
   (fully accepted candidates drawn at random), each expanded ``E`` times in succession
   (``--expansions``, default 1,4,16: PUCT selects a parent again when its children do not beat
   it, see 3) by a group of ``--group`` (default 8) distinct other candidates drawn at random (a
   recorded candidate stands for every child with its per-case scores). The parent keeps its best
   2 children so far (``topk_children``); each group races against the 2nd of them (the rival,
   :meth:`tttd.archive.Archive.rival`; none while fewer than 2 are kept: the first group of every
   parent runs in full), and, side by side on the same plan, against the parent (the rule
   before). Each child is replayed from the recording, no case run again: the full evaluation
   (index order, stop at the first failure, as the paper) and racing (its own random case order,
   the same stop at a failure, plus :class:`tttd.racing.RaceTest` at each stage end). Printed
   per E, setting (stages, alpha) and bar: case-seconds per child (full, racing, ratio), case runs
   per child, good children lost (a child the full evaluation would put in the parent's top-2,
   raced out) as the false-drop rate with its 95% Clopper-Pearson interval, the children the
   group's flush would keep that racing drops, the test's own error against its bar, the cap (the
   ratio if every child that has a bar and is not good were dropped at its first look) and where
   racing's case-seconds go. ``--seed 0,1,2,3`` pools several simulations.
3. **PUCT re-expansion**: how often the loop launches a child whose parent already keeps 2
   children (the only children racing can save on), with tttd's own Archive and child values
   drawn from the recording or from a synthetic plateau (:func:`puct_share`).

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


def replay(cases: list[dict], order: list[int], ends: list[int], test: "RaceTest | None",
           bar_scores: list[int] | None) -> tuple[int, float, bool]:
    """(case runs, case CPU-s, raced out) of one child evaluated on ``order``: stop at the first
    case not accepted (the paper's rule, with or without racing); with ``test``, stop at a stage
    end where the test drops the child against the bar's scores (rival or parent) on the same cases."""
    cpu, stage = 0.0, 0
    for ran, i in enumerate(order, 1):
        cpu += cases[i]["cpu_s"]
        if cases[i]["status"] != "AC":
            return ran, cpu, False
        if test is not None and ran == ends[stage] and stage + 1 < len(ends):
            seen = order[:ran]
            if test.drop([cases[j]["score"] for j in seen], [bar_scores[j] for j in seen]):
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


def load_info(rec: dict) -> dict:
    n = rec["cases"]
    info = {}
    for name, c in rec["candidates"].items():
        complete = all(x["status"] == "AC" for x in c["cases"])
        info[name] = dict(complete=complete, mean=sum(x["score"] for x in c["cases"]) / n,
                          scores=[x["score"] for x in c["cases"]], cases=c["cases"])
    return info


def plan(info: dict, n: int, n_sim: int, group: int, expansions: int, seed: int, parent_pool: str) -> list:
    """The simulated children, the same for every rule and setting: ``n_sim // (group *
    expansions)`` parents (fully accepted candidates drawn at random, from all of them or, with
    ``parent_pool="top"``, from the better half by mean), each expanded ``expansions`` times in
    succession. Per group: ``group + TOPK`` distinct other candidates in a random order, each with
    its own random case order; the group is the first ``group`` of them not kept under the parent
    at launch (a new program is not a copy of a kept one: with 22 recorded programs, copies would
    otherwise be 1 child in 10, tying the rival on every case)."""
    parents = sorted((p for p in info if info[p]["complete"]), key=lambda p: -info[p]["mean"])
    if parent_pool == "top":
        parents = parents[:max(1, len(parents) // 2)]
    rng = random.Random(seed)
    out = []
    for _ in range(max(1, n_sim // (group * expansions))):
        p = rng.choice(parents)
        groups = []
        for _ in range(expansions):
            kids = rng.sample([x for x in info if x != p], min(group + TOPK, len(info) - 1))
            orders = []
            for _ in kids:
                order = list(range(n))
                rng.shuffle(order)
                orders.append(order)
            groups.append(list(zip(kids, orders)))
        out.append((p, groups))
    return out


class _Drop:
    """A test that drops every child at its first look (for the "perfect test" bound)."""

    def drop(self, child, bar) -> bool:
        return True


DROP = _Drop()

#: where the racing case-seconds go (simulate's ``cost_*`` keys)
COSTS = ("no bar", "good", "failed", "dropped", "kept going")


def simulate(info: dict, n: int, parents: list, stages_spec: str, alpha: float, bar: str, group: int) -> dict:
    """Replay ``parents`` (from :func:`plan`) as the loop runs them: each group is launched against
    the archive as it stood after the previous group (its parent's kept children: the best
    ``TOPK`` so far, by mean, earlier first on ties, as Archive.flush); every child races against
    the bar (``"rival"``: the TOPK-th kept child, none while fewer are kept, as
    Archive.rival; ``"parent"``: the parent, the rule before) and is compared with its full
    evaluation (index order, no racing). After the group, the parent keeps the best TOPK of its
    kept children and the group's children that were accepted on every case and not raced out.
    ``good``: accepted on every case and, at launch, fewer than TOPK kept or a mean above the
    TOPK-th kept child's: the full evaluation would put it in the parent's top-k. ``cost_*``: the
    racing case-seconds of the children with no bar, the good ones, those stopped by a failing
    case, those raced out, and the others (not good, yet not shown worse); ``cpu_perfect``: the
    racing case-seconds if every child that has a bar and is not good were dropped at the first
    look (the most any test with these stages can save)."""
    ends = parse_stages(stages_spec, n)
    test = RaceTest(alpha, len(ends) - 1, n)
    t = dict(cpu_full=0.0, cpu_race=0.0, runs_full=0, runs_race=0, children=0, raced=0, dropped=0,
             good=0, good_lost=0, kept_lost=0, null=0, null_dropped=0, cpu_perfect=0.0,
             **{f"cost_{c}": 0.0 for c in COSTS})
    for p, groups in parents:
        kept: list[tuple[float, int, str]] = []  # (-mean, insertion number, name): best first
        serial = 0
        for drawn in groups:
            rival = kept[TOPK - 1][2] if len(kept) >= TOPK else None
            bar_name = p if bar == "parent" else rival
            bar_scores = info[bar_name]["scores"] if bar_name is not None else None
            names = {x[2] for x in kept}
            survivors, full_group = [], []
            for kid, order in [x for x in drawn if x[0] not in names][:group]:
                k = info[kid]
                f_runs, f_cpu, _ = replay(k["cases"], list(range(n)), [n], None, bar_scores)
                if bar_scores is None:
                    r_runs, r_cpu, out = f_runs, f_cpu, False
                else:
                    r_runs, r_cpu, out = replay(k["cases"], order, ends, test, bar_scores)
                    t["raced"] += 1
                    t["null"] += k["complete"] and k["mean"] >= info[bar_name]["mean"]
                    t["null_dropped"] += out and k["complete"] and k["mean"] >= info[bar_name]["mean"]
                good = k["complete"] and (rival is None or k["mean"] > info[rival]["mean"])
                t["cpu_full"] += f_cpu
                t["cpu_race"] += r_cpu
                t["runs_full"] += f_runs
                t["runs_race"] += r_runs
                t["children"] += 1
                t["dropped"] += out
                t["good"] += good
                t["good_lost"] += good and out
                # a perfect test with these stages: every child that cannot enter out at its first look
                perfect = r_cpu if bar_scores is None or good else replay(k["cases"], order, ends, DROP, bar_scores)[1]
                t["cpu_perfect"] += perfect
                kind = ("no bar" if bar_scores is None else "dropped" if out else "good" if good
                        else "failed" if not k["complete"] else "kept going")
                t[f"cost_{kind}"] += r_cpu
                if k["complete"]:
                    full_group.append((-k["mean"], serial, kid, out))
                    if not out:
                        survivors.append((-k["mean"], serial, kid))
                    serial += 1
            full_top = sorted(kept + [x[:3] for x in full_group])[:TOPK]  # what the full evaluation keeps
            t["kept_lost"] += sum(1 for x in full_group if x[3] and x[:3] in full_top)
            kept = sorted(kept + survivors)[:TOPK]
    return t


def puct_share(info: dict, steps: int, groups: int, group_size: int, seed: int,
               p_better: float | None = None) -> dict:
    """How often PUCT expands a parent again, with tttd's own Archive run as the loop runs it
    (``groups`` empty roots; per step: select ``groups`` starts, one update + prune_children per
    group, one flush; PUCT c=1, group visit counting, top-TOPK children, size cap 1,000). A child
    of an empty root gets a random fully accepted candidate's mean. A child of a state with value
    v gets, with ``p_better`` None, v * mean_b / mean_a for a random pair (a, b) of fully accepted
    recorded candidates (about half the children beat their parent, as in the replay); with
    ``p_better`` = p, v * (1 + U(0, 0.05)) with probability p, else v * (1 - U(0, 0.3)): a
    synthetic stand-in for a run whose children rarely improve, as late in a real run. Only the
    archive's dynamics are measured, not a policy. Returns the share of children launched with a
    rival (their parent already keeps TOPK children: the only children racing can save on), the
    parents expanded and the most groups one parent got."""
    from collections import Counter

    from tttd.archive import Archive
    from tttd.types import State

    means = [info[x]["mean"] for x in info if info[x]["complete"]]
    rng = random.Random(seed)
    arch = Archive(topk_children=TOPK, seed=seed)
    arch.add_roots([State(id=f"root-{i}", value=None) for i in range(groups)])
    with_rival = children = 0
    expanded: Counter = Counter()
    for step in range(steps):
        starts = arch.select(groups)
        has_rival = [arch.rival(st.id) is not None for st in starts]  # as launched: before any update
        for st, rival in zip(starts, has_rival):
            expanded[st.id] += 1
            children += group_size
            with_rival += group_size * rival
            kids = []
            for _ in range(group_size):
                if st.value is None:
                    v = rng.choice(means)
                elif p_better is None:
                    x, y = rng.sample(means, 2)
                    v = st.value * y / x
                elif rng.random() < p_better:
                    v = st.value * (1 + rng.uniform(0, 0.05))
                else:
                    v = st.value * (1 - rng.uniform(0, 0.3))
                kids.append(State(id="", value=v, key=f"{step}-{st.id}-{len(kids)}"))
            arch.update(st.id, kids, step)
            arch.prune_children(st.id)
        arch.flush()
    return dict(share=with_rival / max(1, children), children=children, parents=len(expanded),
                most=max(expanded.values()))


def report_puct(info: dict, problem: str, seed: int, sizes=((16, 8), (50, 64))) -> None:
    """``sizes``: (steps, group size) pairs; the defaults: about 1,000 children in groups of 8, and
    the paper's 50 steps x 8 groups x 64."""
    if sum(info[x]["complete"] for x in info) < 2:
        print("\nPUCT re-expansion: needs two fully accepted candidates")
        return
    print(f"\nPUCT re-expansion ({problem}; tttd.archive.Archive as the loop runs it, 8 empty roots, "
          f"8 groups per step; the share of children launched with a rival = the most racing can act on)")
    print(f"{'children':>28s} {'group':>5s} {'steps':>5s} {'with a rival':>12s} {'parents':>7s} {'most groups':>11s}")
    for p_better in (None, 0.1, 0.02, 0.005, 0.0):
        for steps, gsize in sizes:
            r = puct_share(info, steps, 8, gsize, seed, p_better)
            what = "recorded pairs (~half better)" if p_better is None else f"p(better) = {p_better}"
            print(f"{what:>28s} {gsize:5d} {steps:5d} {r['share']:12.3f} {r['parents']:7d} {r['most']:11d}")


TOPK = 2  # the archive's default topk_children
#: (stages, alpha) replayed; the first is the documented recommendation
SETTINGS = [("10,20,40,80", 0.01), ("30,60,100", 0.01), ("10,20,40,80", 0.05)]
EXPANSIONS = (1, 4, 16)


def report(rec: dict, settings: list[tuple[str, float]], n_sim: int, group: int, seeds: list[int],
           parent_pool: str, expansions=EXPANSIONS) -> None:
    n = rec["cases"]
    info = load_info(rec)
    print(f"\n{len(rec['candidates'])} candidates x {n} cases ({rec['problem']}); case-s = the programs' own "
          f"user+sys CPU time per case, recorded once and replayed; {n_sim} simulated children, groups of "
          f"{group} per seed, E groups in succession per parent (parents: {parent_pool}), seeds "
          f"{','.join(map(str, seeds))} (pooled), top-{TOPK}")
    print(f"{'E':>3s} {'stages':>12s} {'alpha':>6s} {'bar':>6s} {'case-s/child full':>17s} {'racing':>8s} "
          f"{'fewer':>6s} {'runs/child':>11s} {'raced':>6s} {'dropped':>7s} {'good lost [95% CP]':>27s} "
          f"{'kept lost':>9s} {'test error vs its bar [95% CP]':>31s} {'cap':>6s}  racing case-s by child")
    for e in expansions:
        plans = [plan(info, n, n_sim, group, e, seed, parent_pool) for seed in seeds]
        for stages_spec, alpha in settings:
            for bar in ("rival", "parent"):
                t: dict = {}
                for parents in plans:  # seeds pooled: the totals add up
                    for key, v in simulate(info, n, parents, stages_spec, alpha, bar, group).items():
                        t[key] = t.get(key, 0) + v
                c = t["children"]
                glo, ghi = clopper_pearson(t["good_lost"], t["good"])
                elo, ehi = clopper_pearson(t["null_dropped"], t["null"])
                print(f"{e:3d} {stages_spec:>12s} {alpha!s:>6s} {bar:>6s} {t['cpu_full'] / c:17.4f} "
                      f"{t['cpu_race'] / c:8.4f} {t['cpu_full'] / t['cpu_race']:5.2f}x "
                      f"{t['runs_full'] / c:5.1f}->{t['runs_race'] / c:5.1f} {t['raced']:6d} {t['dropped']:7d} "
                      f"{t['good_lost']:3d}/{t['good']:<4d}={t['good_lost'] / max(1, t['good']):.4f} "
                      f"[{glo:.4f},{ghi:.4f}] {t['kept_lost']:9d} "
                      f"{t['null_dropped']:3d}/{t['null']:<4d}={t['null_dropped'] / max(1, t['null']):.4f} "
                      f"[{elo:.4f},{ehi:.4f}] {t['cpu_full'] / t['cpu_perfect']:5.2f}x  "
                      + " ".join(f"{c} {t['cost_' + c] / t['cpu_race']:.0%}" for c in COSTS))
    print(f"E = groups per parent in succession (E=1: every child is in its parent's first group, no rival yet); "
          f"raced = children with a bar to race against; good = accepted on every case and, at launch, fewer "
          f"than {TOPK} children kept under the parent or a mean above the {TOPK}-th kept (the full evaluation "
          f"would put it in the parent's top-{TOPK}); good lost = good children raced out (the false-drop rate "
          f"the issue asks for); kept lost = children the full evaluation would keep after their group's flush "
          f"that racing drops; test error = children with a mean >= the bar's that were raced out; cap = the "
          f"ratio if every child with a bar that is not good were dropped at the first look (good children "
          f"and children with no bar run every case); racing case-s by child: the share spent on children "
          f"with no bar, good ones, ones stopped by a failing case, raced out, and the others (shown neither)")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--problem", choices=sorted(POOLS), default="ahc058")
    ap.add_argument("--cases", type=int, default=150, help="cases per candidate (seeds 0..N-1)")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--record", help="save the recording to this JSON file")
    ap.add_argument("--replay", help="report from this recording instead of recording")
    ap.add_argument("--simulate", type=int, default=1000, help="simulated children per setting")
    ap.add_argument("--group", type=int, default=8, help="children per simulated parent (one group)")
    ap.add_argument("--seed", type=lambda v: [int(x) for x in v.split(",")], default=[0],
                    help="the simulation's pairings and case orders; several (0,1,2,3): pooled")
    ap.add_argument("--parents", choices=("all", "top"), default="all",
                    help="draw parents from all fully accepted candidates or from their better half")
    ap.add_argument("--expansions", type=lambda v: [int(x) for x in v.split(",")], default=list(EXPANSIONS),
                    help="groups in succession per parent, comma-separated (default 1,4,16)")
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
    report(rec, SETTINGS, args.simulate, group, args.seed, args.parents, args.expansions)
    report_puct(load_info(rec), rec["problem"], args.seed[0], ((2, 2),) if args.smoke else ((16, 8), (50, 64)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
