"""`make bench`, the local-account part: for the release build of each runbook, process
start to first response under the Lambda runtime API and peak memory; for the EC2
response (EC2 + IP, IP alone, credentials), end-to-end time (event put to finding
RESOLVED, median of several runs) and AWS API calls per response, from the request log; and
the release of the first scenario's finding.

Timings here are measurements to report, never assertions.
"""

from __future__ import annotations

import json
import os
import statistics
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
RUNS = int(os.environ.get("FIREBREAK_BENCH_RUNS", "5"))


def peak_kib(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def ssh(acct: LocalAccount, severity: float) -> dict:
    sample = json.loads(SAMPLE.read_text())["detail"]
    return provision.guardduty_event(sample, acct.demo["webInstance"], acct.demo, severity, "0123456789abcdef0123456789abcdef")


# Each response a playbook (or two) runs: the event that starts it.
SCENARIOS = {
    "ec2-compromise + malicious-remote-ip (SSH brute force, HIGH)": lambda acct: ssh(acct, 8.0),
    "malicious-remote-ip (SSH brute force, MEDIUM)": lambda acct: ssh(acct, 5.0),
    "credential-compromise (instance credentials exfiltrated)": lambda acct: as_event(FIXTURES / "assumed-role-credential-exfiltration.json", acct),
}


# The scenario whose finding is then released (the release machine, started as
# `firebreak release FINDING` starts it).
RELEASED = "ec2-compromise + malicious-remote-ip (SSH brute force, HIGH)"


def release_of(acct: LocalAccount, finding_id: str, keys: dict[str, str]) -> dict:
    before = len(acct.request_log())
    sfn = acct.client("stepfunctions")
    start = time.perf_counter()
    run = sfn.start_execution(stateMachineArn=acct.deployed["stateMachines"]["release"], input=json.dumps({"finding": finding_id}))
    while sfn.describe_execution(executionArn=run["executionArn"])["status"] == "RUNNING":
        time.sleep(0.01)
    took = time.perf_counter() - start
    status = sfn.describe_execution(executionArn=run["executionArn"])["status"]
    if status != "SUCCEEDED":
        raise RuntimeError(f"release {status}")
    calls: dict[str, int] = {}
    for r in acct.request_log()[before:]:
        if r["accessKeyId"] in keys:
            calls[keys[r["accessKeyId"]]] = calls.get(keys[r["accessKeyId"]], 0) + 1
    return {"s": took, "calls": calls}


def one_run(bin_dir: Path, scenario: str) -> dict:
    # Security Hub's copy of the finding at once: the time measured is Firebreak's own.
    acct = LocalAccount(ROOT, bin_dir, import_delay=0).start()
    try:
        event = SCENARIOS[scenario](acct)
        (ident,) = findings_of(acct, event)
        hub = acct.client("securityhub")
        start = time.perf_counter()
        acct.put_event(event)
        while time.perf_counter() - start < 60:
            f = hub.get_findings(Filters={"Id": [{"Value": ident["Id"], "Comparison": "EQUALS"}]})["Findings"][0]
            if f.get("Workflow", {}).get("Status") == "RESOLVED":
                break
            time.sleep(0.01)
        contained = time.perf_counter() - start
        run = acct.wait_for_execution("response")
        if run["status"] != "SUCCEEDED":
            raise RuntimeError(f"{scenario}: response {run['status']}")
        keys = {c["AWS_ACCESS_KEY_ID"]: name for name, c in acct.deployed["credentials"].items()}
        calls: dict[str, int] = {}
        operations: dict[str, dict[str, int]] = {}
        for r in acct.request_log():
            if r["accessKeyId"] in keys:
                fn = keys[r["accessKeyId"]]
                calls[fn] = calls.get(fn, 0) + 1
                ops = operations.setdefault(fn, {})
                ops[r["operation"]] = ops.get(r["operation"], 0) + 1
        history = acct.client("stepfunctions").get_execution_history(executionArn=run["executionArn"], maxResults=1000)["events"]
        transitions = sum(1 for e in history if e["type"].endswith("StateEntered"))
        assert acct.host is not None
        functions = {
            name: {
                "ready_ms": (fn.ready_at - fn.started_at) * 1000 if fn.ready_at else None,
                "first_invocation_ms": fn.first_invocation_s * 1000 if fn.first_invocation_s is not None else None,
                "peak_kib": peak_kib(fn.process.pid) if fn.process else None,
            }
            for name, fn in acct.host.functions.items()
        }
        released = release_of(acct, ident["Id"], keys) if scenario == RELEASED else None
        return {"contained_s": contained, "calls": calls, "operations": operations, "transitions": transitions, "functions": functions, "release": released}
    finally:
        acct.stop()


def main() -> int:
    target = Path(os.environ.get("CARGO_TARGET_DIR", str(ROOT / "target")))
    bin_dir = Path(os.environ.get("FIREBREAK_BIN_DIR", str(target / "release")))
    # The samples helpers ask the firebreak binary what an input is: the same build.
    os.environ["FIREBREAK_BIN_DIR"] = str(bin_dir)
    every: list[dict] = []
    for scenario in SCENARIOS:
        print(f"\n== Local account: {scenario}, {RUNS} runs, binaries from {bin_dir}")
        runs = [one_run(bin_dir, scenario) for _ in range(RUNS)]
        every.extend(runs)
        times = [r["contained_s"] for r in runs]
        print(f"response, event put to finding RESOLVED: median {statistics.median(times) * 1000:.0f} ms "
              f"(min {min(times) * 1000:.0f}, max {max(times) * 1000:.0f})")
        print(f"state transitions per response (StateEntered events in the execution history): {runs[0]['transitions']}")
        print("AWS API calls per response (from the request log):")
        for name in sorted(runs[0]["calls"]):
            ops = ", ".join(f"{op} {n}" for op, n in sorted(runs[0]["operations"][name].items()))
            print(f"  {name:<20} {runs[0]['calls'][name]:3}   {ops}")
        print(f"  {'total':<20} {sum(runs[0]['calls'].values())}")
        if runs[0]["release"]:
            took = [r["release"]["s"] for r in runs]
            print(f"release of that finding (release machine, start to SUCCEEDED): median {statistics.median(took) * 1000:.0f} ms "
                  f"(min {min(took) * 1000:.0f}, max {max(took) * 1000:.0f}); AWS calls: "
                  + ", ".join(f"{n} {c}" for n, c in sorted(runs[0]["release"]["calls"].items()))
                  + f", total {sum(runs[0]['release']['calls'].values())}")
    runs = every
    print("per runbook, median over runs: cold start (process start to ready for its first event),")
    print("first invocation (event handed over to response, real calls into the local account), peak memory")
    for name in sorted(runs[0]["functions"]):
        def median(key: str) -> float | None:
            values = [r["functions"][name][key] for r in runs if r["functions"][name][key] is not None]
            return statistics.median(values) if values else None
        ready, first, peak = median("ready_ms"), median("first_invocation_ms"), median("peak_kib")
        if first is None:
            continue
        size = (bin_dir / name).stat().st_size / 1048576
        print(
            f"  {name:<18} binary {size:5.2f} MiB   cold start {ready or 0:6.1f} ms   "
            f"first invocation {first or 0:6.1f} ms   peak {(peak or 0) / 1024:5.1f} MiB"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
