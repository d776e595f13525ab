"""`make demo`: a real GuardDuty finding contained on a local AWS account.

Starts the local account (moto with Firebreak's extension, the Rust runbooks behind the
Lambda runtime API), deploys the suite from the repository's files, puts the public SSH
brute-force sample (rewritten to the demo instance, HIGH) on EventBridge, follows the Step
Functions execution and shows what was contained. Exits non-zero if containment did not
happen. `--keep` leaves the account running until Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT / "tests" / "e2e"))

from firebreak_localaws import provision  # noqa: E402
from firebreak_localaws.local_account import LocalAccount  # noqa: E402
from samples import FIXTURES, as_event, findings_of  # noqa: E402

SAMPLE = ROOT / "tests/fixtures/samples/guardduty-event-partial__UnauthorizedAccess_EC2_SSHBruteForce__aws-samples-waf-acl.json"
BOLD, DIM, GREEN, RED, RESET = ("\033[1m", "\033[2m", "\033[32m", "\033[31m", "\033[0m") if sys.stdout.isatty() else ("",) * 5


def heading(text: str) -> None:
    print(f"\n{BOLD}== {text}{RESET}")


def groups(acct: LocalAccount, instance: str) -> dict[str, list[str]]:
    enis = acct.client("ec2").describe_network_interfaces(
        Filters=[{"Name": "attachment.instance-id", "Values": [instance]}]
    )["NetworkInterfaces"]
    return {e["NetworkInterfaceId"]: sorted(f"{g['GroupName']} ({g['GroupId']})" for g in e["Groups"]) for e in enis}


def follow(acct: LocalAccount, after: int = 0, timeout: float = 90) -> dict:
    """Prints each state of the (after+1)-th response as it is entered and left, with its
    duration: triage, then each playbook's runbook as a task of the one machine."""
    sfn = acct.client("stepfunctions")
    machine = acct.deployed["stateMachines"]["response"]
    deadline = time.time() + timeout
    execution = None
    while execution is None and time.time() < deadline:
        runs = sorted(sfn.list_executions(stateMachineArn=machine)["executions"], key=lambda e: e["startDate"])
        execution = runs[after]["executionArn"] if len(runs) > after else None
        time.sleep(0.1)
    if execution is None:
        raise TimeoutError("EventBridge started no execution")
    print(f"execution {execution}")
    seen, entered = 0, {}
    while time.time() < deadline:
        # Status first, then history: the last pass prints every event up to the end.
        out = sfn.describe_execution(executionArn=execution)
        history = sfn.get_execution_history(executionArn=execution, maxResults=1000)["events"]
        for e in history[seen:]:
            kind = e["type"]
            details = e.get("stateEnteredEventDetails") or e.get("stateExitedEventDetails")
            if details and kind.endswith("StateEntered"):
                entered[details["name"]] = e["timestamp"]
                print(f"  → {details['name']}")
            elif details and kind.endswith("StateExited"):
                start = entered.get(details["name"], e["timestamp"])
                ms = (e["timestamp"] - start).total_seconds() * 1000
                print(f"  ✓ {details['name']:<18} {ms:7.0f} ms")
            elif kind.endswith("Failed") and "executionFailedEventDetails" not in e:
                info = next((v for k, v in e.items() if k.endswith("EventDetails")), {})
                print(f"  {RED}✗ {kind}: {info.get('error', '')} {info.get('cause', '')[:200]}{RESET}")
        seen = len(history)
        if out["status"] != "RUNNING":
            return out
        time.sleep(0.2)
    raise TimeoutError(f"{execution} still running after {timeout}s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--keep", action="store_true", help="keep the local account running until Ctrl-C")
    args = parser.parse_args()
    target = Path(os.environ.get("CARGO_TARGET_DIR", str(ROOT / "target")))
    bin_dir = Path(os.environ.get("FIREBREAK_BIN_DIR", str(target / "debug")))

    heading("Starting the local AWS account")
    started = time.time()
    # GuardDuty's copy of each finding reaches Security Hub a second after its event, as it
    # travels separately in AWS (where it can take minutes): mark-resolved waits for it.
    acct = LocalAccount(ROOT, bin_dir, import_delay=1.0).start()
    try:
        d = acct.deployed
        print(f"moto on {acct.url}, runbooks on the Lambda runtime API: {', '.join(d['functions'])}")
        print(f"state machines: {', '.join(d['stateMachines'])}; rules: {', '.join(d['rules'])}; ready in {time.time() - started:.1f} s")
        web = acct.demo["webInstance"]

        # Who is told: a queue on each topic, as a chat integration or a ticket bridge would be.
        sqs, sns = acct.client("sqs"), acct.client("sns")
        inboxes = {}
        for audience, topic in d["topics"].items():
            url = sqs.create_queue(QueueName=f"demo-{audience}")["QueueUrl"]
            arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
            inboxes[audience] = url

        heading(f"Before: instance {web} (owner alice@example.com, team payments)")
        before = groups(acct, web)
        for eni, g in before.items():
            print(f"  {eni}: {', '.join(g)}")

        sample = json.loads(SAMPLE.read_text())["detail"]
        event = provision.guardduty_event(sample, web, acct.demo, 8.0, "5d0f605f61b2f5cd0123456789abcdef")
        ident = provision.finding_ident(event)
        heading("A GuardDuty finding arrives on EventBridge")
        print(f"  {event['detail']['type']}, severity {event['detail']['severity']}, remote IP 198.51.100.0, instance {web}")
        put_at = time.time()
        acct.put_event(event)

        heading("The response runs: EC2 compromise, then the malicious remote IP")
        run = follow(acct)
        finding = acct.client("securityhub").get_findings(Filters={"Id": [{"Value": ident["Id"], "Comparison": "EQUALS"}]})["Findings"][0]
        contained_in = time.time() - put_at

        heading(f"After: instance {web}")
        after = groups(acct, web)
        for eni, g in after.items():
            print(f"  {eni}: {', '.join(before.get(eni, []))}  →  {GREEN}{', '.join(g)}{RESET}")
        ec2 = acct.client("ec2")
        snaps = ec2.describe_snapshots(OwnerIds=["self"], Filters=[{"Name": "tag:firebreak:finding", "Values": [ident["Id"]]}])["Snapshots"]
        for s in snaps:
            print(f"  evidence snapshot {s['SnapshotId']} of {s['VolumeId']}")
        protection = ec2.describe_instance_attribute(InstanceId=web, Attribute="disableApiTermination")["DisableApiTermination"]["Value"]
        print(f"  termination protection: {'on' if protection else 'off'}")

        heading("The finding in Security Hub")
        print(f"  workflow: {finding.get('Workflow', {}).get('Status')}")
        print(f"  note: {finding.get('Note', {}).get('Text', '')}")

        heading("The network ACL of the instance's subnets")
        acl = ec2.describe_network_acls(Filters=[{"Name": "association.subnet-id", "Values": [acct.demo["subnets"][0]]}])["NetworkAcls"][0]
        for entry in sorted(acl["Entries"], key=lambda e: (e["Egress"], e["RuleNumber"])):
            if entry["RuleNumber"] < 100:
                print(f"  rule {entry['RuleNumber']} {'outbound' if entry['Egress'] else 'inbound ':<8} {entry['RuleAction']} {entry.get('CidrBlock')}")
        for tag in acl.get("Tags", []):
            if tag["Key"].startswith("firebreak:block:"):
                print(f"  {DIM}ledger {tag['Key']} = {tag['Value'][:100]}{RESET}")

        ec2_ok = run["status"] == "SUCCEEDED" and finding.get("Workflow", {}).get("Status") == "RESOLVED" and all(
            len(g) == 1 and g[0].startswith("firebreak-isolation-") for g in after.values()
        )

        # ---- the second finding: stolen instance credentials ---------------------------
        iam = acct.client("iam")
        role = "web-instance-role"
        exfil = as_event(FIXTURES / "assumed-role-credential-exfiltration.json", acct)
        (cred_ident,) = findings_of(acct, exfil)
        heading(f"A second finding: {exfil['detail']['type']}")
        print(f"  the credentials of role {role} (the web instance's profile) were used from {exfil['detail']['service']['action']['awsApiCallAction']['remoteIpDetails']['ipAddressV4']}")
        print(f"  inline policies of {role} before: {iam.list_role_policies(RoleName=role)['PolicyNames'] or 'none'}")
        acct.put_event(exfil)
        heading("The credential-compromise response runs")
        cred_run = follow(acct, after=1)
        doc = iam.get_role_policy(RoleName=role, PolicyName="AWSRevokeOlderSessions")["PolicyDocument"]
        doc = json.loads(doc) if isinstance(doc, str) else doc
        cutoff = doc["Statement"][0]["Condition"]["DateLessThan"]["aws:TokenIssueTime"]
        print(f"  inline policies of {role} after: {', '.join(iam.list_role_policies(RoleName=role)['PolicyNames'])}")
        print(f"  {GREEN}AWSRevokeOlderSessions: deny * to every token issued before {cutoff}{RESET}")
        cred_finding = acct.client("securityhub").get_findings(Filters={"Id": [{"Value": cred_ident["Id"], "Comparison": "EQUALS"}]})["Findings"][0]
        print(f"  workflow: {cred_finding.get('Workflow', {}).get('Status')}")
        print(f"  note: {cred_finding.get('Note', {}).get('Text', '')}")
        cred_ok = cred_run["status"] == "SUCCEEDED" and cred_finding.get("Workflow", {}).get("Status") == "RESOLVED"

        # ---- the third finding: a member account, in the second region -----------------
        member = provision.MEMBERS[0]
        mdemo = acct.members[member]
        mweb = mdemo["webInstance"]
        mec2 = acct.client("ec2", account=member, region=mdemo["region"])
        member_groups = lambda: {e["NetworkInterfaceId"]: sorted(g["GroupName"] for g in e["Groups"])  # noqa: E731
                                 for e in mec2.describe_network_interfaces(Filters=[{"Name": "attachment.instance-id", "Values": [mweb]}])["NetworkInterfaces"]}
        here_before = groups(acct, web)
        mevent = provision.guardduty_event(sample, mweb, mdemo, 8.0, "5d0f605f61b2f5cd0123456789abc0de", account=member, region=mdemo["region"])
        mident = provision.finding_ident(mevent)
        heading(f"A third finding: member account {member}, region {mdemo['region']}, instance {mweb}")
        print(f"  it arrives on Firebreak's bus in {provision.ACCOUNT} ({provision.REGION}), the organisation's delegated administrator")
        mbefore = member_groups()
        acct.put_event(mevent)
        heading("The response runs in the member account, through its member roles")
        mrun = follow(acct, after=2)
        mafter = member_groups()
        for eni, g in mafter.items():
            print(f"  {member}/{mdemo['region']} {eni}: {', '.join(mbefore.get(eni, []))}  →  {GREEN}{', '.join(g)}{RESET}")
        sessions = sorted({(r["role"], r["account"], r["region"]) for r in acct.request_log() if (r.get("role") or "").startswith(provision.MEMBER_ROLE_PREFIX)})
        for role_name, in_account, in_region in sessions:
            print(f"  {DIM}calls as {role_name} in {in_account}/{in_region}{RESET}")
        unchanged = groups(acct, web) == here_before
        print(f"  Firebreak's own account: {'nothing changed' if unchanged else RED + 'CHANGED' + RESET}")
        mfinding = acct.client("securityhub").get_findings(Filters={"Id": [{"Value": mident["Id"], "Comparison": "EQUALS"}]})["Findings"][0]
        print(f"  workflow: {mfinding.get('Workflow', {}).get('Status')}")
        print(f"  note: {mfinding.get('Note', {}).get('Text', '')[:300]}")
        member_ok = mrun["status"] == "SUCCEEDED" and mfinding.get("Workflow", {}).get("Status") == "RESOLVED" and unchanged and all(
            len(g) == 1 and g[0].startswith("firebreak-isolation-") for g in mafter.values()
        )

        heading("The audit trail (/firebreak/audit)")
        for e in acct.client("logs").filter_log_events(logGroupName=provision.AUDIT_LOG_GROUP).get("events", []):
            r = json.loads(e["message"])
            if r["record"] == "action":
                print(f"  action    {r['action']:<20} {r['status']:<12} {r['summary'][:90]}")
            else:
                secs = r.get("ContainmentSeconds")
                print(f"  {r['record']:<9} {r.get('resolution', ''):<20} actions {r.get('ActionsTaken', 0)}, failed {r.get('ActionsFailed', 0)}" + (f", {secs:.0f} s since first seen" if secs else ""))

        heading("Who was told (firebreak-owners, firebreak-response)")
        first_body = None
        for audience, url in inboxes.items():
            for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
                n = json.loads(m["Body"])
                print(f"  {audience:<9} {n['Subject']}")
                first_body = first_body or n["Message"]
        if first_body:
            print("  the owners' first message:")
            for line in first_body.splitlines()[:12]:
                print(f"    {line[:110]}")

        heading(f"An operator releases the EC2 finding: firebreak release {ident['Id'][:60]}…")
        released = subprocess.run([str(bin_dir / "firebreak"), "release", ident["Id"]], env=acct.cli_env(), capture_output=True, text=True, timeout=180)
        for line in released.stdout.splitlines():
            print(f"  {line[:130]}")
        back = groups(acct, web)
        for eni, g in back.items():
            print(f"  {eni}: {', '.join(after.get(eni, []))}  →  {GREEN}{', '.join(g)}{RESET}")
        acl = ec2.describe_network_acls(NetworkAclIds=[acl["NetworkAclId"]])["NetworkAcls"][0]
        blocks_left = [e for e in acl["Entries"] if e.get("CidrBlock") == "198.51.100.0/32"]
        print(f"  blocks of 198.51.100.0 left in {acl['NetworkAclId']}: {len(blocks_left)}")
        release_ok = released.returncode == 0 and back == before and not blocks_left
        if not release_ok:
            print(f"  {RED}release: exit {released.returncode}{RESET} {released.stderr[-300:]}")

        ok = ec2_ok and cred_ok and member_ok and release_ok
        heading(
            f"{GREEN}Contained{RESET}: the EC2 finding in {contained_in:.1f} s from event to RESOLVED (its copy reached Security Hub "
            f"{acct.import_delay:.0f} s after the event, and mark-resolved waited for it), then the stolen credentials, then the member "
            f"account's instance in {mdemo['region']}; and released on an operator's word"
            if ok else f"{RED}NOT contained{RESET}: EC2 response {run['status']}, credential response {cred_run['status']}, member response {mrun['status']}"
        )
        if args.keep:
            print(f"\nThe local account keeps running at {acct.url} (Ctrl-C stops it). Drill it:")
            exports = " ".join(f"{k}={v}" for k, v in acct.cli_env().items() if k.startswith("AWS_"))
            print(f"  export {exports}")
            print(f"  {bin_dir / 'firebreak'} drill --sample ec2-network-backdoor --dry-run --report drill.html")
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                pass
        return 0 if ok else 1
    finally:
        acct.stop()


if __name__ == "__main__":
    sys.exit(main())
