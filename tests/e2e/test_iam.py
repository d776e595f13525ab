"""IAM is enforced on the local account: every function runs as its own role with exactly
the policy the CDK app gives it (permissions.json, the guardrails' Deny, the boundary), and
a call outside it is refused as AWS refuses it, changing nothing."""

import json
import time

import pytest
from botocore.exceptions import ClientError
from firebreak_localaws import provision

pytestmark = pytest.mark.provokes_refusals


def as_function(account, name, service):
    return account.client(service, credentials=account.deployed["credentials"][name], retries=1)


def refused(call, code):
    with pytest.raises(ClientError) as e:
        call()
    assert e.value.response["Error"]["Code"] == code, e.value.response
    return e.value.response["Error"]["Message"]


def test_a_call_outside_a_functions_policy_is_refused_and_changes_nothing(account):
    web = account.demo["webInstance"]
    # Triage may read instances, never stop them.
    message = refused(lambda: as_function(account, "triage", "ec2").terminate_instances(InstanceIds=[web]), "UnauthorizedOperation")
    assert "assumed-role/Firebreak-triage/" in message and "ec2:TerminateInstances" in message
    state = account.client("ec2").describe_instances(InstanceIds=[web])["Reservations"][0]["Instances"][0]["State"]["Name"]
    assert state == "running"
    # isolate-instance may change rules only of Firebreak's own (tagged) groups.
    web_sg = account.demo["groups"]["web"]
    before = account.client("ec2").describe_security_groups(GroupIds=[web_sg])["SecurityGroups"][0]["IpPermissions"]
    refused(lambda: as_function(account, "isolate-instance", "ec2").authorize_security_group_ingress(
        GroupId=web_sg, IpPermissions=[{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]), "UnauthorizedOperation")
    assert account.client("ec2").describe_security_groups(GroupIds=[web_sg])["SecurityGroups"][0]["IpPermissions"] == before
    # revoke-role-sessions may put a policy on a role, never on Firebreak's own (the
    # guardrails' explicit Deny) and never anything its policy does not name.
    revoke_iam = as_function(account, "revoke-role-sessions", "iam")
    grant = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]})
    message = refused(lambda: revoke_iam.put_role_policy(RoleName=f"{provision.STACK}-revoke-role-sessions", PolicyName="escalate", PolicyDocument=grant), "AccessDenied")
    assert "explicit deny" in message
    refused(lambda: revoke_iam.attach_role_policy(RoleName="web-instance-role", PolicyArn="arn:aws:iam::aws:policy/AdministratorAccess"), "AccessDenied")
    assert account.client("iam").list_role_policies(RoleName=f"{provision.STACK}-revoke-role-sessions")["PolicyNames"] == ["declared"]
    assert account.client("iam").list_attached_role_policies(RoleName="web-instance-role")["AttachedPolicies"] == []
    # mark-resolved may update findings, not read the policy parameter; triage's JSON
    # services answer in their own words.
    refused(lambda: as_function(account, "mark-resolved", "ssm").get_parameter(Name=provision.POLICY_PARAMETER), "AccessDeniedException")
    refusals = account.iam_refusals()
    assert {r["action"] for r in refusals} >= {"ec2:TerminateInstances", "ec2:AuthorizeSecurityGroupIngress", "iam:PutRolePolicy", "iam:AttachRolePolicy", "ssm:GetParameter"}


def test_an_operator_who_may_only_start_executions_can_start_one_and_nothing_else(account):
    iam = account.client("iam")
    iam.create_user(UserName="responder")
    machine = account.deployed["stateMachines"]["response"]
    iam.put_user_policy(UserName="responder", PolicyName="start", PolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "states:StartExecution", "Resource": machine}],
    }))
    account.register_access_key("responder", "AKIARESPONDER0000001", "local")
    sfn = account.client("stepfunctions", key="AKIARESPONDER0000001", retries=1)
    started = sfn.start_execution(stateMachineArn=machine, input=json.dumps({"not": "a finding"}))
    assert started["executionArn"].startswith(machine.replace(":stateMachine:", ":execution:"))
    refused(lambda: account.client("ec2", key="AKIARESPONDER0000001", retries=1).describe_instances(), "UnauthorizedOperation")
    refused(lambda: sfn.start_execution(stateMachineArn=account.deployed["stateMachines"]["sweep-ip-blocks"], input="{}"), "AccessDeniedException")
    # The machine runs as its own role: triage (invoked by it) refuses what is not a finding.
    operator = account.client("stepfunctions")
    deadline = time.time() + 60
    while (run := operator.describe_execution(executionArn=started["executionArn"]))["status"] == "RUNNING" and time.time() < deadline:
        time.sleep(0.2)
    assert run["status"] == "FAILED" and run["error"] == "NotAFinding", (run.get("error"), run.get("cause"))


def test_an_unknown_key_is_refused(account):
    refused(lambda: account.client("ec2", key="AKIANOBODY0000000001", retries=1).describe_instances(), "AuthFailure")
