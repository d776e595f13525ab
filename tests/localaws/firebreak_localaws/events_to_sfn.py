"""EventBridge rules whose target is a state machine start an execution with the event
(after InputPath, Input or InputTransformer) as input, as EventBridge does."""

from __future__ import annotations

import copy
import json
import os
import threading
import uuid
from datetime import datetime, timezone
from typing import Any

import boto3
from botocore.config import Config
from moto.events.models import Rule
from moto.events.utils import EventTemplateParser
from moto.utilities.arns import parse_arn

from . import iam_enforcement

DELIVERIES: list[dict[str, Any]] = []
_LOCK = threading.Lock()


def _as_delivered(event: dict[str, Any]) -> dict[str, Any]:
    """moto keeps `time` as epoch seconds; EventBridge delivers ISO 8601."""
    event = copy.deepcopy(event)
    if isinstance(event.get("time"), (int, float)):
        event["time"] = datetime.fromtimestamp(event["time"], timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return event


def _input_path(event: dict[str, Any], path: str) -> Any:
    if path in ("", "$"):
        return event
    if not path.startswith("$."):
        raise ValueError(f"InputPath {path!r} is not supported locally (only $.a.b)")
    value: Any = event
    for part in path[2:].split("."):
        value = value[part]
    return value


def _target_input(target: dict[str, Any], event: dict[str, Any]) -> str:
    if "Input" in target:
        return target["Input"]
    if "InputPath" in target:
        return json.dumps(_input_path(event, target["InputPath"]))
    transformer = target.get("InputTransformer")
    if transformer:
        out = EventTemplateParser.parse(
            input_template=transformer.get("InputTemplate"),
            input_paths_map=transformer.get("InputPathsMap", {}),
            event=event,
        )
        return out if isinstance(out, str) else json.dumps(out)
    return json.dumps(event)


def _start(state_machine_arn: str, execution_input: str, region: str, role_arn: str | None) -> None:
    port = os.environ.get("MOTO_PORT", "5000")
    # EventBridge starts the execution as the target's role, as in AWS: with IAM
    # enforced, a role that may not start the machine gets nothing started.
    keys = {"aws_access_key_id": "firebreak-eventbridge", "aws_secret_access_key": "local"}
    if iam_enforcement.enforcing():
        if not role_arn:
            return
        creds = iam_enforcement.service_credentials(role_arn, "events.amazonaws.com")
        keys = {
            "aws_access_key_id": creds["AWS_ACCESS_KEY_ID"],
            "aws_secret_access_key": creds["AWS_SECRET_ACCESS_KEY"],
            "aws_session_token": creds["AWS_SESSION_TOKEN"],
        }
    # EventBridge retries a target that throttles or fails (for up to 24 hours in AWS).
    retries = Config(retries={"total_max_attempts": 8, "mode": "standard"})
    sfn = boto3.client("stepfunctions", endpoint_url=f"http://127.0.0.1:{port}", region_name=region, config=retries, **keys)
    # EventBridge names each execution afresh; without a name moto would treat a second
    # delivery of the same event as the same execution.
    try:
        out = sfn.start_execution(stateMachineArn=state_machine_arn, name=str(uuid.uuid4()), input=execution_input)
    except Exception as e:  # noqa: BLE001 - EventBridge counts a failed invocation, the put still succeeded
        with _LOCK:
            DELIVERIES.append({"stateMachineArn": state_machine_arn, "error": str(e)})
        return
    with _LOCK:
        DELIVERIES.append({"stateMachineArn": state_machine_arn, "executionArn": out["executionArn"]})


def install() -> None:
    original = Rule.send_to_targets
    if getattr(original, "_firebreak", False):
        return

    def send_to_targets(self: Rule, original_event: Any, transform_input: bool = True) -> None:
        # EventBridge sends nothing for a disabled rule; moto 5.2.5 does not check.
        # A scheduled rule has no pattern and matches no event: only its clock starts it.
        if self.state != "ENABLED" or self.scheduled_expression:
            return
        machines = [t for t in self.targets if parse_arn(t["Arn"]).service == "states"]
        others = [t for t in self.targets if t not in machines]
        if others:
            saved = self.targets
            self.targets = others
            try:
                original(self, original_event, transform_input)
            finally:
                self.targets = saved
        if not machines or not self.event_pattern.matches_event(original_event):
            return
        event = _as_delivered(original_event)
        for target in machines:
            # EventBridge delivers asynchronously: PutEvents returns before the execution starts.
            threading.Thread(
                target=_start,
                args=(target["Arn"], _target_input(target, event), self.region_name, target.get("RoleArn")),
                daemon=True,
            ).start()

    send_to_targets._firebreak = True  # type: ignore[attr-defined]
    Rule.send_to_targets = send_to_targets  # type: ignore[method-assign]
