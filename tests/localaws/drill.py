"""`make drill`: rehearse on the local account the way a team rehearses on a real one.

Starts the local account, deploys the suite, imports the SSH brute-force sample (rewritten
to the demo instance) into Security Hub, then runs the real `firebreak drill` command
twice against it through the standard AWS configuration (AWS_ENDPOINT_URL, keys, region):
a dry run that must change nothing, then the real drill expecting `contained`. Both write
their report page (drill-dry-run.html, drill.html in DRILL_REPORT_DIR, default ./target).
Extra arguments go to both drills.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from firebreak_localaws import provision  # noqa: E402
from firebreak_localaws.local_account import LocalAccount  # noqa: E402

SAMPLE = ROOT / "tests/fixtures/samples/guardduty-event-partial__UnauthorizedAccess_EC2_SSHBruteForce__aws-samples-waf-acl.json"


def main() -> int:
    target = Path(os.environ.get("CARGO_TARGET_DIR", str(ROOT / "target")))
    bin_dir = Path(os.environ.get("FIREBREAK_BIN_DIR", str(target / "debug")))
    out_dir = Path(os.environ.get("DRILL_REPORT_DIR", str(ROOT / "target")))
    out_dir.mkdir(parents=True, exist_ok=True)
    acct = LocalAccount(ROOT, bin_dir).start()
    try:
        event = provision.guardduty_event(json.loads(SAMPLE.read_text())["detail"], acct.demo["webInstance"], acct.demo, 8.0, "d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1")
        provision.import_finding(acct.client, event)
        finding = out_dir / "drill-finding.json"
        finding.write_text(json.dumps(event, indent=2))
        env = acct.cli_env()
        print(f"The local account is at {acct.url}; the drills use it through AWS_ENDPOINT_URL.\n")
        runs = [
            ["--dry-run", "--expect", "dry-run", "--report", str(out_dir / "drill-dry-run.html")],
            ["--expect", "contained", "--report", str(out_dir / "drill.html")],
        ]
        for args in runs:
            cmd = [str(bin_dir / "firebreak"), "drill", str(finding), *args, *sys.argv[1:]]
            print("$ firebreak " + " ".join(cmd[1:]), flush=True)
            rc = subprocess.run(cmd, env=env).returncode
            print()
            if rc != 0:
                return rc
        return 0
    finally:
        acct.stop()


if __name__ == "__main__":
    sys.exit(main())
