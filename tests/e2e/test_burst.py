"""A burst, as an organisation sees one: 100 findings put within a second (ten to a
PutEvents call, as EventBridge takes them), across 20
instances in 3 subnets whose network ACL they share, with overlapping remote IPs. Lambda
runs the responses side by side (the local host scales out), so they race for the same
rule numbers, the same isolation groups and the same findings. Every finding must end
RESOLVED or NOTIFIED with a note, and the NACL must stay consistent: no entry outside the
band, none duplicated, none without its ledger tag, the quota never exceeded.

`FIREBREAK_BURST` sets the number of findings (`make burst` runs more)."""

import json
import os
import time

from conftest import calls_by, finding, ssh_brute_force
from firebreak_localaws import provision

BURST = int(os.environ.get("FIREBREAK_BURST", "100"))
INSTANCES = 20
IPS = [f"203.0.113.{i}" for i in range(1, 16)]


def seed_instances(acct):
    ec2 = acct.client("ec2")
    third = ec2.create_subnet(VpcId=acct.demo["vpc"], CidrBlock="10.20.3.0/24", AvailabilityZone="us-east-1a")["Subnet"]["SubnetId"]
    subnets = acct.demo["subnets"] + [third]
    ids = []
    for i in range(INSTANCES):
        ids += [x["InstanceId"] for x in ec2.run_instances(
            ImageId="ami-12c6146b", MinCount=1, MaxCount=1, InstanceType="t3.micro",
            SubnetId=subnets[i % 3], SecurityGroupIds=[acct.demo["groups"]["web"]],
        )["Instances"]]
    return ids, subnets


def burst_events(acct, ids, subnets, count, prefix="", severity=lambda i: 8.0 if i % 5 == 0 else 5.0):
    """`count` SSH brute-force events spread over the instances and their subnets, with the
    remote IPs overlapping."""
    events = []
    for i in range(count):
        event = ssh_brute_force(acct, instance_id=ids[i % INSTANCES], severity=severity(i), finding_id=f"{prefix}{i:0{32 - len(prefix)}x}")
        event["detail"]["resource"]["instanceDetails"]["networkInterfaces"][0]["subnetId"] = subnets[(i % INSTANCES) % 3]
        event["detail"]["service"]["action"]["networkConnectionAction"]["remoteIpDetails"]["ipAddressV4"] = IPS[i % len(IPS)]
        events.append(event)
    return events


def nacl_consistent(acct, subnets):
    ec2 = acct.client("ec2")
    acls = ec2.describe_network_acls(Filters=[{"Name": "association.subnet-id", "Values": subnets}])["NetworkAcls"]
    problems = []
    for acl in acls:
        tags = {t["Key"]: t["Value"] for t in acl.get("Tags", []) if t["Key"].startswith("firebreak:block:")}
        denies = {}
        for e in acl["Entries"]:
            if e["RuleNumber"] > 32766:
                continue
            if e["RuleAction"] == "deny":
                denies.setdefault(e["RuleNumber"], {})[e["Egress"]] = e.get("CidrBlock")
                if not 80 <= e["RuleNumber"] <= 99:
                    problems.append(f"deny outside the band: {e}")
        for egress in (False, True):
            count = sum(1 for e in acl["Entries"] if e["Egress"] == egress and e["RuleNumber"] <= 32766 and "CidrBlock" in e)
            if count + 1 > 20:
                problems.append(f"quota exceeded: {count} rules + the default")
        seen = {}
        for number, ways in denies.items():
            cidr = ways.get(False) or ways.get(True)
            ip = cidr.split("/")[0]
            if set(ways) != {False, True} or ways[False] != ways[True]:
                problems.append(f"rule {number} not the same deny both ways: {ways}")
            if f"firebreak:block:{number}:{ip}" not in tags:
                problems.append(f"rule {number} ({cidr}) has no ledger tag")
            if ip in seen:
                problems.append(f"{ip} blocked twice: rules {seen[ip]} and {number}")
            seen[ip] = number
        for key in tags:
            number, ip = key.split(":", 3)[2], key.split(":", 3)[3]
            if int(number) not in denies or (denies[int(number)].get(False) or "").split("/")[0] != ip:
                problems.append(f"tag {key} without its entry")
    return problems


def test_a_burst_of_findings_ends_each_resolved_or_notified_and_the_ledger_consistent(account):
    ids, subnets = seed_instances(account)
    events = burst_events(account, ids, subnets, BURST)
    started = time.time()
    account.put_events(events)
    put_s = time.time() - started
    runs = account.wait_for_executions("response", BURST, timeout=900)
    assert len(runs) == BURST and all(r["status"] != "RUNNING" for r in runs), f"{sum(r['status'] == 'RUNNING' for r in runs)} still running"
    ended, why = {}, []
    for event in events:
        f = finding(account, provision.finding_ident(event))
        status = f.get("Workflow", {}).get("Status", "NEW")
        assert status in ("RESOLVED", "NOTIFIED"), (status, f.get("Note"))
        assert f.get("Note", {}).get("Text"), "every finding says why"
        ended[status] = ended.get(status, 0) + 1
        if status == "NOTIFIED":
            why.append(f["Note"]["Text"][:160])
    problems = nacl_consistent(account, subnets)
    assert problems == [], problems
    # A burst from one account costs one lookup of it: one triage claims it, the others
    # wait for its answer in the cache.
    lookups = [c for c in calls_by(account, "triage") if c["operation"] == "DescribeAccount"]
    assert len(lookups) == 1, f"{len(lookups)} Organizations lookups of one account in a burst"
    closed = sorted(r["stopDate"].timestamp() - started for r in runs)
    all_closed = closed[-1]
    print(json.dumps({"findings": BURST, "put_seconds": round(put_s, 2), "ended": ended,
                      "event_to_closed_seconds": {"p50": round(closed[len(closed) // 2], 1), "p95": round(closed[int(len(closed) * 0.95) - 1], 1)},
                      "findings_per_minute": round(BURST / all_closed * 60),
                      "executions": {s: sum(r["status"] == s for r in runs) for s in ("SUCCEEDED", "FAILED")},
                      "seconds_to_all_closed": round(time.time() - started, 1), "notified": why[:5]}))
