import io
import json
import time
import zipfile
from pathlib import Path

import pytest

from conftest import FakeLambdaHost

ROLE_DOC = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]})


def zipped() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("bootstrap", "#!/bin/sh\n")
    return buf.getvalue()


@pytest.fixture
def functions(aws):
    role = aws("iam").create_role(RoleName="runbook", AssumeRolePolicyDocument=ROLE_DOC)["Role"]["Arn"]
    lam = aws("lambda")
    arns = {}
    for name in ("echo", "fails"):
        arns[name] = lam.create_function(
            FunctionName=name, Runtime="provided.al2023", Role=role, Handler="bootstrap", Code={"ZipFile": zipped()}
        )["FunctionArn"]
    return lam, arns, role


def wait(sfn, execution_arn, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        out = sfn.describe_execution(executionArn=execution_arn)
        if out["status"] != "RUNNING":
            return out
        time.sleep(0.2)
    raise AssertionError(f"{execution_arn} still running after {timeout}s")


def test_invoke_reaches_the_local_host_and_errors_come_back_as_lambda_reports_them(functions):
    lam, _, _ = functions
    out = lam.invoke(FunctionName="echo", Payload=json.dumps({"a": 1}))
    assert "FunctionError" not in out
    assert json.loads(out["Payload"].read()) == {"echo": {"a": 1}, "function": "echo"}
    out = lam.invoke(FunctionName="fails", Payload=b"{}")
    assert out["StatusCode"] == 200
    assert out["FunctionError"] == "Unhandled"
    assert json.loads(out["Payload"].read()) == {"errorType": "InstanceNotFound", "errorMessage": "no such instance i-12345678"}


def test_a_state_machine_catches_the_rust_error_type(aws, functions):
    _, arns, role = functions
    definition = {
        "StartAt": "Call",
        "States": {
            "Call": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": arns["fails"], "Payload.$": "$"},
                "Catch": [{"ErrorEquals": ["InstanceNotFound"], "ResultPath": "$.error", "Next": "Caught"}],
                "End": True,
            },
            "Caught": {"Type": "Pass", "End": True},
        },
    }
    sfn = aws("stepfunctions")
    machine = sfn.create_state_machine(name="catch", definition=json.dumps(definition), roleArn=role)["stateMachineArn"]
    run = sfn.start_execution(stateMachineArn=machine, input=json.dumps({"finding": "f-1"}))
    out = wait(sfn, run["executionArn"])
    assert out["status"] == "SUCCEEDED", out
    result = json.loads(out["output"])
    assert result["finding"] == "f-1"
    assert result["error"]["Error"] == "InstanceNotFound"
    assert "no such instance" in result["error"]["Cause"]


def test_eventbridge_starts_the_state_machine_with_the_event(aws, functions, as_service):
    _, arns, role = functions
    definition = {
        "StartAt": "Call",
        "States": {"Call": {"Type": "Task", "Resource": arns["echo"], "End": True}},
    }
    sfn = aws("stepfunctions")
    machine = sfn.create_state_machine(name="from-events", definition=json.dumps(definition), roleArn=role)["stateMachineArn"]
    events = aws("events")
    events.put_rule(Name="guardduty", EventPattern=json.dumps({"source": ["aws.guardduty"], "detail-type": ["GuardDuty Finding"]}))
    events.put_targets(Rule="guardduty", Targets=[{"Id": "response", "Arn": machine, "RoleArn": role}])
    FakeLambdaHost.calls.clear()
    as_service([
        {"Source": "aws.guardduty", "DetailType": "GuardDuty Finding", "Detail": json.dumps({"id": "abc", "severity": 8})},
        {"Source": "aws.ec2", "DetailType": "EC2 Instance State-change Notification", "Detail": "{}"},
    ])
    deadline = time.time() + 20
    while time.time() < deadline and not sfn.list_executions(stateMachineArn=machine)["executions"]:
        time.sleep(0.2)
    executions = sfn.list_executions(stateMachineArn=machine)["executions"]
    assert len(executions) == 1, "only the matching event starts a response"
    out = wait(sfn, executions[0]["executionArn"])
    event = json.loads(out["input"])
    assert event["source"] == "aws.guardduty"
    assert event["detail-type"] == "GuardDuty Finding"
    assert event["detail"] == {"id": "abc", "severity": 8}
    assert event["time"].endswith("Z") and "T" in event["time"]
    assert out["status"] == "SUCCEEDED", out
    assert [c[0] for c in FakeLambdaHost.calls] == ["echo"]


def test_input_path_is_honoured(aws, functions, as_service):
    _, arns, role = functions
    definition = {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}
    sfn = aws("stepfunctions")
    machine = sfn.create_state_machine(name="detail-only", definition=json.dumps(definition), roleArn=role)["stateMachineArn"]
    events = aws("events")
    events.put_rule(Name="r", EventPattern=json.dumps({"source": ["aws.securityhub"]}))
    events.put_targets(Rule="r", Targets=[{"Id": "t", "Arn": machine, "RoleArn": role, "InputPath": "$.detail"}])
    as_service([{"Source": "aws.securityhub", "DetailType": "x", "Detail": json.dumps({"findings": [1, 2]})}])
    deadline = time.time() + 20
    while time.time() < deadline and not sfn.list_executions(stateMachineArn=machine)["executions"]:
        time.sleep(0.2)
    out = wait(sfn, sfn.list_executions(stateMachineArn=machine)["executions"][0]["executionArn"])
    assert json.loads(out["input"]) == {"findings": [1, 2]}


def test_a_disabled_rule_starts_nothing(aws, functions, as_service):
    _, _, role = functions
    definition = {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}
    sfn = aws("stepfunctions")
    machine = sfn.create_state_machine(name="disabled-target", definition=json.dumps(definition), roleArn=role)["stateMachineArn"]
    events = aws("events")
    events.put_rule(Name="off", EventPattern=json.dumps({"source": ["aws.securityhub"]}), State="DISABLED")
    events.put_targets(Rule="off", Targets=[{"Id": "t", "Arn": machine, "RoleArn": role}])
    as_service([{"Source": "aws.securityhub", "DetailType": "x", "Detail": "{}"}])
    time.sleep(1.5)
    assert sfn.list_executions(stateMachineArn=machine)["executions"] == []
    events.enable_rule(Name="off")
    as_service([{"Source": "aws.securityhub", "DetailType": "x", "Detail": "{}"}])
    deadline = time.time() + 20
    while time.time() < deadline and not sfn.list_executions(stateMachineArn=machine)["executions"]:
        time.sleep(0.2)
    assert len(sfn.list_executions(stateMachineArn=machine)["executions"]) == 1


def test_put_events_refuses_aws_sources_from_callers_as_eventbridge_does(aws, functions):
    _, _, role = functions
    definition = {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}
    sfn = aws("stepfunctions")
    machine = sfn.create_state_machine(name="any", definition=json.dumps(definition), roleArn=role)["stateMachineArn"]
    events = aws("events")
    events.put_rule(Name="all", EventPattern=json.dumps({"source": ["aws.guardduty", "firebreak.drill"]}))
    events.put_targets(Rule="all", Targets=[{"Id": "t", "Arn": machine, "RoleArn": role}])
    out = events.put_events(Entries=[
        {"Source": "aws.guardduty", "DetailType": "GuardDuty Finding", "Detail": "{}"},
        {"Source": "firebreak.drill", "DetailType": "Firebreak Drill", "Detail": "{}"},
    ])
    assert out["FailedEntryCount"] == 1
    assert out["Entries"][0]["ErrorCode"] == "NotAuthorizedForSourceException"
    assert "EventId" in out["Entries"][1]
    deadline = time.time() + 20
    while time.time() < deadline and not sfn.list_executions(stateMachineArn=machine)["executions"]:
        time.sleep(0.2)
    time.sleep(0.5)
    executions = sfn.list_executions(stateMachineArn=machine)["executions"]
    assert len(executions) == 1 and json.loads(wait(sfn, executions[0]["executionArn"])["input"])["source"] == "firebreak.drill"


def test_rule_patterns_match_through_arrays_of_objects_as_eventbridge_does():
    """The Security Hub rules filter on fields of `detail.findings[]`: any finding with the
    value matches; none with it does not (moto alone never matched through arrays)."""
    import firebreak_localaws
    from moto.events.models import EventPattern

    firebreak_localaws.install()
    root = Path(__file__).resolve().parents[3]
    for rule_file, fixture in (
        ("securityhub-v2-findings.json", "securityhub-v2-ocsf-ssh-brute-force.json"),
        ("securityhub-imported-findings.json", "securityhub-imported-guardduty-ssh.json"),
    ):
        rule = json.loads((root / "statemachines" / "rules" / rule_file).read_text())
        event = json.loads((root / "tests" / "fixtures" / "findings" / fixture).read_text())
        for f in event["detail"]["findings"]:
            if "metadata" not in f:
                f["ProductName"] = "GuardDuty"  # Security Hub's events carry it; the fixture does not
        pattern = EventPattern.load(json.dumps(rule["eventPattern"]))
        assert pattern.matches_event(event), rule_file
        other = json.loads(json.dumps(event))
        for f in other["detail"]["findings"]:
            if "metadata" in f:
                f["metadata"]["product"]["name"] = "Inspector"
            else:
                f["ProductName"] = "Inspector"
        assert not pattern.matches_event(other), rule_file
        both = json.loads(json.dumps(event))
        both["detail"]["findings"] = other["detail"]["findings"] + event["detail"]["findings"]
        assert pattern.matches_event(both), rule_file
    # Scalars and plain lists as before.
    assert EventPattern.load(json.dumps({"source": ["aws.guardduty"]})).matches_event({"source": "aws.guardduty"})
    assert EventPattern.load(json.dumps({"resources": [{"prefix": "arn:aws:securityhub"}]})).matches_event({"resources": ["arn:aws:securityhub:x"]})
