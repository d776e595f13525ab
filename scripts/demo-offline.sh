#!/usr/bin/env bash
# Offline demo: what Firebreak would do with real findings, no AWS account needed.
# The local-account demo (EventBridge → Step Functions → Lambdas on moto) replaces this
# once the local AWS account lands.
set -euo pipefail
firebreak="$1"
here="$(cd "$(dirname "$0")/.." && pwd)"
samples="${FIREBREAK_SAMPLES_DIR:-$here/tests/fixtures/samples}"

show() {
  echo
  echo "════ $1"
  echo "\$ firebreak plan $2"
  "$firebreak" plan "$2" || true
}

show "An EC2 instance talking to command and control (EventBridge GuardDuty event)" \
  "$here/tests/fixtures/findings/ec2-network-backdoor.json"
show "SSH brute force as Security Hub delivers it after a custom action, two findings" \
  "$here/tests/fixtures/findings/securityhub-custom-action-two-findings.json"
show "Instance credentials used outside AWS" \
  "$here/tests/fixtures/findings/assumed-role-credential-exfiltration.json"
show "An instance its owners tagged firebreak:exempt=true" \
  "$here/tests/fixtures/findings/ec2-exempt-instance.json"
if [ -d "$samples" ]; then
  show "A public GuardDuty sample finding (generated: never acted on)" \
    "$samples/guardduty-detail__Recon_IAMUser_MaliciousIPCaller.Custom__aws-samples-automated-response.json"
  show "A Security Hub insight event: refused, it holds no finding" \
    "$samples/securityhub-custom-action__custodian-event-securityhub-insight-2.json"
fi
