"""`firebreak drill` and `firebreak report` against the local account, the way a security
team rehearses a response: the real CLI binary, the standard AWS configuration
(AWS_ENDPOINT_URL, keys, region), the deployed state machines; the report opened in
headless Chromium."""

import json
import shutil
import subprocess
from html.parser import HTMLParser

import pytest
from conftest import ROOT, bin_dir, calls_by, finding, set_policy, ssh_brute_force
from firebreak_localaws import provision
from samples import FIXTURES, as_event, import_findings

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def firebreak(acct, *args, env=None):
    return subprocess.run(
        [str(bin_dir() / "firebreak"), *map(str, args)],
        env=env or acct.cli_env(), capture_output=True, text=True, timeout=180,
    )


def drill(acct, tmp_path, event, *args):
    path = tmp_path / "input.json"
    path.write_text(json.dumps(event))
    p = firebreak(acct, "drill", path, "--json", *args)
    out = json.loads(p.stdout) if p.stdout.strip().startswith("{") else None
    return p, out


def world(acct):
    """What a drill could change: every interface's groups, the NACLs, the role's
    policies, the user's keys, the snapshots."""
    ec2, iam = acct.client("ec2"), acct.client("iam")
    return {
        "enis": sorted((e["NetworkInterfaceId"], tuple(sorted(g["GroupId"] for g in e["Groups"]))) for e in ec2.describe_network_interfaces()["NetworkInterfaces"]),
        "nacls": sorted((a["NetworkAclId"], e["RuleNumber"], e["Egress"], e["RuleAction"]) for a in ec2.describe_network_acls()["NetworkAcls"] for e in a["Entries"]),
        "nacl_tags": sorted((a["NetworkAclId"], t["Key"]) for a in ec2.describe_network_acls()["NetworkAcls"] for t in a.get("Tags", [])),
        "role_policies": iam.list_role_policies(RoleName="web-instance-role")["PolicyNames"],
        "keys": sorted((k["AccessKeyId"], k["Status"]) for k in iam.list_access_keys(UserName=acct.demo["user"])["AccessKeyMetadata"]),
        "snapshots": len(ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]),
    }


class Dom(HTMLParser):
    """The state nodes and planned actions of a report, as the browser built them."""

    def __init__(self):
        super().__init__()
        self.states, self.planned, self.outcomes = {}, [], []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        classes = (a.get("class") or "").split()
        if tag == "g" and "state" in classes:
            assert a["data-state"] not in self.states, f"two nodes for {a['data-state']}"
            self.states[a["data-state"]] = a["data-status"]
        if tag == "tr" and "planned" in classes:
            self.planned.append((a["data-action"], a["data-run"]))
        if tag == "tr" and "outcome" in classes:
            self.outcomes.append((a["data-action"], a["data-status"]))


def asl_states(machine):
    def walk(scope):
        for name, s in scope["States"].items():
            yield name
            for inner in [s.get("Iterator") or s.get("ItemProcessor")] + s.get("Branches", []):
                if inner:
                    yield from walk(inner)
    return list(walk(json.loads((ROOT / "statemachines" / f"{machine}.asl.json").read_text())))


def open_in_chromium(report, tmp_path):
    assert CHROMIUM, "Debian's chromium is needed for the report tests (make test installs it as root)"
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"]
    shot = tmp_path / "report.png"
    subprocess.run([CHROMIUM, *flags, "--window-size=1400,2000", f"--screenshot={shot}", report.as_uri()], capture_output=True, timeout=120, check=True)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000, "a real screenshot"
    dom = subprocess.run([CHROMIUM, *flags, "--dump-dom", report.as_uri()], capture_output=True, text=True, timeout=120, check=True).stdout
    parsed = Dom()
    parsed.feed(dom)
    return parsed


def entered_and_failed(acct, arn):
    events = acct.client("stepfunctions").get_execution_history(executionArn=arn, maxResults=1000)["events"]
    entered = {e["stateEnteredEventDetails"]["name"] for e in events if "stateEnteredEventDetails" in e}
    fails = {e["stateEnteredEventDetails"]["name"] for e in events if e["type"] == "FailStateEntered"}
    return entered, fails


def ip_event(acct):
    return ssh_brute_force(acct, severity=5.0)


def credential_event(acct):
    return as_event(FIXTURES / "assumed-role-credential-exfiltration.json", acct)


PLAYBOOKS = {
    "ec2-compromise": (lambda acct: ssh_brute_force(acct), ["isolate-instance"]),
    "credential-compromise": (credential_event, ["revoke-role-sessions"]),
    "malicious-remote-ip": (ip_event, ["block-remote-ips"]),
}


@pytest.mark.parametrize("playbook", PLAYBOOKS)
def test_a_dry_run_drill_changes_nothing_and_lists_what_the_real_drill_then_does(account, tmp_path, playbook):
    make, expected_actions = PLAYBOOKS[playbook]
    event = make(account)
    (ident,) = import_findings(account, event)
    before = world(account)

    p, dry = drill(account, tmp_path, event, "--dry-run", "--playbook", playbook, "--report", tmp_path / "dry.html", "--expect", "dry-run")
    assert p.returncode == 0, p.stderr
    assert world(account) == before, "a dry run changes nothing"
    assert finding(account, ident).get("Workflow", {}).get("Status", "NEW") == "NEW"
    assert {o["status"] for o in dry["outcomes"]} == {"dry-run"}
    dom = open_in_chromium(tmp_path / "dry.html", tmp_path)
    # What the dry run's report says this drill will do: the planned actions it checked.
    dry_planned = [a for a, run in dom.planned if run == "dry-run" and a != "mark-resolved"]
    assert [a for a, s in dom.outcomes if a != "mark-resolved"] == dry_planned

    # The same drill expecting another outcome fails, and says so.
    p, _ = drill(account, tmp_path, event, "--dry-run", "--playbook", playbook, "--expect", "contained")
    assert p.returncode == 1 and "expected contained, the drill ended dry-run" in p.stderr

    p, real = drill(account, tmp_path, event, "--playbook", playbook)
    assert p.returncode == 0, p.stderr
    done = [o["action"] for o in real["outcomes"] if o["action"] != "mark-resolved"]
    assert dry_planned == done == expected_actions, (dry_planned, done)
    assert dry["plannedActions"] == real["plannedActions"], "the same plan, dry or real"
    assert all(o["status"] == "done" for o in real["outcomes"]), real["outcomes"]
    assert world(account) != before
    # RESOLVED only when the drill ran every action triage planned; the rest is named.
    left_out = [s for p in real["plans"] for s in p["skipped"] if s["reason"] == "not-selected"]
    status = finding(account, ident)["Workflow"]["Status"]
    if left_out:
        assert real["resolution"] == "partly-contained" and status == "NOTIFIED", real["resolution"]
        assert left_out[0]["detail"] in finding(account, ident)["Note"]["Text"] or finding(account, ident)["Note"]["Text"].endswith("…")
    else:
        assert real["resolution"] == "contained" and status == "RESOLVED", real["resolution"]
    assert real["stateMachine"] == f"{provision.STACK}-response", "one machine; a playbook is part of a plan"
    assert any(r["record"] == "execution" and r["resolution"] == real["resolution"] for r in real["auditRecords"])


def test_a_credential_drill_of_a_finding_that_also_plans_a_block_runs_only_the_revoke(account, tmp_path):
    # A policy that also revokes the instance role's sessions on a HIGH SSH brute force:
    # triage plans isolation, the revoke and the IP block.
    set_policy(account, lambda p: next(r for r in p["rules"] if r["name"] == "brute-force-isolate")["actions"].append("revoke-role-sessions"))
    event = ssh_brute_force(account)
    ident = provision.import_finding(account.client, event)
    before = world(account)
    p, real = drill(account, tmp_path, event, "--playbook", "credential-compromise", "--expect", "partly-contained")
    assert p.returncode == 0, p.stderr
    (plan,) = real["plans"]
    assert [a["action"] for a in plan["actions"]] == ["revoke-role-sessions", "mark-resolved"]
    assert sorted(s["action"] for s in plan["skipped"] if s["reason"] == "not-selected") == ["block-remote-ips", "isolate-instance"], plan["skipped"]
    assert world(account)["enis"] == before["enis"], "isolation did not run either"
    assert world(account)["nacls"] == before["nacls"] and world(account)["nacl_tags"] == before["nacl_tags"], "the block did not run"
    assert calls_by(account, "block-remote-ip") == []
    assert world(account)["role_policies"] == ["AWSRevokeOlderSessions"]
    f = finding(account, ident)
    assert f["Workflow"]["Status"] == "NOTIFIED"
    assert "block-remote-ips: planned, but the drill ran only credential-compromise (not malicious-remote-ip)" in f["Note"]["Text"], f["Note"]


def test_the_report_shows_one_node_per_state_and_the_path_the_execution_took(account, tmp_path):
    event = ssh_brute_force(account)
    import_findings(account, event)
    account.fault(service="ec2", operation="CreateNetworkAclEntry", code="UnauthorizedOperation", status=403, count=100)
    p, out = drill(account, tmp_path, event, "--report", tmp_path / "drill.html", "--expect", "failed")
    assert p.returncode == 0, p.stderr
    assert out["status"] == "FAILED"
    arn = out["executionArn"]

    # `firebreak report` writes the same page for any execution.
    r = firebreak(account, "report", arn, "-o", tmp_path / "report.html")
    assert r.returncode == 0, r.stderr
    for page in ("drill.html", "report.html"):
        dom = open_in_chromium(tmp_path / page, tmp_path)
        assert sorted(dom.states) == sorted(asl_states("response")), "one node per state"
        entered, fails = entered_and_failed(account, arn)
        reached = {name for name, status in dom.states.items() if status != "not-reached"}
        assert reached == entered, "highlighted exactly where the execution went"
        assert fails and {name for name in fails if dom.states[name] == "failed"} == fails
        assert dom.states["Done"] == "not-reached" and dom.states["ResponseFailed"] == "failed"
        assert ("block-remote-ips", "done") not in dom.outcomes
    html = (tmp_path / "report.html").read_text()
    assert "<script" not in html and "ec2:CreateNetworkAclEntry" in html


def test_a_drill_through_eventbridge_follows_the_execution_the_rule_starts(account, tmp_path):
    event = ip_event(account)
    import_findings(account, event)
    before = world(account)
    # The drill file's own dryRun travels with the event: it is honoured, never lost.
    p, out = drill(account, tmp_path, {"event": event, "dryRun": True}, "--via-eventbridge", "--expect", "dry-run")
    assert p.returncode == 0, p.stderr
    assert world(account) == before
    assert out["stateMachine"] == f"{provision.STACK}-response"
    p, out = drill(account, tmp_path, event, "--via-eventbridge", "--expect", "contained")
    assert p.returncode == 0, p.stderr
    assert [o["action"] for o in out["outcomes"]] == ["block-remote-ips", "mark-resolved"]
    puts = [c for c in account.request_log() if c["operation"] == "PutEvents"]
    assert len(puts) == 2


def test_a_missing_state_machine_or_no_credentials_is_one_clear_line(account, tmp_path):
    event = ip_event(account)
    missing = f"arn:aws:states:{provision.REGION}:{provision.ACCOUNT}:stateMachine:does-not-exist"
    p, _ = drill(account, tmp_path, event, "--state-machine", missing)
    assert p.returncode == 4
    assert p.stderr.count("\n") == 1 and p.stderr.startswith("firebreak: state machine ") and "does-not-exist" in p.stderr, p.stderr

    no_keys = account.cli_env()
    del no_keys["AWS_ACCESS_KEY_ID"], no_keys["AWS_SECRET_ACCESS_KEY"]
    path = tmp_path / "e.json"
    path.write_text(json.dumps(event))
    p = firebreak(account, "drill", path, env=no_keys)
    assert p.returncode == 4
    assert p.stderr.count("\n") == 1 and p.stderr.startswith("firebreak: no AWS credentials"), p.stderr
    # Nothing reached the account.
    assert not [c for c in account.request_log() if c["operation"] == "StartExecution"]

    p = firebreak(account, "drill", "--sample", "no-such-sample")
    assert p.returncode == 2 and "firebreak samples" in p.stderr


def test_a_sample_drill_of_a_placeholder_instance_is_skipped_with_the_reason(account, tmp_path):
    p = firebreak(account, "drill", "--sample", "ec2-network-backdoor", "--dry-run", "--expect", "nothing-to-do")
    assert p.returncode == 0, p.stdout + p.stderr
    assert "target-not-found" in p.stdout or "no instance" in p.stdout, p.stdout
    assert calls_by(account, "isolate-instance") == []
