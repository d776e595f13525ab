"""Fault injection and the request log.

Every AWS call that reaches the local account is logged with its service, operation and
the access key that signed it (each Lambda runs with a key of its own, so the log says
which function made which call). A test can make the next N calls of an operation fail
with a chosen error code and HTTP status, as AWS would when it throttles or breaks, or
answer slowly: held `delaySeconds` before they are carried out, as a slow AWS would (two
callers then overlap where they otherwise might not).
"""

from __future__ import annotations

import json
import random
import threading
import time
import uuid
from collections import Counter
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


@dataclass
class Delay:
    service: str
    operation: str
    seconds: float
    remaining: int
    hits: int = field(default=0)


DELAYS: list[Delay] = []
MAX_DELAY_SECONDS = 30.0

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


def add_delay(service: str, operation: str, seconds: float, count: int) -> Delay:
    if count < 1:
        raise ValueError("count must be at least 1")
    if not 0 < seconds <= MAX_DELAY_SECONDS:
        raise ValueError(f"delaySeconds must be within (0, {MAX_DELAY_SECONDS:g}]")
    delay = Delay(service=service, operation=operation, seconds=seconds, remaining=count)
    with _LOCK:
        DELAYS.append(delay)
    return delay


# Chaos: every request signed by a session of one of `roles` fails at `rate`, with one of
# the `kinds` (throttling, server errors, access denied) in the service's own words.
CHAOS: dict = {"rate": 0.0, "kinds": [], "roles": [], "random": random.Random(0)}
CHAOS_HITS: Counter = Counter()

# (code, HTTP status) per kind: EC2, the query services (IAM, STS), Lambda, Security Hub,
# and the JSON 1.1 services.
_CHAOS_CODES = {
    "throttling": {"ec2": ("RequestLimitExceeded", 503), "query": ("Throttling", 400), "lambda": ("TooManyRequestsException", 429),
                   "securityhub": ("TooManyRequestsException", 429), "json": ("ThrottlingException", 400)},
    "server-error": {"ec2": ("InternalError", 500), "query": ("ServiceUnavailable", 503), "lambda": ("ServiceException", 500),
                     "securityhub": ("InternalException", 500), "json": ("InternalFailure", 500)},
    "access-denied": {"ec2": ("UnauthorizedOperation", 403), "query": ("AccessDenied", 403), "lambda": ("AccessDeniedException", 403),
                      "securityhub": ("AccessDeniedException", 403), "json": ("AccessDeniedException", 400)},
}
CHAOS_KINDS = tuple(_CHAOS_CODES)


def set_chaos(rate: float, kinds: list[str], roles: list[str], seed: int) -> dict:
    if not 0.0 <= rate <= 1.0:
        raise ValueError("rate must be within 0..1")
    unknown = [k for k in kinds if k not in _CHAOS_CODES]
    if unknown:
        raise ValueError(f"unknown kinds {unknown}: {list(_CHAOS_CODES)}")
    with _LOCK:
        CHAOS.update(rate=rate, kinds=list(kinds), roles=list(roles), random=random.Random(seed))
        CHAOS_HITS.clear()
    return {"rate": rate, "kinds": kinds, "roles": roles}


def _family(service: str) -> str:
    if service in _EC2_XML:
        return "ec2"
    if service in _QUERY_XML:
        return "query"
    if service in ("lambda", "awslambda"):  # moto names Lambda's responses "awslambda"
        return "lambda"
    return service if service == "securityhub" else "json"


def _chaos(service: str, operation: str, principal_role: str | None) -> Fault | None:
    with _LOCK:
        if CHAOS["rate"] <= 0 or not CHAOS["kinds"] or principal_role not in CHAOS["roles"]:
            return None
        rng = CHAOS["random"]
        if rng.random() >= CHAOS["rate"]:
            return None
        kind = rng.choice(CHAOS["kinds"])
        CHAOS_HITS[f"{kind} {service}:{operation}"] += 1
    code, status = _CHAOS_CODES[kind][_family(service)]
    return Fault(service=service, operation=operation, code=code, status=status, remaining=0, message=f"chaos: {kind}")


# Session key -> its role's name: a session's role never changes, and every request asks.
_ROLE_OF: dict[str, str] = {}


def _role_of(access_key: str) -> str | None:
    """The role name behind an assumed-role session key, if it is one."""
    from moto.sts.models import sts_backends

    if not access_key.startswith("ASIA"):
        return None
    known = _ROLE_OF.get(access_key)
    if known is not None:
        return known
    for account in list(sts_backends.keys()):
        for role in sts_backends[account]["aws"].assumed_roles:
            if role.access_key_id == access_key:
                name = role.role_arn.split("/")[-1]
                _ROLE_OF[access_key] = name
                return name
    return None


def clear() -> None:
    with _LOCK:
        _ROLE_OF.clear()
        FAULTS.clear()
        DELAYS.clear()
        REQUEST_LOG.clear()
        CHAOS.update(rate=0.0, kinds=[], roles=[])
        CHAOS_HITS.clear()


def log_s3(access_key: str, operation: str, account: str, region: str) -> None:
    """S3 requests do not pass through `call_action` (moto routes S3 itself): IAM
    enforcement logs each one it authorises, by its IAM action name."""
    role = _role_of(access_key)
    with _LOCK:
        REQUEST_LOG.append(
            {"time": time.time(), "service": "s3", "operation": operation, "accessKeyId": access_key, "account": account, "region": region, "role": role}
        )


def _take(entries: list, service: str, operation: str):  # type: ignore[no-untyped-def]
    """The first fault (or delay) of `entries` left for this operation, one use taken."""
    with _LOCK:
        for entry in entries:
            if entry.service == service and entry.operation == operation and entry.remaining > 0:
                entry.remaining -= 1
                entry.hits += 1
                return entry
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
        role = _role_of(access_key)
        try:
            # The account the request acts in (the signing key's), and its region.
            account, region = self.get_current_account(), self.region
        except Exception:  # noqa: BLE001
            account, region = "", ""
        with _LOCK:
            REQUEST_LOG.append(
                {"time": time.time(), "service": service, "operation": operation, "accessKeyId": access_key, "account": account, "region": region, "role": role}
            )
        held = _take(DELAYS, service, operation)
        if held is not None:
            # Held before moto carries it out (outside the lock: other callers go on), so
            # what another caller does meanwhile is what this call finds.
            time.sleep(held.seconds)
        fault = _take(FAULTS, service, operation) or (_chaos(service, operation, role) if CHAOS["rate"] > 0 else None)
        if fault is not None:
            headers, body = error_body(service, fault.code, fault.message)
            headers["status"] = str(fault.status)
            # Every AWS answer carries a request id; SDKs and the Step Functions engine read it.
            headers["x-amzn-requestid"] = str(uuid.uuid4())
            return fault.status, headers, body
        return original(self)

    call_action._firebreak = True  # type: ignore[attr-defined]
    BaseResponse.call_action = call_action  # type: ignore[method-assign]
