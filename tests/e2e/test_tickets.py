"""Tickets: with the policy's `tickets.jira`, a finding's first response creates one Jira
issue (the owning team's message as summary and description, in Atlassian Document
Format), and every later response comments on it; the key goes into the note, the
finding's fields, the messages and the audit record. Jira is a local stand-in that checks
Jira Cloud's create-issue contract; its credentials are the secret `firebreak/jira`."""

import json

import pytest

from conftest import assert_calls_declared, audit_records, calls_by, execution_records, finding, put, set_policy, ssh_brute_force
from firebreak_localaws import provision
from firebreak_localaws.jira_standin import JiraStandIn
from test_drill import firebreak
from test_notifications import received, subscribe

TICKETS = {"jira": {"projectKey": "SEC", "issueType": "Task"}}


@pytest.fixture
def jira(account):
    with JiraStandIn() as j:
        account.client("secretsmanager").create_secret(Name="firebreak/jira", SecretString=j.secret())
        yield j


def respond(account, event, nth=0):
    put(account, event)
    run = account.wait_for_execution("response", after=nth, timeout=120)
    assert run["status"] == "SUCCEEDED", (run.get("error"), run.get("cause"))
    return run


def test_the_first_response_creates_the_issue_and_the_note_carries_its_key(account, jira):
    owners = subscribe(account, account.deployed["topics"]["owners"], "owners")
    set_policy(account, lambda p: p.update(tickets=TICKETS))
    event = ssh_brute_force(account)
    run = respond(account, event)

    created = jira.accepted("/rest/api/3/issue")
    assert len(created) == 1, [(r["path"], r["status"], r["answer"]) for r in jira.requests]
    fields = created[0]["body"]["fields"]
    web = account.demo["webInstance"]
    assert fields["project"] == {"key": "SEC"} and fields["issuetype"] == {"name": "Task"}
    assert fields["summary"].startswith(f"Firebreak contained (HIGH): UnauthorizedAccess:EC2/SSHBruteForce on {web}")
    text = " ".join(n["text"] for p in fields["description"]["content"] for n in p["content"])
    for part in ("What was found:", "What Firebreak did:", "How to release:", f"firebreak release {web}"):
        assert part in text, (part, text)
    assert fields["labels"][0] == "firebreak" and fields["labels"][1].startswith("firebreak-")
    assert created[0]["headers"]["authorization"].startswith("Basic ")

    url = f"{jira.url}/browse/SEC-1"
    f = finding(account, provision.finding_ident(event))
    assert f["Workflow"]["Status"] == "RESOLVED"
    assert f"Ticket: SEC-1 ({url})." in f["Note"]["Text"], f["Note"]["Text"]
    assert f["UserDefinedFields"]["firebreak:ticket"] == "SEC-1"
    assert f["UserDefinedFields"]["firebreak:ticket-url"] == url
    record = execution_records(account, run["executionArn"])[0]
    assert record["ticket"] == {"key": "SEC-1", "url": url, "action": "created"}
    told = received(account, owners, at_least=1)
    assert len(told) == 1 and f"Ticket: SEC-1 ({url})." in told[0]["Message"]
    assert [c["operation"] for c in calls_by(account, "ticket")] == ["GetSecretValue"]
    assert_calls_declared(account)


def test_a_later_response_to_the_same_finding_comments_and_opens_no_second_issue(account, jira):
    set_policy(account, lambda p: p.update(tickets=TICKETS))
    event = ssh_brute_force(account)
    respond(account, event)
    run = respond(account, event, nth=1)
    assert len(jira.accepted("/rest/api/3/issue")) == 1
    comments = jira.accepted("/rest/api/3/issue/SEC-1/comment")
    assert len(comments) == 1
    first = comments[0]["body"]["body"]["content"][0]["content"][0]["text"]
    assert first == "A later response to this finding."
    assert execution_records(account, run["executionArn"])[0]["ticket"]["action"] == "commented"


def test_jira_refusing_the_credentials_is_noted_and_audited_and_contains_all_the_same(account, jira):
    set_policy(account, lambda p: p.update(tickets=TICKETS))
    account.client("secretsmanager").put_secret_value(SecretId="firebreak/jira", SecretString=json.dumps(
        {"baseUrl": jira.url, "email": jira.email, "apiToken": "revoked"}))
    event = ssh_brute_force(account)
    run = respond(account, event)
    assert jira.accepted("/rest/api/3/issue") == [] and {r["status"] for r in jira.requests} == {401}
    f = finding(account, provision.finding_ident(event))
    assert f["Workflow"]["Status"] == "RESOLVED", "containment does not wait on a ticket"
    assert "No ticket could be written:" in f["Note"]["Text"] and "HTTP 401" in f["Note"]["Text"], f["Note"]["Text"]
    assert "firebreak:ticket" not in f.get("UserDefinedFields", {})
    record = execution_records(account, run["executionArn"])[0]
    assert "HTTP 401" in record["ticket"]["failure"]["Cause"], record["ticket"]
    assert "revoked" not in json.dumps(record), "the token is never written down"


def test_a_findings_release_comments_on_its_issue(account, jira):
    set_policy(account, lambda p: p.update(tickets=TICKETS))
    event = ssh_brute_force(account)
    respond(account, event)
    code = firebreak(account, "release", provision.finding_ident(event)["Id"])
    assert code.returncode == 0, code.stdout + code.stderr
    run = account.wait_for_execution("release", timeout=60)
    comments = jira.accepted("/rest/api/3/issue/SEC-1/comment")
    assert len(comments) == 1, jira.requests
    text = " ".join(n["text"] for p in comments[0]["body"]["body"]["content"] for n in p["content"])
    assert text.startswith("Firebreak released this finding's containment: released " + account.demo["webInstance"]), text
    record = [r for r in audit_records(account, run["executionArn"]) if r["record"] == "release"][0]
    assert record["ticket"] == {"key": "SEC-1", "url": f"{jira.url}/browse/SEC-1", "action": "commented"}
    assert len(jira.accepted("/rest/api/3/issue")) == 1, "a release opens no issue"


def test_without_the_policy_no_secret_is_read_and_jira_is_not_called(account, jira):
    respond(account, ssh_brute_force(account))
    assert jira.requests == []
    assert calls_by(account, "ticket") == []
