"""Run untrusted, LLM-written code: a jail, limits, timeouts, data-only results.

Every candidate is treated as hostile (it is written under pressure to score high by any means).
:func:`run_program` execs Python source as a module in a fresh process and calls ``entry(**args)``;
:func:`run_command` runs a command line (e.g. a compiled candidate); :func:`run` dispatches on a
:class:`~tttd.types.Program`. Both always return a :class:`~tttd.types.SandboxResult` with a status
``ok | error | timeout | memory | killed | bad_output`` (they raise only on bad *arguments*).

Modules: :mod:`~tttd.sandbox.jail` (what the candidate sees: bubblewrap argv, allow-list view,
capabilities), :mod:`~tttd.sandbox.seccomp` (no namespaces/mounts inside), :mod:`~tttd.sandbox.gpu`
(device binds), :mod:`~tttd.sandbox.harness` (runs inside), :mod:`~tttd.sandbox.results` (strict
decoding), :mod:`~tttd.sandbox.processes` (kill the tree, cleanup), :mod:`~tttd.sandbox.runner`
(one run, the public functions).

What is protected (``SandboxResult.protections`` lists what was active for that run; a run records
them in ``config.json`` and ``metrics.jsonl``; :func:`isolation_report` says whether isolation is
full, and ``--require-isolation`` refuses to start without it):

- ``session``: own session and process group; on timeout or exit the whole tree is SIGKILLed.
- ``private_workdir``: a fresh empty working directory, removed afterwards by an iterative
  remover that handles any depth and permissions the candidate removed.
- ``env_scrub``: only PATH, HOME (= workdir), LANG, USER, TMPDIR, ``CUDA_VISIBLE_DEVICES`` and
  ``thread_caps`` (OMP, MKL, OpenBLAS, NumExpr, vecLib, BLIS thread counts = ``limits.threads``).
- ``rlimit_as`` (memory), ``rlimit_cpu``, ``rlimit_fsize`` (every file incl. stdout/stderr),
  ``rlimit_nofile``, ``rlimit_core`` (0) always; ``rlimit_nproc`` where the kernel enforces it.
- ``separate_uid`` (parent is root): a fresh, random, unprivileged uid: it cannot signal the parent
  nor write root-owned files, RLIMIT_NPROC bounds fork bombs, and leftovers are found by uid.
- ``no_namespaces`` (seccomp filter, any mode): ``unshare``, ``setns``, ``clone`` with namespace
  flags, the whole mount API, keyrings, bpf, perf, userfaultfd, io_uring, module loading fail.
- with bubblewrap (``bwrap``, detected once per process; ``TTTD_SANDBOX_BWRAP=0`` disables it):
  ``allowlist_fs`` (only system directories, a few /etc entries, the interpreter's prefix and
  package directories, and ``limits.toolchain`` are visible, read-only: never $HOME, /root, /home,
  /work, /srv, /var, /run, /mnt, the run directory or the project checkout, whether the parent is
  root or not), ``capped_writable`` (the working directory /sandbox, /tmp and /dev/shm are one tmpfs
  capped at ``limits.disk_mb`` bytes and ``limits.inodes`` inodes; nothing else is writable),
  ``private_tmp``, ``pid_namespace`` (``kill(-1)`` stays inside; the namespace dies with the run),
  ``ipc_namespace``, ``no_network`` (own network namespace, loopback only, unless
  ``limits.network``; host unix sockets are not in the view either), ``no_caps``,
  ``own_uid_or_userns`` (a fresh uid when the parent is root; else a user namespace in which the
  candidate is uid 0 with every capability cleared and root's special rules locked off by
  securebits). bubblewrap's ``--disable-userns`` is not used: it nests a user namespace in which
  the harness could not mount the capped tmpfs; the seccomp filter forbids new namespaces instead.
- ``data_only_result`` and ``result_cap``: the result is streamed through a pipe as JSON + raw
  numeric arrays, read at most ``limits.result_mb`` (more: rejected before decoding), parsed
  strictly in the trusted process (no pickle, no eval); every malformed, truncated, forged or
  absurd result is a ``bad_output`` verdict with a reason, never an exception. stdout/stderr go to
  files; only their last ``limits.output_bytes`` are read.
- GPUs: only the device nodes of ``devices`` (+ control nodes) are bound (``gpu_devices_only``,
  :mod:`tttd.sandbox.gpu`); without bubblewrap only ``CUDA_VISIBLE_DEVICES`` selects them
  (``gpu_env_only``: every GPU node stays reachable).

What is NOT protected:

- kernel exploits through the syscalls still allowed, CPU side channels (Spectre etc.), timing or
  resource contention with other work; host facts in /proc (CPU model, memory, kernel
  version, uptime) are readable;
- the tmpfs caps are RAM outside RLIMIT_AS; RLIMIT_AS bounds each process, not the sum over a
  tree (bounded by processes x memory_mb); evaluations with GPUs run without RLIMIT_AS (the CUDA
  driver reserves huge virtual ranges), so their host memory is not capped; GPU memory is not
  capped either (one evaluation per device is the executor's job);
- without bubblewrap (not installed, or user namespaces disabled as in many containers: see the
  README's Docker/Podman section) the candidate sees the host filesystem (readable where its uid
  may read: everything world-readable; as the same user without root, that user's secrets), may
  write wherever its uid may write, reaches the network and host unix sockets, and its workdir is
  capped per file only; without root it runs as the same user (it can signal the parent, and an
  adversary that changes session, group, ancestry and environment can escape the final kill).
  tttd warns loudly in this case and ``--require-isolation`` refuses to run;
- forged results: a candidate can always make the parent receive data of its choice (returning it
  is enough); the trusted verifier recomputes the score from that data, so this gains nothing.

Deviation from the paper's code (SPEC.md 6.1, 7.4): pickled results, no memory/network limits and
a writable filesystem are replaced by the above; one wall budget (``limits.wall_s``) that always
ends in a kill of the whole tree.
"""

from __future__ import annotations

from tttd.sandbox.jail import FULL_ISOLATION, Platform, isolation_report as _isolation_report
from tttd.sandbox.results import BadData, finite_array
from tttd.sandbox.runner import _probe, _protections, platform_info, run, run_command, run_program
from tttd.types import Limits, Program, SandboxResult

__all__ = [
    "Limits", "Program", "SandboxResult", "BadData", "finite_array", "platform_info", "Platform",
    "FULL_ISOLATION", "isolation_report", "run", "run_command", "run_program",
]


def isolation_report() -> dict:
    """What this machine's sandbox protects: {"full", "active", "missing", "notes"}."""
    return _isolation_report(platform_info())
