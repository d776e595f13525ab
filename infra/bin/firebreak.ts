#!/usr/bin/env node
// The Firebreak CDK app. Context (cdk.json or -c key=value):
//   lambdaDir          where `cargo lambda build --release --arm64 --lambda-dir` wrote the
//                      runbooks (default ../target/lambda; make package writes it)
//   minSeverity        lowest GuardDuty severity that starts a response (e.g. 7)
//   findingTypes       comma-separated GuardDuty types; `Backdoor:EC2/*` means a prefix
//   dryRunOnly         "true": every response plans and checks permissions, changes nothing
//   notificationEmail  who is told when a response fails
import * as path from 'node:path';
import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { FirebreakStack } from '../lib/firebreak-stack';
import { FirebreakMemberStack } from '../lib/member-stack';
import { discover } from '../lib/repo';

const app = new App();
const ctx = (key: string): string | undefined => {
  const v: unknown = app.node.tryGetContext(key);
  return v === undefined || v === null || v === '' ? undefined : String(v);
};
const root = path.resolve(__dirname, '..', '..');
const minSeverity = ctx('minSeverity');
if (minSeverity !== undefined && !(Number(minSeverity) >= 0 && Number(minSeverity) <= 10)) {
  throw new Error(`minSeverity must be a number from 0 to 10, not ${minSeverity}`);
}
const repo = discover(root);
new FirebreakStack(app, 'Firebreak', {
  description: 'Firebreak: incident-response runbooks for GuardDuty and Security Hub findings',
  repo,
  lambdaDir: path.resolve(ctx('lambdaDir') ?? path.join(root, 'target', 'lambda')),
  minSeverity: minSeverity === undefined ? undefined : Number(minSeverity),
  findingTypes: ctx('findingTypes')?.split(',').map((t) => t.trim()).filter((t) => t.length > 0),
  dryRunOnly: ctx('dryRunOnly') === 'true',
  notificationEmail: ctx('notificationEmail'),
});
// The member accounts' side: `cdk synth FirebreakMember` is the StackSet template
// (parameters SecurityAccountId and OrganizationId).
new FirebreakMemberStack(app, 'FirebreakMember', {
  description: 'Firebreak member roles: what each runbook may do in this account, for the security account only',
  repo,
});
Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
