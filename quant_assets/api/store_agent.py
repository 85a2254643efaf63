"""The API's own store work (audit inserts, key record reads) done in a child process.

Why: the embedded engine (chDB) holds Python's GIL while it opens its folder and while it
inserts: 35-45 ms at a stretch and 50-100 ms per unit of work, measured with a ticker thread
beside it. In the API process that stalls the event loop, and every request in flight waits
(p99 of 220-550 ms under load). The child has its own interpreter and GIL, so the API process
only waits on a pipe, which releases the GIL, and only in a background thread or off the
event loop.

The protocol is one JSON line per request on the child's stdin (`{"op": ..., "args": ...}`)
and one JSON line per answer on a private copy of its stdout (`{"ok": true, "value": ...}` or
`{"ok": false, "type": ..., "error": ...}`); the first line carries the store's DSN, database
and wait, so that a DSN with a password never shows in the process list. Calls are answered
in order, one at a time (the embedded store is used by one thread at a time anyway). The
child ignores SIGINT and SIGTERM: the API process, which receives them too, writes its last
audit rows through it on shutdown and then closes its stdin, which ends it (so does the API
process dying). A child that does not answer within `timeout_s` is killed, the call fails
(the caller keeps its rows or answers 503), and the next call starts a new child. The
child's side is `store_agent_child`.
"""

from __future__ import annotations

import json
import select
import subprocess
import sys
import threading

from quant_assets.api.store import StoreBusy


class AgentError(RuntimeError):
    """The child could not do what it was asked (its error's type and message)."""


class StoreAgent:
    """The parent's end: `call(op, **args)` runs one operation in the child and returns its
    value (thread-safe; calls queue behind each other)."""

    def __init__(self, dsn: str, database: str, wait_s: float, timeout_s: float | None = None):
        self._config = {"dsn": dsn, "database": database, "wait_s": wait_s}
        self.timeout_s = timeout_s if timeout_s is not None else wait_s + 60.0
        self._proc: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        self.calls = 0

    def call(self, op: str, **args: object) -> object:
        """The value of `op(**args)` computed in the child; StoreBusy or AgentError when it
        failed there, TimeoutError when it did not answer in time (the child is then killed)."""
        line = _request_line(op, args)
        with self._lock:
            proc = self._running()
            try:
                assert proc.stdin is not None
                proc.stdin.write(line)
                proc.stdin.flush()
                answer = self._answer(proc)
            except (OSError, TimeoutError, ValueError):
                self._kill()
                raise
            self.calls += 1
        if answer.get("ok"):
            return answer.get("value")
        error = f"{answer.get('type')}: {answer.get('error')}"
        raise StoreBusy(error) if answer.get("type") == "StoreBusy" else AgentError(error)

    @property
    def pid(self) -> int | None:
        """The child's process id while it runs."""
        proc = self._proc
        return proc.pid if proc is not None and proc.poll() is None else None

    def close(self) -> None:
        """End the child: its stdin closes, it finishes the call in hand and exits."""
        with self._lock:
            proc, self._proc = self._proc, None
            if proc is None:
                return
            try:
                assert proc.stdin is not None
                proc.stdin.close()
                proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                proc.kill()
                proc.wait()
            finally:
                if proc.stdout is not None:
                    proc.stdout.close()

    def _running(self) -> subprocess.Popen[bytes]:
        if self._proc is not None and self._proc.poll() is None:
            return self._proc
        self._kill()
        proc = subprocess.Popen(
            [sys.executable, "-m", "quant_assets.api.store_agent_child"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        assert proc.stdin is not None
        proc.stdin.write(json.dumps(self._config).encode() + b"\n")
        proc.stdin.flush()
        self._proc = proc
        return proc

    def _answer(self, proc: subprocess.Popen[bytes]) -> dict:
        """The child's next answer line, waiting at most `timeout_s` for it to start."""
        assert proc.stdout is not None
        poll = select.poll()  # not select(): this process may hold more than 1024 files
        poll.register(proc.stdout, select.POLLIN)
        if not poll.poll(self.timeout_s * 1000):
            raise TimeoutError(f"the store agent did not answer within {self.timeout_s:.0f} s")
        line = proc.stdout.readline()
        if not line:
            raise OSError("the store agent ended without answering")
        return json.loads(line)

    def _kill(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            proc.kill()
            proc.wait()
            for pipe in (proc.stdin, proc.stdout):
                if pipe is not None:
                    pipe.close()


def encode(value: object) -> bytes:
    """`value` as compact JSON bytes (dates and other objects as their text)."""
    return json.dumps(value, separators=(",", ":"), default=str).encode()


def _request_line(op: str, args: dict[str, object]) -> bytes:
    """The request as one JSON line; a list argument is encoded item by item, so that a batch
    of rows is many short encodings (between which other threads run) rather than one long
    one holding the GIL."""
    encoded = []
    for name, value in args.items():
        body = b"[" + b",".join(map(encode, value)) + b"]" if isinstance(value, list) else None
        encoded.append(encode(name) + b":" + (body or encode(value)))
    return b'{"op":' + encode(op) + b',"args":{' + b",".join(encoded) + b"}}\n"
