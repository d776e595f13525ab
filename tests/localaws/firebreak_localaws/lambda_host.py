"""Lambda invocations (from the API and from the Step Functions engine) go to the local
Lambda host, which serves the Rust runbooks behind the Lambda runtime API
(`cargo lambda watch`). The host answers a function error with HTTP 500 and
`{errorType, errorMessage}`; real Lambda answers 200 with `X-Amz-Function-Error`, which is
what ASL Retry and Catch read, so the answer is translated here."""

from __future__ import annotations

import json
import os
import threading
import urllib.error
import urllib.request
from typing import Any

from moto.awslambda.models import LambdaFunction

# Lambda's own ceiling: the host enforces each function's deployed timeout itself.
TIMEOUT_SECONDS = 900


def host_url() -> str:
    return os.environ.get("FIREBREAK_LAMBDA_HOST", "http://127.0.0.1:9000").rstrip("/")


def call_host(function_name: str, payload: bytes) -> tuple[bool, bytes]:
    """(errored, body) for one invocation on the local host."""
    url = f"{host_url()}/2015-03-31/functions/{function_name}/invocations"
    request = urllib.request.Request(url, data=payload, method="POST", headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:
            return False, response.read()
    except urllib.error.HTTPError as e:
        body = e.read()
        try:
            parsed = json.loads(body)
            if isinstance(parsed, dict) and "errorType" in parsed:
                return True, json.dumps(
                    {"errorType": parsed["errorType"], "errorMessage": parsed.get("errorMessage", "")}
                ).encode()
        except ValueError:
            pass
        return True, json.dumps({"errorType": "Lambda.Unknown", "errorMessage": body.decode("utf-8", "replace")}).encode()
    except (urllib.error.URLError, OSError) as e:
        return True, json.dumps(
            {"errorType": "Lambda.ServiceException", "errorMessage": f"local Lambda host unreachable at {url}: {e}"}
        ).encode()


def install() -> None:
    def invoke(self: LambdaFunction, body: Any, request_headers: Any, response_headers: Any) -> bytes:
        payload = body if isinstance(body, bytes) else (body or "{}").encode("utf-8")
        invocation = (request_headers or {}).get("x-amz-invocation-type", "RequestResponse")
        if invocation == "Event":
            threading.Thread(target=call_host, args=(self.function_name, payload), daemon=True).start()
            return b""
        errored, out = call_host(self.function_name, payload)
        if errored:
            response_headers["x-amz-function-error"] = "Unhandled"
        return out

    LambdaFunction.invoke = invoke  # type: ignore[method-assign]
