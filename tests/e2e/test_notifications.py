"""People are told: one message per response to the owning team (routed by the policy from
the resource's tags, else the owners topic), an alert to the response team for HIGH and
CRITICAL findings and for every response that ends NOTIFIED. Read from SQS queues
subscribed to the topics, as a chat integration or a ticketing bridge would."""

import json
import time

from conftest import assert_calls_declared, execution_records, put, set_policy, ssh_brute_force
from firebreak_localaws import provision


def subscribe(acct, topic_arn, name):
    sqs, sns = acct.client("sqs"), acct.client("sns")
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=arn)
    return url


def received(acct, url, at_least=0, timeout=10):
    """Every notification on the queue, as SNS delivered it (subject, message, attributes)."""
    sqs = acct.client("sqs")
    out = []
    deadline = time.time() + timeout
    while True:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
        for m in got:
            out.append(json.loads(m["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
        if (not got and len(out) >= at_least) or time.time() > deadline:
            return out


def attrs(n):
    return {k: v["Value"] for k, v in n.get("MessageAttributes", {}).items()}


def test_the_owning_team_is_told_once_per_response_and_the_response_team_of_the_high_one(account):
    topics = account.deployed["topics"]
    owners, response = subscribe(account, topics["owners"], "owners"), subscribe(account, topics["response"], "response")
    web = account.demo["webInstance"]
    high = ssh_brute_force(account)
    put(account, high)
    run = account.wait_for_execution("response", timeout=120)
    assert run["status"] == "SUCCEEDED", run
    medium = ssh_brute_force(account, severity=5.0, finding_id="0123456789abcdef0123456789abcd01")
    put(account, medium)
    account.wait_for_execution("response", after=1, timeout=120)

    told = received(account, owners, at_least=2)
    assert len(told) == 2, [n["Subject"] for n in told]
    first = next(n for n in told if provision.finding_ident(high)["Id"] in n["Message"])
    assert first["Subject"].startswith(f"Firebreak contained (HIGH): UnauthorizedAccess:EC2/SSHBruteForce on {web}"), first["Subject"]
    for part in ("What was found:", "Why it matters:", "What Firebreak did:", "What to do next:", "How to release:", f"instance {web}: firebreak release {web}", "Resolution: contained"):
        assert part in first["Message"], (part, first["Message"])
    assert attrs(first) == {"kind": "response", "severity": "HIGH", "resolution": "contained", "accountId": provision.ACCOUNT, "team": "payments"}
    alerts = received(account, response, at_least=1)
    assert len(alerts) == 1 and alerts[0]["Subject"].startswith(f"[alert] Firebreak contained (HIGH): UnauthorizedAccess:EC2/SSHBruteForce on {web}"), "the HIGH one only: the MEDIUM one was contained"
    record = execution_records(account, run["executionArn"])[0]
    assert sorted(m["audience"] for m in record["notifications"]) == ["owners", "response-team"]
    assert all(m["messageId"] for m in record["notifications"])
    assert_calls_declared(account)


def test_a_response_that_ends_notified_alerts_the_response_team_whatever_its_severity(account):
    topics = account.deployed["topics"]
    owners, response = subscribe(account, topics["owners"], "owners"), subscribe(account, topics["response"], "response")
    event = ssh_brute_force(account, severity=5.0)
    event["detail"]["resource"]["instanceDetails"]["instanceId"] = "i-123;rm"
    put(account, event)
    run = account.wait_for_execution("response", timeout=120)
    assert run["status"] == "SUCCEEDED", run
    assert execution_records(account, run["executionArn"])[0]["resolution"] == "not-contained"
    alerts = received(account, response, at_least=1)
    assert len(alerts) == 1 and alerts[0]["Message"].startswith("Alert for the response team (a person must act"), alerts
    assert "invalid instance id" in alerts[0]["Message"]
    assert len(received(account, owners, at_least=1)) == 1


def test_a_policy_route_sends_the_owners_message_to_that_teams_topic(account):
    payments = account.client("sns").create_topic(Name="firebreak-payments")["TopicArn"]
    routed, owners = subscribe(account, payments, "payments"), subscribe(account, account.deployed["topics"]["owners"], "owners")
    set_policy(account, lambda p: p.update(notifications={"routes": [{"team": "payments", "environment": "prod*", "topic": "firebreak-payments"}]}))
    put(account, ssh_brute_force(account))
    run = account.wait_for_execution("response", timeout=120)
    assert run["status"] == "SUCCEEDED", run
    assert len(received(account, routed, at_least=1)) == 1
    assert received(account, owners) == [], "routed, so not the default topic"
    assert_calls_declared(account)
