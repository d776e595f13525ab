"""The function-compromise playbook end to end: a Lambda Protection finding throttles the
function to zero (its prior setting kept on a tag), revokes its execution role's sessions,
and a second run changes nothing; an exempt function is left alone."""

import json

from conftest import assert_calls_declared, audit_records, calls_by, execution_records, finding, put, revoked
from firebreak_localaws import provision
from samples import FIXTURES


def lambda_event(acct, finding_id="3c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f"):
    text = (FIXTURES / "lambda-backdoor-c2.json").read_text().replace("111122223333", provision.ACCOUNT)
    event = json.loads(text)
    d = event["detail"]
    d["id"] = finding_id
    d["arn"] = d["arn"].rsplit("/", 1)[0] + "/" + finding_id
    return event


def concurrency(acct):
    return acct.client("lambda").get_function_concurrency(FunctionName=acct.demo["function"]).get("ReservedConcurrentExecutions")


def tags(acct):
    return acct.client("lambda").list_tags(Resource=acct.demo["functionArn"])["Tags"]


def test_a_lambda_finding_throttles_the_function_and_revokes_its_role_then_changes_nothing(account):
    assert concurrency(account) is None
    event = lambda_event(account)
    ident = provision.finding_ident(event)
    put(account, event)
    run = account.wait_for_execution("response", timeout=120)
    assert run["status"] == "SUCCEEDED", (run.get("error"), run.get("cause"))
    assert concurrency(account) == 0
    t = tags(account)
    assert t["firebreak:prior-reserved-concurrency"] == "none", t
    assert t["firebreak:throttled-for"] == ident["Id"]
    assert t["team"] == "reporting", "the function's own tags are kept"
    assert revoked(account, account.demo["functionRole"])
    # The instance's role is not the function's: untouched.
    assert not revoked(account, "web-instance-role")
    f = finding(account, ident)
    assert f["Workflow"]["Status"] == "RESOLVED", f["Note"]
    assert "throttled Lambda function report-generator: reserved concurrency none -> 0" in f["Note"]["Text"], f["Note"]
    actions = [r for r in audit_records(account, run["executionArn"], at_least=3) if r["record"] == "action"]
    throttle = [r for r in actions if r["action"] == "throttle-function"]
    assert [r["status"] for r in throttle] == ["done"]
    assert_calls_declared(account)

    # Again: already throttled, the record of the prior setting kept as it was.
    put(account, event)
    run = account.wait_for_execution("response", after=1, timeout=120)
    assert run["status"] == "SUCCEEDED"
    writes = [c for c in calls_by(account, "throttle-function") if c["operation"] in ("PutFunctionConcurrency", "TagResource")]
    assert len(writes) == 2, writes
    assert tags(account)["firebreak:prior-reserved-concurrency"] == "none"
    again = [r for r in audit_records(account, run["executionArn"], at_least=3) if r["record"] == "action" and r["action"] == "throttle-function"]
    assert [r["status"] for r in again] == ["already-done"]
    assert execution_records(account, run["executionArn"])[0]["resolution"] == "contained"


def test_an_exempt_function_is_left_alone_and_said_so(account):
    account.client("lambda").tag_resource(Resource=account.demo["functionArn"], Tags={"firebreak:exempt": "true"})
    event = lambda_event(account, "4d0e9f8a7b6c5d4e3f2a1b0c9d8e7f60")
    ident = provision.finding_ident(event)
    put(account, event)
    run = account.wait_for_execution("response", timeout=120)
    assert run["status"] == "SUCCEEDED", run
    assert concurrency(account) is None
    assert not revoked(account, account.demo["functionRole"])
    assert [c for c in calls_by(account, "throttle-function") if c["operation"] in ("PutFunctionConcurrency", "TagResource")] == []
    f = finding(account, ident)
    assert "Lambda function report-generator is tagged firebreak:exempt=true" in f["Note"]["Text"], f["Note"]


def test_two_findings_for_one_function_at_once_throttle_it_once_and_keep_the_true_prior_setting(account):
    """Two responses race on one function: whichever reads after the other's write sees
    it throttled; neither records 0 as the prior setting (a release would keep it stopped)."""
    account.client("lambda").put_function_concurrency(FunctionName=account.demo["function"], ReservedConcurrentExecutions=5)
    events = [lambda_event(account, f"{n:032x}") for n in (0xA1, 0xB2)]
    account.put_events(events)
    runs = account.wait_for_executions("response", 2, timeout=120)
    assert [r["status"] for r in runs] == ["SUCCEEDED", "SUCCEEDED"], runs
    assert concurrency(account) == 0
    assert tags(account)["firebreak:prior-reserved-concurrency"] == "5"
    for event in events:
        assert finding(account, provision.finding_ident(event))["Workflow"]["Status"] == "RESOLVED"
