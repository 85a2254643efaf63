"""A small OpenAI-compatible chat server on loopback for the LLM tests: it plays a script of
replies (an answer, an HTTP error, a delay, raw text) and records every request body."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def answer(content: str, delay: float = 0.0) -> dict:
    return {"kind": "answer", "content": content, "delay": delay}


def error(status: int, retry_after: float | None = None) -> dict:
    return {"kind": "error", "status": status, "retry_after": retry_after}


class OpenAIStub:
    """`with OpenAIStub([answer(...), error(429), ...]) as stub:` then `stub.base` is the
    api_base (`http://127.0.0.1:<port>/v1`) and `stub.requests` the JSON bodies received.
    After the script ends, the last reply repeats."""

    def __init__(self, script: list[dict]) -> None:
        self.script = list(script)
        self.requests: list[dict] = []
        self.headers: list[dict] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # quiet test output
                pass

            def do_POST(self) -> None:  # noqa: N802 - the http.server API
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                stub.requests.append(body)
                stub.headers.append(dict(self.headers))
                step = stub.script.pop(0) if len(stub.script) > 1 else stub.script[0]
                if step["kind"] == "error":
                    payload = json.dumps({"error": {"message": "scripted", "type": "x"}})
                    self.send_response(step["status"])
                    if step.get("retry_after") is not None:
                        self.send_header("Retry-After", str(step["retry_after"]))
                    self.send_header("Content-Type", "application/json")
                    self.end_headers()
                    self.wfile.write(payload.encode())
                    return
                time.sleep(step["delay"])
                reply = {
                    "id": f"chatcmpl-{len(stub.requests)}",
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": body.get("model", "stub"),
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": step["content"]},
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": {"prompt_tokens": 120, "completion_tokens": 40, "total_tokens": 160},
                }
                data = json.dumps(reply).encode()
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client timed out
                    pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> OpenAIStub:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
