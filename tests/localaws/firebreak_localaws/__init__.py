"""Firebreak's extension of moto: closes the gaps between moto and AWS that the runbooks
meet. `install()` patches moto in this process; `python -m firebreak_localaws` runs a moto
server with it on 127.0.0.1:$MOTO_PORT.

Control API (beside moto's own /moto-api):
  POST   /firebreak-api/faults    {"service", "operation", "code", "status", "count"}: the next
                                  `count` calls fail; or {"service", "operation",
                                  "delaySeconds", "count"}: they are held that long first
  DELETE /firebreak-api/faults    clears faults and the request log
  GET    /firebreak-api/requests  the request log: [{service, operation, accessKeyId, time}]
  POST   /firebreak-api/chaos     {"rate", "kinds", "roles", "seed"}: every request of a session
                                  of one of `roles` fails at `rate` with one of `kinds`
                                  (throttling, server-error, access-denied); DELETE faults stops it
  GET    /firebreak-api/chaos     how many of each kind were injected, by operation
  POST   /firebreak-api/aws-events {"account", "region", "entries": [PutEvents entries]}
                                  puts events as an AWS service would (GuardDuty, Security
                                  Hub): PutEvents itself refuses aws.* sources, as AWS does
  POST   /firebreak-api/config    {"securityHubImportDelaySeconds": n}: how long after its
                                  event a GuardDuty finding reaches Security Hub
  POST   /firebreak-api/iam       {"enforce": bool}: every AWS request authorised against the
                                  caller's IAM policies and boundary (iam_enforcement)
  GET    /firebreak-api/iam/refusals: every request IAM refused since enforcement was last off
  POST   /firebreak-api/iam/access-key {"account", "userName", "accessKeyId", "secretAccessKey"}:
                                  an access key with a chosen id for an existing user
  POST   /firebreak-api/iam/service-credentials {"roleArn", "service"}: the role's
                                  credentials as that service gets them (trust checked)
  POST   /firebreak-api/organization {"id", "managementAccount", "delegatedAdministrator",
                                  "accounts": [...]}: Organizations with these accounts, OUs,
                                  tags and security contacts (organization.py)
  POST   /firebreak-api/securityhub-v2/findings {"account", "region", "findings": [OCSF]}:
                                  a product's findings into the new Security Hub, as
                                  GuardDuty's integration puts them (securityhub_v2.py)
"""

from __future__ import annotations

import json
from typing import Any

from moto.moto_server.werkzeug_app import DomainDispatcherApplication

from . import autoscaling_checks, aws_sources, ec2_checks, event_patterns, guardduty_import, events_to_sfn, faults, iam_enforcement, lambda_host, organization, securityhub, securityhub_v2, stepfunctions_callbacks

PREFIX = "/firebreak-api/"


def _respond(start_response: Any, status: int, body: Any) -> list[bytes]:
    text = json.dumps(body).encode()
    reason = {200: "OK", 400: "Bad Request", 404: "Not Found"}.get(status, "")
    start_response(f"{status} {reason}", [("content-type", "application/json"), ("content-length", str(len(text)))])
    return [text]


def _body(environ: dict[str, Any]) -> Any:
    """The request's JSON body ({} when empty)."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    return json.loads(environ["wsgi.input"].read(length) or b"{}")


def control(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    path, method = environ.get("PATH_INFO", ""), environ.get("REQUEST_METHOD", "GET")
    if path == PREFIX + "requests" and method == "GET":
        return _respond(start_response, 200, faults.REQUEST_LOG)
    if path == PREFIX + "faults" and method == "DELETE":
        faults.clear()
        return _respond(start_response, 200, {})
    if path == PREFIX + "aws-events" and method == "POST":
        try:
            spec = _body(environ)
            entries = aws_sources.put_as_service(spec["account"], spec["region"], spec["entries"])
        except (KeyError, ValueError, TypeError) as e:
            return _respond(start_response, 400, {"error": f"bad aws-events request: {e}"})
        return _respond(start_response, 200, {"Entries": entries})
    if path == PREFIX + "config" and method == "POST":
        try:
            return _respond(start_response, 200, guardduty_import.configure(_body(environ)))
        except (KeyError, ValueError, TypeError) as e:
            return _respond(start_response, 400, {"error": f"unknown or bad setting: {e}"})
    if path == PREFIX + "iam/refusals" and method == "GET":
        return _respond(start_response, 200, iam_enforcement.REFUSALS)
    if path.startswith(PREFIX + "iam") and method == "POST":
        try:
            spec = _body(environ)
            if path == PREFIX + "iam":
                iam_enforcement.enforce(bool(spec["enforce"]))
                return _respond(start_response, 200, {"enforce": iam_enforcement.enforcing()})
            if path == PREFIX + "iam/access-key":
                iam_enforcement.register_access_key(spec["account"], spec["userName"], spec["accessKeyId"], spec["secretAccessKey"])
                return _respond(start_response, 200, {})
            if path == PREFIX + "iam/service-credentials":
                return _respond(start_response, 200, iam_enforcement.service_credentials(spec["roleArn"], spec["service"]))
        except iam_enforcement.NotTrusted as e:
            return _respond(start_response, 400, {"error": str(e)})
        except (KeyError, ValueError, TypeError) as e:
            return _respond(start_response, 400, {"error": f"bad iam request: {e}"})
    if path == PREFIX + "organization" and method == "POST":
        try:
            return _respond(start_response, 200, organization.build(_body(environ)))
        except (KeyError, ValueError, TypeError) as e:
            return _respond(start_response, 400, {"error": f"bad organization: {e}"})
    if path == PREFIX + "securityhub-v2/findings" and method == "POST":
        try:
            spec = _body(environ)
            return _respond(start_response, 200, securityhub_v2.put_findings(spec["account"], spec["region"], spec["findings"]))
        except (KeyError, ValueError, TypeError) as e:
            return _respond(start_response, 400, {"error": f"bad securityhub-v2 findings: {e}"})
    if path == PREFIX + "chaos" and method == "GET":
        return _respond(start_response, 200, dict(faults.CHAOS_HITS))
    if path == PREFIX + "chaos" and method == "POST":
        try:
            spec = _body(environ)
            return _respond(start_response, 200, faults.set_chaos(
                float(spec["rate"]), list(spec.get("kinds", faults.CHAOS_KINDS)), list(spec["roles"]), int(spec.get("seed", 0))))
        except (KeyError, ValueError, TypeError) as e:
            return _respond(start_response, 400, {"error": f"bad chaos: {e}"})
    if path == PREFIX + "faults" and method == "POST":
        try:
            spec = _body(environ)
            if "delaySeconds" in spec:
                d = faults.add_delay(spec["service"], spec["operation"], float(spec["delaySeconds"]), int(spec.get("count", 1)))
                return _respond(start_response, 200, {"service": d.service, "operation": d.operation, "remaining": d.remaining, "delaySeconds": d.seconds})
            f = faults.add_fault(
                service=spec["service"],
                operation=spec["operation"],
                code=spec["code"],
                status=int(spec.get("status", 400)),
                count=int(spec.get("count", 1)),
            )
        except (KeyError, ValueError, TypeError) as e:
            return _respond(start_response, 400, {"error": f"bad fault: {e}"})
        return _respond(start_response, 200, {"service": f.service, "operation": f.operation, "remaining": f.remaining})
    return _respond(start_response, 404, {"error": f"no {method} {path}"})


def install() -> None:
    faults.install()
    iam_enforcement.install()
    aws_sources.install()
    event_patterns.install()
    securityhub.install()
    securityhub_v2.install()
    events_to_sfn.install()
    lambda_host.install()
    ec2_checks.install()
    autoscaling_checks.install()
    stepfunctions_callbacks.install()
    organization.install()
    original = DomainDispatcherApplication.__call__
    if getattr(original, "_firebreak", False):
        return

    def __call__(self: DomainDispatcherApplication, environ: dict[str, Any], start_response: Any) -> Any:
        if environ.get("PATH_INFO", "").startswith(PREFIX):
            return control(environ, start_response)
        return original(self, environ, start_response)

    __call__._firebreak = True  # type: ignore[attr-defined]
    DomainDispatcherApplication.__call__ = __call__  # type: ignore[method-assign]
