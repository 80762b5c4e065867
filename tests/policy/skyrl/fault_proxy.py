"""A fault-injecting HTTP/1.1 proxy on 127.0.0.1 (issue 24's flaky-service tests; test tooling).

Requests are forwarded to the upstream server one connection each (``Connection: close``), except
those matched by a queued fault: ``inject(path_part, ["429", "503", "drop", "hang"])`` makes the
next matching requests answer 429 (with ``Retry-After: 0``) or 503, close the connection without
an answer (a dropped connection), or hold it ``hang_s`` seconds and then close it (a timeout).
``seen`` counts requests per path; ``served`` lists the faults served. Standard library only, so
it runs in any environment (here: the SkyRL server's).
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter


class FaultProxy:
    def __init__(self, upstream_port: int, hang_s: float = 30.0):
        self.upstream = ("127.0.0.1", upstream_port)
        self.hang_s = hang_s
        self.faults: list[tuple[str, str]] = []
        self.seen: Counter[str] = Counter()
        self.served: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self.port = 0
        self._thread = threading.Thread(target=self._serve, daemon=True, name="fault-proxy")
        self._thread.start()
        self._ready.wait(10)

    # control -------------------------------------------------------------------------------
    def inject(self, path_part: str, actions: list[str]) -> None:
        with self._lock:
            self.faults.extend((path_part, a) for a in actions)

    def clear(self) -> None:
        with self._lock:
            self.faults.clear()

    def retarget(self, upstream_port: int) -> None:
        self.upstream = ("127.0.0.1", upstream_port)

    def _take(self, path: str) -> str | None:
        with self._lock:
            self.seen[path] += 1
            for i, (part, action) in enumerate(self.faults):
                if part in path:
                    del self.faults[i]
                    self.served.append((path, action))
                    return action
        return None

    # server --------------------------------------------------------------------------------
    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = [ln for ln in lines[1:] if ln]
                length = 0
                for h in headers:
                    if h.lower().startswith("content-length:"):
                        length = int(h.split(":", 1)[1])
                body = await reader.readexactly(length) if length else b""
                action = self._take(path.split("?")[0])
                if action == "drop":
                    writer.transport.abort()
                    return
                if action == "hang":
                    await asyncio.sleep(self.hang_s)
                    writer.transport.abort()
                    return
                if action in ("429", "503"):
                    reason = {"429": "Too Many Requests", "503": "Service Unavailable"}[action]
                    msg = b'{"detail": "injected fault"}'
                    writer.write(f"HTTP/1.1 {action} {reason}\r\nContent-Type: application/json\r\n"
                                 f"Retry-After: 0\r\nContent-Length: {len(msg)}\r\n\r\n".encode() + msg)
                    await writer.drain()
                    continue
                kept = [h for h in headers if not h.lower().startswith(("connection:", "keep-alive:"))]
                request = (f"{method} {path} HTTP/1.1\r\n" + "".join(f"{h}\r\n" for h in kept)
                           + "Connection: close\r\n\r\n").encode() + body
                try:
                    up_r, up_w = await asyncio.open_connection(*self.upstream)
                except OSError:
                    writer.transport.abort()  # the service is down: the client sees a refused/dropped connection
                    return
                up_w.write(request)
                await up_w.drain()
                response = await up_r.read()  # until the upstream closes (Connection: close)
                up_w.close()
                if not response:
                    writer.transport.abort()
                    return
                # the client may keep its connection: answer with an explicit length, then close
                writer.write(_close_after(response))
                await writer.drain()
                writer.close()
                return
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            writer.transport.abort()

    def close(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)


def _close_after(response: bytes) -> bytes:
    """The upstream's response with ``Connection: close`` (and its own framing kept)."""
    head, sep, body = response.partition(b"\r\n\r\n")
    lines = [ln for ln in head.split(b"\r\n") if not ln.lower().startswith(b"connection:")]
    return b"\r\n".join(lines + [b"Connection: close"]) + sep + body
