"""C++ candidates through the jail: the plain baselines through `tttd verify`, and every failure
mode with its status and message. Small case subsets and fast programs (2 cores)."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tttd.executor import LocalExecutor
from tttd.registry import get_task
from tttd.tasks.ahc import cpp

pytestmark = pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++")

REPO = Path(__file__).resolve().parents[3]
EXAMPLES = REPO / "tttd" / "tasks" / "ahc" / "baselines"

PRINT_500 = "#include <cstdio>\nint main(){ for(int i=0;i<500;i++) std::puts(\"-1\"); }\n"


@pytest.fixture(scope="module", autouse=True)
def cache_home(tmp_path_factory):
    old = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("cache"))
    yield
    if old is None:
        os.environ.pop("XDG_CACHE_HOME", None)
    else:
        os.environ["XDG_CACHE_HOME"] = old


@pytest.fixture(scope="module")
def pool():
    with LocalExecutor(workers=2) as ex:
        yield ex


def evaluate(code, cases="0-1", problem="ahc058", pool=None, **opts):
    task = get_task(problem, cases=cases, **{"parallel": 2, **opts})
    state = task.initial_states(1, np.random.default_rng(0))[0]
    cand = task.parse("```cpp\n" + code + "\n```", state)
    assert cand.error is None, cand.error
    return task.evaluate(cand, task.launch(cand, pool.submit, state).result(timeout=120), state)


def tttd(*args):
    return subprocess.run([sys.executable, "-m", "tttd.cli", *args], capture_output=True, text=True,
                          timeout=300, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})


@pytest.mark.parametrize("problem, program", [("ahc058", "ahc058_greedy.cpp"), ("ahc039", "ahc039_grid.cpp")])
def test_baseline_through_tttd_verify(problem, program):
    done = tttd("verify", problem, str(EXAMPLES / program), "--task-option", "cases=0-2", "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    verdict = json.loads(done.stdout)
    assert verdict["valid"] and verdict["value"] > 0
    scale = 1500 if problem == "ahc039" else 3e6
    assert verdict["reward"] == pytest.approx(verdict["value"] / scale)
    assert "mean over 3 cases" in verdict["message"]


def test_verify_rejects_a_python_file_for_ahc(tmp_path):
    f = tmp_path / "x.py"
    f.write_text("print(1)\n")
    done = tttd("verify", "ahc058", str(f))
    assert done.returncode == 2 and "expected a construction (.json) or a program (.cpp" in done.stderr


def test_accepted_zero_score(pool):
    ev = evaluate(PRINT_500, pool=pool)
    assert ev.valid and ev.value == 0.0 and ev.metrics["case_scores"] == [0, 0]


def test_compile_error(pool):
    ev = evaluate("int main( { return 0; }", pool=pool)
    assert not ev.valid and ev.status == "compile_error" and ev.reward == 0
    assert ev.message.startswith("compilation failed") and "error" in ev.message
    assert "Main.cpp" in ev.output_tail  # the compiler's message tail goes back into the prompt


def test_crash(pool):
    ev = evaluate("#include <csignal>\nint main(){ std::raise(SIGSEGV); }", pool=pool)
    assert ev.status == "runtime_error" and "signal 11" in ev.message and ev.reward == 0
    ev = evaluate("#include <cstdio>\nint main(){ std::fputs(\"bye\\n\", stderr); return 3; }", pool=pool)
    assert ev.status == "runtime_error" and "exit status 3" in ev.message and "bye" in ev.message


def test_timeout(pool):
    ev = evaluate("int main(){ volatile unsigned long x = 0; for(;;) x++; }", cases="0", pool=pool)
    assert ev.status == "timeout" and not ev.valid
    assert "CPU time" in ev.message or "time limit" in ev.message


def test_memory_overrun(pool, monkeypatch):
    head = "#include <vector>\n#include <cstdio>\n"
    # beyond the 2 GiB address space: std::bad_alloc
    code = head + "int main(){ std::vector<char> v(3ull << 30, 1); std::printf(\"%d\", (int)v[12345]); }"
    ev = evaluate(code, cases="0", pool=pool)
    assert ev.status == "memory" and "memory limit" in ev.message, ev.message
    # within the address space but a peak RSS above the RSS limit (1 GiB in the contest; lowered
    # to 64 MiB here so that the test does not touch a gigabyte on a shared 2-core machine)
    monkeypatch.setattr(cpp, "RSS_LIMIT_KB", 64 * 1024)
    code = head + "int main(){ std::vector<char> v(100ull << 20, 1); std::printf(\"%d\", (int)v[777]); }"
    ev = evaluate(code, cases="0", pool=pool)
    assert ev.status == "memory" and "peak 10" in ev.message, ev.message


def test_wrong_answer(pool):
    code = "#include <cstdio>\nint main(){ for(int i=0;i<499;i++) std::puts(\"-1\"); }"
    ev = evaluate(code, pool=pool)
    assert ev.status == "wrong_answer"
    assert "wrong answer: Not enough actions: expected 500, got 499" in ev.message
    assert "case 1/2 (seed 0)" in ev.message or "case 2/2 (seed 1)" in ev.message


def test_stops_at_the_first_failed_case(pool):
    code = "#include <cstdio>\nint main(){ std::puts(\"x\"); }"
    ev = evaluate(code, cases="0-5", pool=pool, parallel=1)
    assert ev.status == "wrong_answer" and ev.metrics["cases_run"] == 1 and ev.metrics["cases"] == 6


def test_case_sees_only_its_own_files(pool):
    # the binary lists its working directory and prints -1 x 500 only if it holds exactly its own
    # two files plus its output (no other case's input, no other binary)
    code = r'''#include <cstdio>
#include <dirent.h>
#include <string>
#include <set>
int main(){ std::set<std::string> s; DIR *d = opendir("."); while (auto e = readdir(d)) s.insert(e->d_name);
  std::set<std::string> want = {".", "..", "a.out", "input.txt", "out.txt"};
  if (s != want) return 7;
  for(int i=0;i<500;i++) std::puts("-1"); }'''
    ev = evaluate(code, pool=pool)
    assert ev.valid, ev.message


def test_parse_rejections():
    task = get_task("ahc058", cases="0")
    state = task.initial_states(1, np.random.default_rng(0))[0]
    assert task.parse("no code here", state).error.startswith("no ```cpp code block")
    assert "int main" in task.parse("```cpp\nvoid f(){}\n```", state).error
    assert task.parse("```c++\nint main(){}\n```", state).error is None


def test_toolchain_paths_exist_and_are_absolute():
    paths = cpp.toolchain_paths(cpp.find_compiler())
    assert paths and all(p.startswith("/") and os.path.exists(p) for p in paths)
    prog = cpp.compile_program("int main(){}")
    assert prog.limits.toolchain == paths


def test_own_contest_problem_by_path(tmp_path):
    prog = tmp_path / "sum.cpp"
    prog.write_text("#include <cstdio>\nint main(){ long long a, b; std::scanf(\"%lld %lld\", &a, &b);"
                    " std::printf(\"%lld\\n\", a + b); }\n")
    task_file = str(Path(__file__).resolve().parent / "contest_task.py")
    done = tttd("verify", task_file, str(prog), "--task-option", "cases=0-2", "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    verdict = json.loads(done.stdout)
    assert verdict["valid"] and verdict["value"] == 100.0 and verdict["reward"] == 1.0


def test_output_limit(pool):
    code = "#include <cstdio>\nint main(){ static char b[1 << 20]; for (int i = 0; i < 20; i++) std::fwrite(b, 1, sizeof b, stdout); }"
    ev = evaluate(code, cases="0", pool=pool)
    assert ev.status == "output_limit" and "output" in ev.message, ev.message
