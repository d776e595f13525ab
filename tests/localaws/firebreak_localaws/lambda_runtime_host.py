"""The local Lambda host: runs each Rust runbook binary behind the Lambda runtime API (the
interface every Lambda runtime speaks, as `cargo lambda watch` serves it), and invokes
them at `POST /2015-03-31/functions/NAME/invocations`, answering 200 with the result or
500 with `{errorType, errorMessage}` on a function error.

As strict as Lambda, not kinder:
- concurrent invocations of one function run side by side, each in an environment (a
  process) of its own: a new one starts when every running one is busy, up to the
  function's concurrency;
- each invocation has the function's deployed timeout: the runtime gets that deadline, and
  an invocation still running at it fails `Sandbox.Timedout` and its environment is
  stopped, as Lambda stops it.

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

DEFAULT_TIMEOUT = 60
DEFAULT_CONCURRENCY = 10


@dataclass
class Invocation:
    request_id: str
    payload: bytes
    done: threading.Event = field(default_factory=threading.Event)
    delivered_at: float = 0.0
    # Timed out before any environment took it (start-up was slower than the timeout).
    cancelled: bool = False
    status: int = 200
    body: bytes = b""


@dataclass
class Environment:
    """One execution environment: a process and the runtime API it polls."""

    process: subprocess.Popen
    server: ThreadingHTTPServer
    inflight: Invocation | None = None


@dataclass
class Function:
    name: str
    binary: str
    env: dict[str, str]
    timeout: float = DEFAULT_TIMEOUT
    memory: int = 128
    concurrency: int = DEFAULT_CONCURRENCY
    pending: "queue.Queue[Invocation]" = field(default_factory=queue.Queue)
    environments: list[Environment] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    # Environments waiting for their next event.
    idle: int = 0
    started_at: float = 0.0
    # Cold start: process start to the runtime asking for its first event.
    ready_at: float | None = None
    # The first invocation, from handing the event over to the response.
    first_invocation_s: float | None = None

    @property
    def process(self) -> subprocess.Popen | None:
        """The first environment's process (what the benchmarks measure)."""
        return self.environments[0].process if self.environments else None


def _runtime_handler(fn: Function, env: list[Environment]) -> type[BaseHTTPRequestHandler]:
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
            with fn.lock:
                fn.idle += 1
            inv = fn.pending.get()
            while inv.cancelled:
                inv = fn.pending.get()
            with fn.lock:
                fn.idle -= 1
            inv.delivered_at = time.time()
            env[0].inflight = inv
            self._reply(
                200,
                inv.payload,
                {
                    "content-type": "application/json",
                    "Lambda-Runtime-Aws-Request-Id": inv.request_id,
                    "Lambda-Runtime-Deadline-Ms": str(int((inv.delivered_at + fn.timeout) * 1000)),
                    "Lambda-Runtime-Invoked-Function-Arn": f"arn:aws:lambda:us-east-1:123456789012:function:{fn.name}",
                    "Lambda-Runtime-Trace-Id": f"Root=1-{uuid.uuid4().hex[:8]}-{uuid.uuid4().hex[:24]}",
                },
            )

        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            parts = self.path.strip("/").split("/")
            # 2018-06-01/runtime/invocation/<id>/response|error, or 2018-06-01/runtime/init/error
            if len(parts) == 5 and parts[2] == "invocation" and parts[4] in ("response", "error"):
                inv = env[0].inflight
                if inv is None or inv.request_id != parts[3]:
                    return self._reply(400)
                env[0].inflight = None
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

    def add(self, name: str, binary: str, env: dict[str, str], timeout: float = DEFAULT_TIMEOUT,
            memory: int = 128, concurrency: int = DEFAULT_CONCURRENCY) -> None:
        fn = Function(name=name, binary=binary, env=env, timeout=timeout, memory=memory, concurrency=concurrency)
        fn.started_at = time.time()
        self.functions[name] = fn
        self._start_environment(fn)

    def _start_environment(self, fn: Function) -> None:
        """A new execution environment: its own runtime API and process."""
        holder: list[Environment] = []
        server = ThreadingHTTPServer(("127.0.0.1", 0), _runtime_handler(fn, holder))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        process_env = {
            "PATH": os.environ.get("PATH", ""),
            "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{server.server_address[1]}",
            "AWS_LAMBDA_FUNCTION_NAME": fn.name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(fn.memory),
            "AWS_LAMBDA_FUNCTION_TIMEOUT": str(int(fn.timeout)),
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{fn.name}",
            "AWS_LAMBDA_LOG_STREAM_NAME": f"local-{len(fn.environments) + 1}",
            **fn.env,
        }
        process = subprocess.Popen([fn.binary], env=process_env, stdout=open(os.devnull, "w") if fn.env.get("FIREBREAK_QUIET") else None)
        holder.append(Environment(process=process, server=server))
        fn.environments.append(holder[0])

    def _scale(self, fn: Function) -> None:
        """Lambda scales out: an invocation that finds every environment busy gets a new one."""
        with fn.lock:
            live = [e for e in fn.environments if e.process.poll() is None]
            # Every live environment busy (or none left, after a timeout or a crash).
            if fn.pending.qsize() > fn.idle and len(live) < fn.concurrency:
                self._start_environment(fn)

    def invoke(self, name: str, payload: bytes) -> tuple[int, bytes]:
        fn = self.functions.get(name)
        if fn is None:
            return 404, json.dumps({"errorType": "ResourceNotFound", "errorMessage": f"no function {name}"}).encode()
        inv = Invocation(request_id=str(uuid.uuid4()), payload=payload)
        fn.pending.put(inv)
        self._scale(fn)
        deadline = time.time() + fn.timeout
        while not inv.done.wait(0.05):
            holder = next((e for e in fn.environments if e.inflight is inv), None)
            if holder is not None and holder.process.poll() is not None:
                holder.inflight = None
                return 500, json.dumps({"errorType": "Runtime.ExitError", "errorMessage": f"{name} exited with {holder.process.returncode} during the invocation"}).encode()
            if time.time() >= deadline:
                # As Lambda does: the environment that ran over its deadline is stopped.
                if holder is not None:
                    holder.inflight = None
                    holder.process.kill()
                else:
                    inv.cancelled = True
                return 500, json.dumps({"errorType": "Sandbox.Timedout", "errorMessage": f"{name} timed out after {fn.timeout:g} seconds"}).encode()
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
            for e in fn.environments:
                if e.process.poll() is None:
                    e.process.terminate()
                    try:
                        e.process.wait(5)
                    except subprocess.TimeoutExpired:
                        e.process.kill()
                e.server.shutdown()
        self.server.shutdown()
