"""Step Functions' callback API as AWS has it: `SendTaskFailure` keeps its `cause`.

moto reads only `error` and drops the cause, so a task failed by a caller (Firebreak's
`firebreak deny`, whose cause says who denied and why) would reach the state machine's
Catch without it. AWS hands both to the Catch."""

from __future__ import annotations

from moto.core.responses import EmptyResult
from moto.stepfunctions.responses import StepFunctionResponse


def install() -> None:
    if getattr(StepFunctionResponse.send_task_failure, "_firebreak", False):
        return

    def send_task_failure(self: StepFunctionResponse) -> EmptyResult:
        task_token = self._get_param("taskToken")
        self.stepfunction_backend.send_task_failure(task_token, error=self._get_param("error"), cause=self._get_param("cause"))
        return EmptyResult()

    send_task_failure._firebreak = True  # type: ignore[attr-defined]
    StepFunctionResponse.send_task_failure = send_task_failure  # type: ignore[method-assign]
