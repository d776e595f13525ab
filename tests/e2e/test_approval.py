"""Approval before acting: with the policy asking for a person's yes on production, the
response waits on a task token; `firebreak approve` lets it go on, `firebreak deny` ends it
NOTIFIED with the reason, and no decision in time ends it NOTIFIED with the response team
alerted. Nothing changes before the yes; who decided, and when, is in the note, the
finding's fields and the audit record. Only a caller IAM lets answer can answer."""

import json
import time

import pytest

from conftest import assert_calls_declared, execution_records, finding, interfaces, put, set_policy, ssh_brute_force
from firebreak_localaws import provision
from test_drill import firebreak
from test_notifications import attrs, received, subscribe

GATE = {"rules": [{"name": "production-isolation", "environment": "prod*", "actions": ["isolate-instance"]}], "timeoutSeconds": 300}


def gated(acct, timeout_seconds=300):
    set_policy(acct, lambda p: p.update(approval={**GATE, "timeoutSeconds": timeout_seconds}))


def user_with(acct, name, statements):
    """An IAM user of Firebreak's account with only these statements, and its key's CLI env."""
    iam = acct.client("iam")
    iam.create_user(UserName=name)
    iam.put_user_policy(UserName=name, PolicyName="only", PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": statements}))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    env = acct.cli_env()
    env.update(AWS_ACCESS_KEY_ID=key["AccessKeyId"], AWS_SECRET_ACCESS_KEY=key["SecretAccessKey"])
    return env


def approver(acct):
    """The CDK app's ApproversPolicy, as a user: read the response executions, answer tokens."""
    executions = f"arn:aws:states:{provision.REGION}:{provision.ACCOUNT}:execution:*"
    return user_with(acct, "approver", [
        {"Effect": "Allow", "Action": ["states:DescribeExecution", "states:GetExecutionHistory"], "Resource": executions},
        {"Effect": "Allow", "Action": ["states:SendTaskSuccess", "states:SendTaskFailure"], "Resource": "*"},
    ])


def waiting(acct, owners_queue):
    """The running execution once it has asked: the approval request the owners received."""
    asks = [n for n in received(acct, owners_queue, at_least=1, timeout=60) if attrs(n).get("kind") == "approval-request"]
    assert len(asks) == 1, asks
    sfn = acct.client("stepfunctions")
    runs = sfn.list_executions(stateMachineArn=acct.deployed["stateMachines"]["response"])["executions"]
    assert [r["status"] for r in runs] == ["RUNNING"], runs
    return runs[0]["executionArn"], asks[0]


def test_a_production_response_waits_and_runs_only_once_approved(account):
    topics = account.deployed["topics"]
    owners, response = subscribe(account, topics["owners"], "owners"), subscribe(account, topics["response"], "response")
    web = account.demo["webInstance"]
    before = interfaces(account, web)
    gated(account)
    event = ssh_brute_force(account)
    put(account, event)
    arn, ask = waiting(account, owners)
    assert ask["Subject"].startswith(f"Firebreak asks for approval (HIGH): UnauthorizedAccess:EC2/SSHBruteForce on {web}"), ask["Subject"]
    for part in (
        "Why a person decides: policy rule production-isolation: the resource's environment is production, the plan has isolate-instance.",
        f"  - isolate-instance {web}",
        f"firebreak approve {arn}",
        f"firebreak deny {arn} --reason",
    ):
        assert part in ask["Message"], (part, ask["Message"])
    assert "Token" not in ask["Message"] and "AAAA" not in ask["Message"]
    assert any(attrs(n).get("kind") == "approval-request" for n in received(account, response, at_least=1)), "the response team is asked too"
    time.sleep(1)
    assert interfaces(account, web) == before, "nothing moves before the yes"

    p = firebreak(account, "approve", arn, env=approver(account))
    assert p.returncode == 0, p.stdout + p.stderr
    assert f"runs now: isolate-instance {web}" in p.stdout, p.stdout
    run = account.wait_for_execution("response", timeout=120)
    assert run["status"] == "SUCCEEDED", (run.get("error"), run.get("cause"))
    isolation = f"firebreak-isolation-{account.demo['vpc']}"
    assert set(map(tuple, interfaces(account, web).values())) == {(isolation,)}, interfaces(account, web)

    who = f"arn:aws:iam::{provision.ACCOUNT}:user/approver"
    f = finding(account, provision.finding_ident(event))
    assert f["Workflow"]["Status"] == "RESOLVED"
    assert f"approved by {who} at " in f["Note"]["Text"], f["Note"]["Text"]
    assert f["UserDefinedFields"]["firebreak:approval"] == "approved"
    assert f["UserDefinedFields"]["firebreak:decided-by"] == who
    record = execution_records(account, run["executionArn"])[0]
    assert record["resolution"] == "contained"
    assert record["approval"]["rule"] == "production-isolation"
    assert record["approval"]["decision"]["outcome"] == "approved"
    assert record["approval"]["decision"]["by"] == who
    assert record["approval"]["decision"]["at"].startswith(time.strftime("%Y-", time.gmtime()))
    again = firebreak(account, "approve", arn)
    assert again.returncode == 1 and "waits on no approval" in again.stderr, again.stderr
    assert_calls_declared(account)


@pytest.mark.provokes_refusals
def test_an_operator_who_may_only_start_executions_cannot_answer(account):
    owners = subscribe(account, account.deployed["topics"]["owners"], "owners")
    web = account.demo["webInstance"]
    before = interfaces(account, web)
    gated(account)
    put(account, ssh_brute_force(account))
    arn, _ = waiting(account, owners)
    starter = user_with(account, "starter", [
        {"Effect": "Allow", "Action": ["states:StartExecution", "states:DescribeExecution", "states:GetExecutionHistory", "states:ListStateMachines", "sts:GetCallerIdentity"], "Resource": "*"},
    ])
    p = firebreak(account, "approve", arn, env=starter)
    assert p.returncode == 4, p.stdout + p.stderr
    assert "states:SendTaskSuccess" in p.stderr and "AccessDenied" in p.stderr, p.stderr
    time.sleep(1)
    sfn = account.client("stepfunctions")
    assert sfn.describe_execution(executionArn=arn)["status"] == "RUNNING", "still waiting"
    assert interfaces(account, web) == before
    assert firebreak(account, "deny", arn, "--reason", "cleaning up the test", env=approver(account)).returncode == 0
    assert account.wait_for_execution("response", timeout=120)["status"] == "SUCCEEDED"


def test_a_denial_ends_it_notified_with_who_and_why_and_changes_nothing(account):
    topics = account.deployed["topics"]
    owners, response = subscribe(account, topics["owners"], "owners"), subscribe(account, topics["response"], "response")
    web = account.demo["webInstance"]
    before = interfaces(account, web)
    gated(account)
    event = ssh_brute_force(account)
    put(account, event)
    arn, _ = waiting(account, owners)
    received(account, response, at_least=1)
    p = firebreak(account, "deny", arn, "--reason", "change freeze until 18:00; the team isolates by hand", env=approver(account))
    assert p.returncode == 0, p.stdout + p.stderr
    assert f"will not run: isolate-instance {web}" in p.stdout
    run = account.wait_for_execution("response", timeout=120)
    assert run["status"] == "SUCCEEDED", (run.get("error"), run.get("cause"))
    assert interfaces(account, web) == before

    who = f"arn:aws:iam::{provision.ACCOUNT}:user/approver"
    f = finding(account, provision.finding_ident(event))
    assert f["Workflow"]["Status"] == "NOTIFIED"
    assert f"denied by {who} at " in f["Note"]["Text"] and "change freeze until 18:00" in f["Note"]["Text"], f["Note"]["Text"]
    assert f["UserDefinedFields"]["firebreak:approval"] == "denied"
    record = execution_records(account, run["executionArn"])[0]
    assert record["resolution"] == "not-contained"
    assert record["actions"] == [] or all(a["action"] == "mark-resolved" for a in record["actions"]), record["actions"]
    assert record["approval"]["decision"] == {
        "outcome": "denied", "by": who, "at": record["approval"]["decision"]["at"],
        "reason": "change freeze until 18:00; the team isolates by hand",
    }
    alerts = received(account, response, at_least=1)
    assert len(alerts) == 1 and "change freeze until 18:00" in alerts[0]["Message"], alerts


def test_no_decision_in_time_ends_it_notified_and_alerts_the_response_team(account):
    topics = account.deployed["topics"]
    owners, response = subscribe(account, topics["owners"], "owners"), subscribe(account, topics["response"], "response")
    web = account.demo["webInstance"]
    before = interfaces(account, web)
    gated(account, timeout_seconds=3)
    event = ssh_brute_force(account)
    put(account, event)
    run = account.wait_for_execution("response", timeout=120)
    assert run["status"] == "SUCCEEDED", (run.get("error"), run.get("cause"))
    assert interfaces(account, web) == before
    f = finding(account, provision.finding_ident(event))
    assert f["Workflow"]["Status"] == "NOTIFIED"
    assert "no decision within 3 seconds. Nothing was done." in f["Note"]["Text"], f["Note"]["Text"]
    record = execution_records(account, run["executionArn"])[0]
    assert record["approval"]["decision"]["outcome"] == "timed-out"
    told = received(account, response, at_least=2)
    kinds = sorted(attrs(n)["kind"] for n in told)
    assert kinds == ["approval-request", "response"], kinds
    alert = next(n for n in told if attrs(n)["kind"] == "response")
    assert alert["Subject"].startswith("[alert]") and "a person must act" in alert["Message"], alert
    assert len([n for n in received(account, owners, at_least=2) if attrs(n)["kind"] == "response"]) == 1


def test_a_drill_exercises_the_gate_and_a_dry_run_still_changes_nothing(account, tmp_path):
    owners = subscribe(account, account.deployed["topics"]["owners"], "owners")
    web = account.demo["webInstance"]
    before = interfaces(account, web)
    path = tmp_path / "event.json"
    path.write_text(json.dumps(ssh_brute_force(account)))
    import subprocess
    from samples import bin_dir

    drill = subprocess.Popen([str(bin_dir() / "firebreak"), "drill", str(path), "--dry-run", "--require-approval", "--json"],
                             env=account.cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        arn, ask = waiting(account, owners)
        assert ask["Subject"].startswith("[drill] Firebreak asks for approval"), ask["Subject"]
        assert "the drill asked to exercise the approval gate" in ask["Message"]
        assert firebreak(account, "approve", arn, env=approver(account)).returncode == 0
        out, err = drill.communicate(timeout=120)
    finally:
        drill.kill()
    assert drill.returncode == 0, out + err
    assert json.loads(out)["resolution"] == "dry-run"
    assert interfaces(account, web) == before
    record = execution_records(account, arn)[0]
    assert record["approval"]["rule"] == "drill" and record["approval"]["decision"]["outcome"] == "approved"
