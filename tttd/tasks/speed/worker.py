"""The speed kit's worker: the only process that holds the candidate's code.

Run by the controller (:mod:`tttd.tasks.speed.harness`) as ``python -I -S worker.py REQ RESP``
with this file's source appended to :mod:`tttd.tasks.speed.wire`'s, in the same jail, as a child
with a fresh interpreter (nothing of the controller's memory is inherited: no seeds, no reference,
no timers, no result pipe). It imports the candidate, then serves requests until its request pipe
closes:

- ``{"op": "preload", "sys_path": [..], "modules": [..]}``, first: imports trusted modules the
  task uses (numpy, torch) while the controller loads its own copy, so the candidate's import
  later finds them loaded (no answer; a module that fails to import is left to that import);
- ``{"op": "ping"}``, before the candidate is imported: answers at once (the controller measures
  the round trip with no candidate code in this process, so a candidate cannot inflate it);
- ``{"op": "call", "tree": .., "size": .., "out": [lo, hi]}``: views of the inputs in the shared
  region (unpacked by the public problem module's ``wire_unpack`` when it has one), calls the
  candidate's function, copies its output into the region's output part, and (GPU) synchronises
  the device before it answers ``{"ok": true, "tree": ..}``.

Everything here runs in the candidate's address space, so none of it is trusted: the controller
times each call from its side, validates every answer and checks every output itself. The
candidate's prints go to the jail's stdout/stderr (shown, never parsed); answers go through a
pipe whose messages the controller parses strictly.
"""


def _worker_main():
    import mmap
    import os
    import sys

    req, resp = int(sys.argv[1]), int(sys.argv[2])
    def answer(obj):
        write_all(resp, pack_msg(obj))  # noqa: F821  (from the wire source this file is appended to)

    while True:  # the IPC round trip is measured before any candidate code exists in this process
        init = read_msg(req)  # noqa: F821
        if init is None:
            return
        if init.get("op") == "preload":  # trusted modules, imported while the controller loads its own
            _add_paths(init["sys_path"])
            for name in init["modules"]:
                try:
                    __import__(name)
                except Exception:  # noqa: BLE001 - the candidate's import reports it, if it needs it
                    pass
            continue
        if init.get("op") != "ping":
            break
        answer({"ok": True})
    _add_paths(init["sys_path"])
    folder = init["folder"]
    sys.path.insert(0, folder)
    os.chdir(os.path.dirname(folder))
    region = None
    cuda = init.get("device") == "cuda"

    try:
        import importlib

        mod = importlib.import_module("submission")
        fn = getattr(mod, init["entry"], None)
        if not callable(fn):
            raise NameError(f"the program defines no function {init['entry']!r}")
        unpack = None
        if init.get("wire_module"):
            unpack = getattr(importlib.import_module(init["wire_module"]), "wire_unpack", None)
        if cuda:
            import torch
    except BaseException as e:  # noqa: BLE001 - reported to the controller as the import verdict
        answer({"ok": False, "error": f"{type(e).__name__}: {e}"[:2000]})
        return
    answer({"ok": True})
    shm_fd = None
    last_tree, last_data = None, None  # the views of the last call's inputs (same layout: reused)
    while True:
        msg = read_msg(req)  # noqa: F821
        if msg is None:
            return
        if msg.get("op") == "ping":
            answer({"ok": True})
            continue
        try:
            new = msg.get("region")
            if new and cuda:  # the controller's CUDA buffer, opened through its IPC handle
                h = [bytes.fromhex(x) if i in (1, 4, 6) else x for i, x in enumerate(new["ipc"])]
                st = torch.UntypedStorage._new_shared_cuda(*h)
                buf = torch.empty(0, dtype=torch.uint8, device=f"cuda:{h[0]}").set_(st, 0, (new["size"],), (1,))
                region = Region(buf, new["size"], cuda=True)  # noqa: F821
            elif new:
                if shm_fd is None:
                    shm_fd = os.open(new["shm"], os.O_RDWR)
                region = Region(mmap.mmap(shm_fd, new["size"]), new["size"])  # noqa: F821
            if new or msg["tree"] != last_tree:
                last_tree, last_data = msg["tree"], region.get(msg["tree"], copy=False)
            data = last_data
            if unpack is not None:
                data = unpack(data)
            out = fn(data)
            lo, hi = msg["out"]
            tree, _ = region.put(out, lo, hi)
            del out, data
            if cuda:
                torch.cuda.synchronize()
        except BaseException as e:  # noqa: BLE001
            answer({"ok": False, "error": f"{type(e).__name__}: {e}"[:2000]})
            continue
        answer({"ok": True, "tree": tree})


def _add_paths(paths):
    import sys

    for p in paths:
        if p not in sys.path:
            sys.path.append(p)


if __name__ == "__main__":
    _worker_main()
