"""The jail works wherever the interpreter lives (issue 19): a venv under /tmp (hidden by the
jail's own /tmp unless bound back at its real path; also with the interpreter binary copied
there, as conda-like and ``--copies`` environments have it), under $HOME, inside the checkout,
under /opt, and a venv reached through a symlinked directory. Each venv is made cheaply (``--without-pip``, the
packages of this interpreter reached through a .pth file) and runs a short hostile check in a
fresh process: full isolation, host secrets and the venv's own files unwritable, its /tmp private.
The base interpreter here is itself a pyenv or venv one (this machine: pyenv under /root)."""

from __future__ import annotations

import json
import os
import shutil
import site
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.sandbox.test_jail import REPORT

REPO = Path(__file__).resolve().parents[2]
if not REPORT["full"]:
    pytestmark = pytest.mark.skip(reason=f"full isolation unavailable ({REPORT['cause']})")

CHECK = r'''
import json, os, sys, textwrap
from tttd import sandbox
rep = sandbox.isolation_report()
src = textwrap.dedent("""
    import os, sys, numpy
    def main(big):
        out = {"venv_seen": os.path.exists(PREFIX + "/pyvenv.cfg"), "numpy": numpy.__version__,
               "tmp": sorted(os.listdir("/tmp")), "big": len(big)}
        for label, path in (("venv", PREFIX + "/pyvenv.cfg"), ("secret", SECRET)):
            try:
                open(path, "a").close()
                out[label] = "written"
            except OSError as e:
                out[label] = e.strerror
        try:
            out["secret_read"] = open(SECRET).read()
        except OSError as e:
            out["secret_read"] = e.strerror
        return out
    """)
# an argument over the inline limit travels through the read-only input directory (/.tttd/in),
# which a fresh uid must be able to reach also when the venv is staged under /.tttd/b
r = sandbox.run_program(src, args={"big": "x" * (2 << 20)}, inject={"PREFIX": sys.prefix, "SECRET": sys.argv[1]})
print(json.dumps({"full": rep["full"], "missing": rep["missing"], "notes": rep["notes"], "status": r.status,
                  "message": r.message, "value": r.value}))
'''


def _venv(path: Path, copies: bool = False) -> Path:
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", *(["--copies"] if copies else []), str(path)],
                   check=True, timeout=120)
    sp = next((path / "lib").glob("python3*/site-packages"))
    # this interpreter's packages (and the .pth chains they hold), the checkout for tttd
    paths = [p for p in site.getsitepackages() + [site.getusersitepackages()] if os.path.isdir(p)]
    for p in list(paths):
        for pth in Path(p).glob("*.pth"):
            for line in pth.read_text().splitlines():
                if line.startswith("/") and os.path.isdir(line):
                    paths.append(line)
    (sp / "_tttd_test.pth").write_text("\n".join([str(REPO), *paths]) + "\n")
    return path / "bin" / "python"


def _where(kind: str, tmp_root: Path) -> tuple[Path, Path | None]:
    """(venv path, symlink to make or None), for each location."""
    if kind in ("tmp", "tmp-copied-interpreter"):
        return Path(tempfile.mkdtemp(prefix="tttd-venv-", dir="/tmp")) / "v", None
    if kind == "home":
        return Path(tempfile.mkdtemp(prefix=".tttd-venv-", dir=Path.home())) / "v", None
    if kind == "checkout":
        return Path(tempfile.mkdtemp(prefix=".venv-loctest-", dir=REPO)) / "v", None
    if kind == "opt":
        os.makedirs("/opt", exist_ok=True)
        return Path(tempfile.mkdtemp(prefix="tttd-venv-", dir="/opt")) / "v", None
    if kind == "symlink":
        real = Path(tempfile.mkdtemp(prefix="tttd-venv-real-", dir=tmp_root)) / "v"
        return real, tmp_root / "linked"
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["tmp", "tmp-copied-interpreter", "home", "checkout", "opt", "symlink"])
def test_jail_with_the_venv_in(kind, tmp_path):
    if kind == "opt" and not os.access("/opt" if os.path.isdir("/opt") else "/", os.W_OK):
        pytest.skip("/opt is not writable here")
    venv, link = _where(kind, tmp_path)
    top = venv.parent
    try:
        py = _venv(venv, copies=kind == "tmp-copied-interpreter")  # the interpreter binary itself under /tmp
        if link is not None:
            os.symlink(venv, link)
            py = link / "bin" / "python"
        secret = tmp_path / "secret.txt"
        secret.write_text("SECRET")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
        done = subprocess.run([str(py), "-c", CHECK, str(secret)], capture_output=True, text=True, env=env,
                              cwd=str(tmp_path), timeout=240)
        assert done.returncode == 0, done.stderr[-3000:]
        out = json.loads(done.stdout.strip().splitlines()[-1])
        assert out["full"] and out["status"] == "ok", out
        v = out["value"]
        assert v["venv_seen"] and v["numpy"], v  # the venv is visible at its own path, its packages load
        assert v["big"] == 2 << 20, v
        assert v["venv"] != "written" and v["secret"] != "written" and v["secret_read"] != "SECRET", v
        # the way to the venv under test, and to this interpreter's packages it chains to (the
        # running venv itself may live under /tmp)
        ways = [str(venv), sys.prefix, os.path.realpath(sys.prefix)]
        on_the_way = {Path(w).parts[2] for w in ways if w.startswith("/tmp/")}
        assert set(v["tmp"]) <= on_the_way, v  # the jail's /tmp is private: only the way to the venv
    finally:
        shutil.rmtree(top, ignore_errors=True)
