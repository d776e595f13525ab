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

from . import iam_enforcement

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


def _engine_client_as_the_machine_role(original: Any) -> Any:
    """The Step Functions engine calls Lambda as the execution's role, as in AWS (moto signs
    with a key nobody has, which strict IAM refuses)."""

    def boto_client_for(region: str, service: str, state_credentials: Any = None) -> Any:
        role = getattr(state_credentials, "role_arn", None)
        if not iam_enforcement.enforcing() or not role:
            return original(region, service, state_credentials)
        import boto3
        from botocore.config import Config

        creds = iam_enforcement.service_credentials(role, "states.amazonaws.com")
        return boto3.client(
            service,
            region_name=region,
            endpoint_url=f"http://localhost:{os.environ.get('MOTO_PORT', '5000')}",
            aws_access_key_id=creds["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=creds["AWS_SECRET_ACCESS_KEY"],
            aws_session_token=creds["AWS_SESSION_TOKEN"],
            config=Config(parameter_validation=False, retries={"max_attempts": 0, "total_max_attempts": 1}, read_timeout=TIMEOUT_SECONDS + 60),
        )

    boto_client_for._firebreak = True  # type: ignore[attr-defined]
    return boto_client_for


def install() -> None:
    import sys

    from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils  # noqa: F401
    from moto.stepfunctions.parser.asl.utils import boto_client

    if not getattr(boto_client.boto_client_for, "_firebreak", False):
        original = boto_client.boto_client_for
        patched = _engine_client_as_the_machine_role(original)
        # Every engine module imported the function by name: each gets the patched one.
        for module in list(sys.modules.values()):
            if getattr(module, "__name__", "").startswith("moto.stepfunctions") and getattr(module, "boto_client_for", None) is original:
                module.boto_client_for = patched  # type: ignore[attr-defined]

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
