"""Chaos: while a batch of findings is answered, every call that Firebreak's functions and
its state machine make fails at a set rate with throttling, a server error or access
denied, in the service's own words. The SDK retries throttling and server errors, the
machine retries transient Lambda errors and catches the rest; whatever happens, no
response may end silent: every execution ends, every one leaves an audit record, every
finding whose response ran to its end is RESOLVED or NOTIFIED with a note, and the NACL
ledger keeps its invariants (no deny without its tag, none outside the band, no IP
blocked twice, the quota kept).

`FIREBREAK_CHAOS_FINDINGS` and `FIREBREAK_CHAOS_RATE` set the size (`make chaos` runs more)."""

import json
import os
import time
from collections import Counter

from conftest import run_sweep, audit_records, finding
from firebreak_localaws import provision
from test_burst import burst_events, nacl_consistent, seed_instances

FINDINGS = int(os.environ.get("FIREBREAK_CHAOS_FINDINGS", "20"))
RATE = float(os.environ.get("FIREBREAK_CHAOS_RATE", "0.1"))

def failed_steps(account, execution_arn):
    """What went wrong in an execution, from its history: for the assertion's message."""
    events = account.client("stepfunctions").get_execution_history(executionArn=execution_arn, maxResults=1000)["events"]
    out = []
    for e in events:
        for key, details in e.items():
            if key.endswith("EventDetails") and isinstance(details, dict) and ("error" in details or "cause" in details):
                out.append(f"{e['type']}: {details.get('error')}: {str(details.get('cause'))[:300]}")
    return out


def age_half_blocks(account, subnets, minutes):
    """Ten minutes pass for the half-written blocks: each tag whose deny stands in one
    direction only gets its `at` moved back. Returns the keys moved."""
    ec2 = account.client("ec2")
    acls = ec2.describe_network_acls(Filters=[{"Name": "association.subnet-id", "Values": subnets}])["NetworkAcls"]
    then = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - minutes * 60))
    moved = []
    for acl in acls:
        ways: dict[int, set] = {}
        for e in acl["Entries"]:
            if e["RuleAction"] == "deny" and e["RuleNumber"] <= 32766:
                ways.setdefault(e["RuleNumber"], set()).add(e["Egress"])
        for t in acl.get("Tags", []):
            parts = t["Key"].split(":")
            if t["Key"].startswith("firebreak:block:") and len(ways.get(int(parts[2]), ())) == 1:
                value = " ".join(f"at={then}" if w.startswith("at=") else w for w in t["Value"].split(" "))
                ec2.create_tags(Resources=[acl["NetworkAclId"]], Tags=[{"Key": t["Key"], "Value": value}])
                moved.append(t["Key"])
    return moved


def test_under_random_faults_every_response_ends_audited_and_none_silent(account):
    ids, subnets = seed_instances(account)
    events = burst_events(account, ids, subnets, FINDINGS, prefix="c", severity=lambda i: 8.0)
    roles = [r.split("/")[-1] for r in account.deployed["roles"].values()] + [f"{provision.STACK}-states"]
    account.set_chaos(RATE, roles, seed=11)
    started = time.time()
    try:
        account.put_events(events)
        runs = account.wait_for_executions("response", FINDINGS, timeout=600)
        hits = account.chaos_hits()
    finally:
        account.set_chaos(0.0, [])
    assert len(runs) == FINDINGS, f"{len(runs)} of {FINDINGS} responses started"
    assert all(r["status"] != "RUNNING" for r in runs), "every execution ends"
    assert sum(hits.values()) > 0, "the chaos injected faults"

    records = audit_records(account, at_least=FINDINGS)
    by_execution: dict[str, list] = {}
    for r in records:
        by_execution.setdefault(r["executionId"], []).append(r)
    silent = [r["executionArn"] for r in runs if r["executionArn"] not in by_execution]
    assert silent == [], f"executions without an audit record: {silent}: {failed_steps(account, silent[0])}"

    ended: Counter = Counter()
    for event in events:
        ident = provision.finding_ident(event)
        f = finding(account, ident)
        status = f.get("Workflow", {}).get("Status", "NEW")
        mine = [r for r in records if r.get("findingId") == ident["Id"]]
        if status in ("RESOLVED", "NOTIFIED"):
            assert f.get("Note", {}).get("Text"), "every closed finding says why"
            ended[status] += 1
            continue
        # Not closed: its response must have said so in the audit trail (the note itself
        # could not be written, or triage could not read the finding).
        assert mine or any(r["record"] == "refused" for r in records), (status, ident)
        ended["audited, note not written"] += 1
    problems = [p for p in nacl_consistent(account, subnets) if "has no ledger tag" in p or "outside the band" in p or "quota" in p]
    assert problems == [], problems
    # Two responses blocking one address at once each write a block; the second to finish
    # drops its own duplicate when it reads again. If that response fails right there (a
    # fault on the read or the delete), both denies stand — the same address denied twice,
    # one rule slot spent — until the hourly sweep tidies duplicates. A response that failed
    # between its inbound and outbound deny leaves a half block, which every reader leaves
    # to its writer for the grace period (ten minutes); the sweep after that takes it.
    twice = [p for p in nacl_consistent(account, subnets) if "blocked twice" in p]
    if twice:
        assert any(r["status"] == "FAILED" for r in runs), ("a duplicate with no failed response", twice)
        run_sweep(account)
        left = [p for p in nacl_consistent(account, subnets) if "blocked twice" in p]
        if left:
            halves = age_half_blocks(account, subnets, minutes=11)
            assert halves, ("a whole duplicate the sweep left", left, nacl_consistent(account, subnets))
            run_sweep(account)
        assert [p for p in nacl_consistent(account, subnets) if "blocked twice" in p] == [], (twice, nacl_consistent(account, subnets))
    print(json.dumps({
        "findings": FINDINGS, "rate": RATE, "faults_injected": sum(hits.values()),
        "faults_by_kind": dict(Counter(k.split(" ")[0] for k in hits for _ in range(hits[k]))),
        "ended": dict(ended),
        "executions": dict(Counter(r["status"] for r in runs)),
        "seconds": round(time.time() - started, 1),
    }))
