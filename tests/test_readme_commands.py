"""The README's two first commands, as written, in a fresh copy of the checkout named ``tttd`` in an
unprivileged user's home, with a PEP 668 (externally managed) system Python as ``python3`` (issue 36).

CI runs as root: the test creates (or reuses) the user ``tttdjail`` (as tests/sandbox/test_nonroot.py
does), copies the files git tracks or would track into ``~tttdjail/tttd`` (what a clone holds, with
this checkout's uncommitted edits) and runs, as that user with ``setpriv``:

1. the README's first command in ``~/tttd``, with ``--steps 1 --out ~/demo-run`` appended to its
   ``tttd demo`` (the demo preset's 48 steps would take a minute more and prove nothing more); the
   demo must write its report and print its path;
2. from ``~`` (a folder named ``tttd`` in the working directory, the issue's case): ``new-task`` and
   its check script, and ``tttd report`` of the demo run;
3. the README's second command in ``~/tttd``, with one test file appended to its ``pytest -q``.

``python3`` is Debian's ``/usr/bin/python3``; where it carries no ``EXTERNALLY-MANAGED`` marker
(another distribution), a marker is bound into its standard library in a private mount namespace
(bubblewrap, as root), so pip outside a virtual environment is refused exactly as on Debian 12; the
test checks that refusal first. The user's own pip cache (``~/.cache/pip``) is kept between runs;
the test's tiny model is copied into the user's tttd cache as the default one (the real build
is timed by benchmarks/first_command.sh, not here). CPU torch comes from the pip configuration CI uses.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
USER = "tttdjail"
SYSTEM_PYTHON = "/usr/bin/python3"
MARKER = "[externally-managed]\nError=This Python is managed by the system (a test of tttd's README).\n"


def _readme_commands() -> list[str]:
    text = (REPO / "README.md").read_text()
    block = text.split("```")[1]  # the first fenced block: "bash\n<line 1>\n<line 2>\n"
    lines = [ln for ln in block.splitlines()[1:] if ln.strip()]
    assert len(lines) == 2, lines
    return lines


def _user() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(USER)
    except KeyError:
        done = subprocess.run(["useradd", "--create-home", "--shell", "/bin/sh", USER], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        return pwd.getpwnam(USER)


def _copy_checkout(dest: Path, uid: int, gid: int) -> None:
    if dest.exists():
        shutil.rmtree(dest)
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                           capture_output=True, check=True).stdout.decode().split("\0")
    for f in filter(None, files):
        src = REPO / f
        if src.is_file() and not src.is_symlink():
            (dest / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / f)
    for p in [dest, *dest.rglob("*")]:
        os.chown(p, uid, gid)


def _stdlib() -> str:
    return subprocess.run([SYSTEM_PYTHON, "-c", "import sysconfig; print(sysconfig.get_path('stdlib'))"],
                          capture_output=True, text=True, check=True).stdout.strip()


@pytest.mark.slow
@pytest.mark.timeout(3000)  # two installs into fresh venvs: ~5 min on an idle machine with a warm pip cache
def test_readme_commands_as_a_normal_user_with_an_externally_managed_python(tmp_path, tiny_model_dir):
    if os.geteuid() != 0:
        pytest.skip("needs root to switch to an unprivileged user (CI runs as root)")
    setpriv = shutil.which("setpriv")
    assert setpriv and os.path.exists(SYSTEM_PYTHON), "setpriv (util-linux) and a system python3 (.ci/run)"
    u = _user()
    home = Path(u.pw_dir)
    home.mkdir(parents=True, exist_ok=True)
    os.chown(home, u.pw_uid, u.pw_gid)
    clone = home / "tttd"
    _copy_checkout(clone, u.pw_uid, u.pw_gid)
    for old in ("demo-run", "spread.py", "check_spread.py"):
        p = home / old
        shutil.rmtree(p) if p.is_dir() else p.unlink(missing_ok=True)

    # the tiny model, as the user's own cache holds it after a first demo
    from tests.test_first_hour_issue36 import stand_in_default_model

    stand_in_default_model(tiny_model_dir, home / ".cache" / "tttd")
    for p in [home / ".cache", *(home / ".cache").rglob("*")]:
        os.chown(p, u.pw_uid, u.pw_gid)

    outer: list[str] = []
    marker = Path(_stdlib()) / "EXTERNALLY-MANAGED"
    if not marker.exists():
        bwrap = shutil.which("bwrap")
        assert bwrap, f"{SYSTEM_PYTHON} has no PEP 668 marker and bubblewrap is needed to bind one"
        fake = tmp_path / "EXTERNALLY-MANAGED"
        fake.write_text(MARKER)
        fake.chmod(0o644)
        outer = [bwrap, "--dev-bind", "/", "/", "--ro-bind", str(fake), str(marker), "--cap-add", "CAP_SETUID",
                 "--cap-add", "CAP_SETGID", "--"]
    keep = ("PIP_FIND_LINKS", "PIP_EXTRA_INDEX_URL", "PIP_INDEX_URL", "PIP_CERT", "PIP_DEFAULT_TIMEOUT",
            "PIP_CONSTRAINT", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy")
    env = {"HOME": str(home), "USER": USER, "LOGNAME": USER, "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8",
           "PIP_DISABLE_PIP_VERSION_CHECK": "1", **{k: os.environ[k] for k in keep if k in os.environ}}

    def as_user(script: str, cwd: Path, timeout: int = 1500) -> subprocess.CompletedProcess:
        cmd = outer + [setpriv, f"--reuid={u.pw_uid}", f"--regid={u.pw_gid}", "--clear-groups", "--",
                       "/bin/bash", "-c", script]
        return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)

    # the premise: python3 is the system's, and pip outside a virtual environment is refused
    pre = as_user("command -v python3; python3 -m pip install --dry-run --no-index nothing-at-all 2>&1; "
                  "python3 -c 'import sys; print(sys.prefix == sys.base_prefix)'", clone, timeout=120)
    assert pre.stdout.startswith(SYSTEM_PYTHON), pre.stdout + pre.stderr
    assert ("externally-managed-environment" in pre.stdout or "No module named pip" in pre.stdout), pre.stdout
    assert pre.stdout.strip().endswith("True")

    first, second = _readme_commands()
    assert first.endswith("tttd demo") and "python3 -m venv .venv" in first
    done = as_user(f"{first} --steps 1 --out ~/demo-run", clone)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-4000:]
    assert "Traceback" not in out, out[-4000:]
    report = next((ln.split()[1] for ln in done.stdout.splitlines() if ln.startswith("report: ")), None)
    assert report and Path(report).is_file() and Path(report).stat().st_uid == u.pw_uid, done.stdout[-2000:]

    # from ~, where the checkout named tttd shadows nothing
    walk = as_user("set -e; ~/tttd/.venv/bin/tttd new-task spread; ~/tttd/.venv/bin/python check_spread.py; "
                   "~/tttd/.venv/bin/tttd report ~/demo-run --out ~/demo-report", home, timeout=600)
    out = walk.stdout + walk.stderr
    assert walk.returncode == 0 and "all checks passed" in walk.stdout and "Traceback" not in out, out[-3000:]
    assert (home / "demo-report" / "index.html").is_file()

    assert second.endswith("python -m pytest -q") and "python3 -m venv .venv" in second
    done = as_user(f"{second} -p no:cacheprovider tests/test_docs.py", clone)
    out = done.stdout + done.stderr
    assert done.returncode == 0 and " passed" in done.stdout and "failed" not in done.stdout, out[-4000:]
