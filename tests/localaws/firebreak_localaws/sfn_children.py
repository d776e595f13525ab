"""Step Functions starting Step Functions (`arn:aws:states:::states:startExecution.sync:2`),
as the response starts its playbooks.

moto 5.2.5 ported LocalStack's engine without its parameter normalisation: the task
calls boto with the ASL's PascalCase names (`StateMachineArn`), which boto rejects
(`KeyError: 'StateMachineArn'`), and then reads the answer in PascalCase
(`ExecutionArn`), which boto returns in camelCase. Real Step Functions maps both ways;
so does this: top-level keys only, since `Input` and `Output` are the caller's JSON.
"""

from __future__ import annotations

import uuid
from typing import Any

from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_sfn import (
    StateTaskServiceSfn,
)


def _camel(key: str) -> str:
    return key[:1].lower() + key[1:]


def _pascal(key: str) -> str:
    return key[:1].upper() + key[1:]


def install() -> None:
    original_params = StateTaskServiceSfn._normalise_parameters
    if getattr(original_params, "_firebreak", False):
        return

    def _normalise_parameters(self: Any, parameters: dict, boto_service_name: str | None = None, service_action_name: str | None = None) -> None:
        original_params(self, parameters, boto_service_name=boto_service_name, service_action_name=service_action_name)
        for key in list(parameters):
            value = parameters.pop(key)
            parameters[_camel(key)] = value
        if service_action_name in (None, "start_execution", "startExecution") and not parameters.get("name"):
            # AWS names an unnamed child execution with a UUID; moto would name it "None".
            parameters["name"] = str(uuid.uuid4())

    def _normalise_response(self: Any, response: Any, boto_service_name: str | None = None, service_action_name: str | None = None) -> None:
        if isinstance(response, dict):
            for key in list(response):
                value = response.pop(key)
                if hasattr(value, "isoformat"):
                    value = value.isoformat()
                response[_pascal(key)] = value

    original_eval = StateTaskServiceSfn._eval_service_task

    def _eval_service_task(self: Any, env: Any, resource_runtime_part: Any, normalised_parameters: dict, state_credentials: Any) -> None:
        original_eval(self, env, resource_runtime_part, normalised_parameters, state_credentials)
        # The start answer goes on the stack as boto gave it; the resolvers read PascalCase.
        _normalise_response(self, env.stack[-1])

    _normalise_parameters._firebreak = True  # type: ignore[attr-defined]
    StateTaskServiceSfn._normalise_parameters = _normalise_parameters  # type: ignore[method-assign]
    StateTaskServiceSfn._normalise_response = _normalise_response  # type: ignore[method-assign]
    StateTaskServiceSfn._eval_service_task = _eval_service_task  # type: ignore[method-assign]
