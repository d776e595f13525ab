"""Fault injection and the request log.

Every AWS call that reaches the local account is logged with its service, operation and
the access key that signed it (each Lambda runs with a key of its own, so the log says
which function made which call). A test can make the next N calls of an operation fail
with a chosen error code and HTTP status, as AWS would when it throttles or breaks.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field

from moto.core.responses import BaseResponse

_LOCK = threading.Lock()
REQUEST_LOG: list[dict] = []


@dataclass
class Fault:
    service: str
    operation: str
    code: str
    status: int
    remaining: int
    message: str = "injected by the Firebreak local account"
    hits: int = field(default=0)


FAULTS: list[Fault] = []

# Protocol families: how each service spells an error on the wire.
_EC2_XML = {"ec2"}
_QUERY_XML = {"iam", "sts", "sns", "sqs", "cloudwatch"}


def add_fault(service: str, operation: str, code: str, status: int, count: int) -> Fault:
    if count < 1:
        raise ValueError("count must be at least 1")
    if not 400 <= status <= 599:
        raise ValueError("status must be an HTTP error status")
    fault = Fault(service=service, operation=operation, code=code, status=status, remaining=count)
    with _LOCK:
        FAULTS.append(fault)
    return fault


def clear() -> None:
    with _LOCK:
        FAULTS.clear()
        REQUEST_LOG.clear()


def _take(service: str, operation: str) -> Fault | None:
    with _LOCK:
        for fault in FAULTS:
            if fault.service == service and fault.operation == operation and fault.remaining > 0:
                fault.remaining -= 1
                fault.hits += 1
                return fault
    return None


def error_body(service: str, code: str, message: str) -> tuple[dict, str]:
    """Headers and body of an AWS error in the service's own protocol."""
    if service in _EC2_XML:
        body = (
            f"<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message>"
            f"</Error></Errors><RequestID>firebreak-fault</RequestID></Response>"
        )
        return {"content-type": "text/xml"}, body
    if service in _QUERY_XML:
        body = (
            f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}"
            f"</Message></Error><RequestId>firebreak-fault</RequestId></ErrorResponse>"
        )
        return {"content-type": "text/xml"}, body
    return (
        {"content-type": "application/x-amz-json-1.1", "x-amzn-errortype": code},
        json.dumps({"__type": code, "message": message, "Message": message}),
    )


def install() -> None:
    original = BaseResponse.call_action
    if getattr(original, "_firebreak", False):
        return

    def call_action(self):  # type: ignore[no-untyped-def]
        try:
            operation = self._get_action()
        except Exception:  # noqa: BLE001 - an unroutable request is moto's to refuse
            return original(self)
        try:
            access_key = self.get_access_key()
        except Exception:  # noqa: BLE001
            access_key = ""
        service = self.service_name or ""
        with _LOCK:
            REQUEST_LOG.append(
                {"time": time.time(), "service": service, "operation": operation, "accessKeyId": access_key}
            )
        fault = _take(service, operation)
        if fault is not None:
            headers, body = error_body(service, fault.code, fault.message)
            headers["status"] = str(fault.status)
            return fault.status, headers, body
        return original(self)

    call_action._firebreak = True  # type: ignore[attr-defined]
    BaseResponse.call_action = call_action  # type: ignore[method-assign]
