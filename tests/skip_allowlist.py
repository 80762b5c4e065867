"""The skips CI accepts, each with the reason it cannot run there (issue 25).

With ``CI=true`` the test session fails when any test skips for a reason that matches no entry
below (tests/conftest.py checks every skip at the end of the session and prints this list with
the skips it saw). Locally skips are reported the same way but never fail the run. Add an entry
only for a test that cannot run on CI's machine by design: never for a missing install (CI
installs everything, .ci/run), missing reference data (shared/data beside the checkout, or $TTTD_REFERENCE_DATA) or a weaker sandbox.

``python3 tests/skip_allowlist.py`` prints the list (standalone: .ci/run prints it at the end of
every CI run, whatever happened before the tests).
"""

from __future__ import annotations

import re

#: (regular expression searched in the skip reason, why CI cannot run such a test)
ALLOWED: tuple[tuple[str, str], ...] = (
    (r"as root the weak mode needs an interpreter a fresh uid can read \(test_nonroot\.py runs this\)",
     "CI's interpreter lives under /root (0700), which a fresh uid cannot read: tests/sandbox/test_nonroot.py "
     "re-runs the jail suites as the unprivileged user, where this test runs (and fails the run if it skips)"),
    (r"^needs root and an interpreter readable by other uids$",
     "the fresh-uid fallback needs an interpreter other uids can read: test_nonroot.py re-runs it in a private "
     "mount namespace where it is, and asserts '1 passed' with no skip"),
    (r"needs TINKER_API_KEY",
     "live Tinker service: needs a paid API key, which CI does not hold (tests/policy/test_tinker.py "
     "runs the same client against fakes and test_tinker_skyrl.py against SkyRL's open server)"),
    (r"needs a CUDA (or ROCm )?GPU",
     "GPU-only tests: CI machines have no GPU; benchmarks/gpu_checks.sh runs them on one"),
    (r"^needs a GPU \(run by benchmarks/gpu_checks\.sh on a GPU machine\)$",
     "documented GPU benchmark commands: CI machines have no GPU; benchmarks/gpu_checks.sh runs them on one"),
    (r"^the CPU path$",
     "on a GPU machine the CPU variant of a test is replaced by its GPU variant"),
    (r"the GPL MAGIC baseline is an optional extra",
     "MAGIC is GPL-licensed and deliberately outside tttd[all] (pip install 'tttd[denoising-gpl]')"),
    (r"^vllm is importable here: test_vllm_engine\.py runs in this session directly$",
     "one of the two vLLM routes runs: the engine tests in this session when vllm is importable here"),
    (r"^vllm is not installed in this environment$",
     "tests/policy/test_vllm_engine.py in the main venv: test_vllm_env.py runs it in .venv-vllm (a skip "
     "of test_vllm_env.py itself is not allowed)"),
)


def allowed_reason(reason: str) -> str | None:
    """The allow-list entry's explanation for a skip reason, or None if it is not allowed."""
    for pattern, why in ALLOWED:
        if re.search(pattern, reason):
            return why
    return None


def render() -> str:
    lines = ["skip allow-list (tests/skip_allowlist.py; with CI=true any other skip fails the run):"]
    lines += [f"  /{pattern}/  {why}" for pattern, why in ALLOWED]
    return "\n".join(lines)


if __name__ == "__main__":
    print(render())
