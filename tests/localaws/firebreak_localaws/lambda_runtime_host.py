"""The local Lambda host: runs each Rust runbook binary as a process behind its own
Lambda runtime API (the interface every Lambda runtime speaks, as `cargo lambda watch`
serves it), and invokes them at `POST /2015-03-31/functions/NAME/invocations`, answering
200 with the result or 500 with `{errorType, errorMessage}` on a function error.

Each function gets credentials of its own, so the local account's request log tells which
function made which call.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

INVOKE_TIMEOUT = 120


@dataclass
class Invocation:
    request_id: str
    payload: bytes
    done: threading.Event = field(default_factory=threading.Event)
    delivered_at: float = 0.0
    status: int = 200
    body: bytes = b""


@dataclass
class Function:
    name: str
    binary: str
    env: dict[str, str]
    pending: "queue.Queue[Invocation]" = field(default_factory=queue.Queue)
    inflight: dict[str, Invocation] = field(default_factory=dict)
    process: subprocess.Popen | None = None
    runtime_server: ThreadingHTTPServer | None = None
    started_at: float = 0.0
    # Cold start: process start to the runtime asking for its first event.
    ready_at: float | None = None
    # The first invocation, from handing the event over to the response.
    first_invocation_s: float | None = None


def _runtime_handler(fn: Function) -> type[BaseHTTPRequestHandler]:
    class Runtime(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _reply(self, status: int, body: bytes = b"{}", headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802
            if not self.path.endswith("/runtime/invocation/next"):
                return self._reply(404)
            if fn.ready_at is None:
                fn.ready_at = time.time()
            inv = fn.pending.get()
            inv.delivered_at = time.time()
            fn.inflight[inv.request_id] = inv
            self._reply(
                200,
                inv.payload,
                {
                    "content-type": "application/json",
                    "Lambda-Runtime-Aws-Request-Id": inv.request_id,
                    "Lambda-Runtime-Deadline-Ms": str(int((time.time() + INVOKE_TIMEOUT) * 1000)),
                    "Lambda-Runtime-Invoked-Function-Arn": f"arn:aws:lambda:us-east-1:123456789012:function:{fn.name}",
                    "Lambda-Runtime-Trace-Id": f"Root=1-{uuid.uuid4().hex[:8]}-{uuid.uuid4().hex[:24]}",
                },
            )

        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            parts = self.path.strip("/").split("/")
            # 2018-06-01/runtime/invocation/<id>/response|error, or 2018-06-01/runtime/init/error
            if len(parts) == 5 and parts[2] == "invocation" and parts[4] in ("response", "error"):
                inv = fn.inflight.pop(parts[3], None)
                if inv is None:
                    return self._reply(400)
                inv.status = 200 if parts[4] == "response" else 500
                inv.body = body
                if fn.first_invocation_s is None:
                    fn.first_invocation_s = time.time() - inv.delivered_at
                inv.done.set()
                return self._reply(202)
            if parts[-2:] == ["init", "error"]:
                return self._reply(202)
            return self._reply(404)

    return Runtime


class LambdaHost:
    def __init__(self, port: int):
        self.port = port
        self.functions: dict[str, Function] = {}
        self.server = ThreadingHTTPServer(("127.0.0.1", port), self._invoke_handler())

    def add(self, name: str, binary: str, env: dict[str, str]) -> None:
        fn = Function(name=name, binary=binary, env=env)
        fn.runtime_server = ThreadingHTTPServer(("127.0.0.1", 0), _runtime_handler(fn))
        threading.Thread(target=fn.runtime_server.serve_forever, daemon=True).start()
        runtime_port = fn.runtime_server.server_address[1]
        process_env = {
            "PATH": os.environ.get("PATH", ""),
            "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{runtime_port}",
            "AWS_LAMBDA_FUNCTION_NAME": name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{name}",
            "AWS_LAMBDA_LOG_STREAM_NAME": "local",
            **env,
        }
        fn.started_at = time.time()
        fn.process = subprocess.Popen([binary], env=process_env, stdout=open(os.devnull, "w") if env.get("FIREBREAK_QUIET") else None)
        self.functions[name] = fn

    def invoke(self, name: str, payload: bytes) -> tuple[int, bytes]:
        fn = self.functions.get(name)
        if fn is None:
            return 404, json.dumps({"errorType": "ResourceNotFound", "errorMessage": f"no function {name}"}).encode()
        if fn.process is not None and fn.process.poll() is not None:
            return 500, json.dumps({"errorType": "Runtime.ExitError", "errorMessage": f"{name} exited with {fn.process.returncode}"}).encode()
        inv = Invocation(request_id=str(uuid.uuid4()), payload=payload)
        fn.pending.put(inv)
        if not inv.done.wait(INVOKE_TIMEOUT):
            return 500, json.dumps({"errorType": "Sandbox.Timedout", "errorMessage": f"{name} timed out"}).encode()
        return inv.status, inv.body

    def _invoke_handler(self) -> type[BaseHTTPRequestHandler]:
        host = self

        class Invoke(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                parts = self.path.strip("/").split("/")
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                if len(parts) != 4 or parts[1] != "functions" or parts[3] != "invocations":
                    status, out = 404, b'{"errorType":"NotFound","errorMessage":"unknown path"}'
                else:
                    status, out = host.invoke(parts[2], body or b"{}")
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

        return Invoke

    def start(self) -> None:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        for fn in self.functions.values():
            if fn.process is not None and fn.process.poll() is None:
                fn.process.terminate()
                try:
                    fn.process.wait(5)
                except subprocess.TimeoutExpired:
                    fn.process.kill()
            if fn.runtime_server is not None:
                fn.runtime_server.shutdown()
        self.server.shutdown()
