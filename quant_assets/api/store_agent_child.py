"""The store agent's child process (`python -m quant_assets.api.store_agent_child`): reads
one JSON request line at a time and answers with one JSON line, doing the API's store work
(audit inserts, key record reads) with its own interpreter and GIL. The parent's end and the
protocol are in `store_agent`; this module is never imported by the API process, so the work
it names (`audit`, `keys`) does not import its caller back.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from collections.abc import Callable
from typing import IO

from quant_assets.api.audit import write_rows
from quant_assets.api.keys import read_records
from quant_assets.api.store import Store
from quant_assets.api.store_agent import encode


def _operations() -> dict[str, Callable[..., object]]:
    """What the child does, by name: the same functions the API runs in process when its store
    is a server."""
    return {"audit": write_rows, "keys": read_records}


def serve(store: Store, requests: IO[bytes], answers: IO[bytes]) -> None:
    """Answer each request line until the input ends."""
    operations = _operations()
    for line in requests:
        try:
            request = json.loads(line)
            value = operations[request["op"]](store, **request["args"])
            answer = {"ok": True, "value": value}
        except Exception as exc:  # reported to the caller, who keeps its rows or answers 503
            answer = {"ok": False, "type": type(exc).__name__, "error": str(exc)[:500]}
        answers.write(encode(answer) + b"\n")
        answers.flush()


def main() -> None:
    """The child: answers on a private copy of stdout, anything else printed goes to stderr."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    answers = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    requests = sys.stdin.buffer
    config = json.loads(requests.readline() or b"{}")
    if not config:
        return
    serve(Store(config["dsn"], config["database"], float(config["wait_s"])), requests, answers)


if __name__ == "__main__":
    main()
