// The synthesised template, asserted against the repository's own files: functions per
// runbook crate, roles from permissions.json, state machines verbatim from their ASL,
// rules from their pattern files, and cdk-nag with every finding acknowledged.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { App } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import { FirebreakStack, FirebreakStackProps, ACTION_TARGET_NAME } from '../lib/firebreak-stack';
import { FirebreakMemberStack } from '../lib/member-stack';
import { discover, functionSettings, placeholders } from '../lib/repo';

const REPO = path.resolve(__dirname, '..', '..');
const FIXTURE = path.join(__dirname, 'fixtures', 'repo');
const CDK_CONTEXT = (JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'cdk.json'), 'utf8')) as { context: Record<string, unknown> }).context;

/** A stand-in for `cargo lambda build` output: `<runbook>/bootstrap` for each runbook. */
function lambdaDir(names: string[]): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'firebreak-lambda-'));
  for (const n of names) {
    fs.mkdirSync(path.join(dir, n));
    fs.writeFileSync(path.join(dir, n, 'bootstrap'), `#!/bin/sh\n# placeholder for ${n}\n`);
  }
  return dir;
}

function synth(root: string, props: Partial<FirebreakStackProps> = {}) {
  // A test App ignores cdk.json unless its context is loaded into it.
  const app = new App({ context: CDK_CONTEXT });
  const repo = discover(root);
  const stack = new FirebreakStack(app, 'Firebreak', {
    repo,
    lambdaDir: lambdaDir(repo.runbooks.map((r) => r.name)),
    ...props,
  });
  return { app, stack, repo, template: Template.fromStack(stack) };
}

type Resource = { Type: string; Properties: Record<string, any> };
function resources(t: Template, type: string): [string, Resource][] {
  return Object.entries(t.toJSON().Resources as Record<string, Resource>).filter(([, r]) => r.Type === type);
}

/** Crates under runbooks/ in the workspace that build a binary: each one is a Lambda. */
function workspaceRunbookCrates(): string[] {
  const cargo = fs.readFileSync(path.join(REPO, 'Cargo.toml'), 'utf8');
  const members = cargo.match(/members\s*=\s*\[([^\]]*)\]/)?.[1] ?? '';
  return [...members.matchAll(/"runbooks\/([^"]+)"/g)]
    .map((m) => m[1])
    .filter((name) => fs.existsSync(path.join(REPO, 'runbooks', name, 'src', 'main.rs')))
    .sort();
}

function policyActions(t: Template, roleLogicalId: string): string[] {
  const actions = new Set<string>();
  for (const [, p] of resources(t, 'AWS::IAM::Policy')) {
    if (!(p.Properties.Roles as any[]).some((r) => r.Ref === roleLogicalId)) continue;
    // What the role may do: its allows (the guardrails' denies take away, never add).
    for (const s of p.Properties.PolicyDocument.Statement) if (s.Effect === 'Allow') for (const a of [s.Action].flat()) actions.add(a);
  }
  return [...actions].sort();
}

const INFRA_ACTIONS = ['logs:CreateLogStream', 'logs:PutLogEvents', 'xray:PutTelemetryRecords', 'xray:PutTraceSegments'];

for (const [label, root] of [['this repository', REPO], ['the fixture repository', FIXTURE]] as const) {
  test(`${label}: one arm64 provided.al2023 function per runbook, traced, with its own log group`, () => {
    const { template, repo, stack } = synth(root);
    const fns = resources(template, 'AWS::Lambda::Function');
    assert.equal(fns.length, repo.runbooks.length);
    assert.ok(fns.length > 0);
    for (const [, fn] of fns) {
      assert.equal(fn.Properties.Runtime, 'provided.al2023');
      const name = fn.Properties.Tags.find((t: any) => t.Key === 'firebreak:runbook').Value;
      const own = functionSettings(repo.lambda, name);
      assert.equal(fn.Properties.Timeout, own.timeoutSeconds, 'the timeout of lambda.json, which the local host enforces');
      assert.equal(fn.Properties.MemorySize, own.memoryMiB);
      for (const [k, v] of Object.entries(own.environment)) assert.equal(fn.Properties.Environment.Variables[k], v);
      assert.deepEqual(fn.Properties.Architectures, ['arm64']);
      assert.equal(fn.Properties.Handler, 'bootstrap');
      assert.deepEqual(fn.Properties.TracingConfig, { Mode: 'Active' });
      assert.ok(fn.Properties.LoggingConfig.LogGroup, 'function logs to its own group');
      assert.equal(fn.Properties.Environment.Variables.FIREBREAK_POLICY_PARAMETER.Ref !== undefined || typeof fn.Properties.Environment.Variables.FIREBREAK_POLICY_PARAMETER === 'string', true);
      assert.equal(fn.Properties.Environment.Variables.FIREBREAK_DRY_RUN, 'false');
      const band = (JSON.parse(discover(root).defaultPolicy) as any).ipBlocking?.ruleNumbers ?? { first: 80, last: 99 };
      assert.equal(fn.Properties.Environment.Variables.FIREBREAK_BLOCK_RULE_BAND, `${band.first}-${band.last}`);
    }
    for (const rb of repo.runbooks) assert.ok(stack.functions.has(rb.name), rb.name);
  });

  test(`${label}: each role allows exactly the actions its runbook declares`, () => {
    const { template, repo, stack } = synth(root);
    for (const rb of repo.runbooks) {
      const fn = stack.functions.get(rb.name)!;
      const roleId = stack.getLogicalId(fn.role!.node.defaultChild as any);
      // What it declares, plus writing its own logs and traces: nothing else.
      // (And assuming its own member role, when it acts in member accounts.)
      const expected = [...new Set([...rb.statements.flatMap((s) => s.actions), ...INFRA_ACTIONS, ...(rb.memberRole ? ['sts:AssumeRole'] : [])])].sort();
      assert.deepEqual(policyActions(template, roleId), expected, rb.name);
      // The role has no managed policies: nothing beyond the declaration.
      const [, role] = resources(template, 'AWS::IAM::Role').find(([id]) => id === roleId)!;
      assert.equal(role.Properties.ManagedPolicyArns, undefined, rb.name);
    }
  });

  test(`${label}: every log group keeps its logs for a year`, () => {
    const { template } = synth(root);
    const groups = resources(template, 'AWS::Logs::LogGroup');
    assert.ok(groups.length >= 2);
    for (const [id, g] of groups) assert.equal(g.Properties.RetentionInDays, 365, id);
  });

  test(`${label}: cdk-nag AwsSolutions reports nothing unacknowledged`, () => {
    const { app } = synth(root);
    const report = new AwsSolutionsChecks().validateScope(app);
    const open = report.violations.map((v) => `${v.ruleName}: ${v.violatingResources.map((r) => r.constructPath).join(', ')}`);
    assert.deepEqual(open, []);
  });

  test(`${label}: asl-validator accepts every state machine`, () => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const validate = require('asl-validator') as (d: unknown) => { isValid: boolean; errorsText: (s?: string) => string };
    for (const sm of discover(root).stateMachines) {
      // Placeholders become ARNs of the right kind, as CloudFormation will substitute them.
      const text = sm.definition.replace(/\$\{([A-Za-z0-9]+)\}/g, (_m, p: string) => `arn:aws:lambda:us-east-1:111122223333:function:${p}`);
      const result = validate(JSON.parse(text));
      assert.ok(result.isValid, `${sm.file}: ${result.errorsText('\n')}`);
    }
  });
}

test('the fixture: directories without permissions.json are not functions', () => {
  const { repo } = synth(FIXTURE);
  assert.deepEqual(repo.runbooks.map((r) => r.name), ['isolate-instance', 'mark-resolved', 'triage']);
});

test('this repository: every runbook crate of the workspace is deployed, and declares its permissions', () => {
  const crates = workspaceRunbookCrates();
  assert.ok(crates.includes('triage'));
  for (const c of crates) assert.ok(fs.existsSync(path.join(REPO, 'runbooks', c, 'permissions.json')), `runbooks/${c}/permissions.json is missing`);
  assert.deepEqual(discover(REPO).runbooks.map((r) => r.name), crates);
});

for (const root of [REPO, FIXTURE]) test(`${root === REPO ? 'this repository' : 'the fixture'}: state machines are embedded verbatim with substitutions for exactly their placeholders`, () => {
  const { template, repo, stack } = synth(root);
  assert.ok(repo.stateMachines.length > 0);
  const machines = resources(template, 'AWS::StepFunctions::StateMachine');
  assert.equal(machines.length, repo.stateMachines.length);
  for (const sm of repo.stateMachines) {
    const id = stack.getLogicalId(stack.stateMachines.get(sm.name)!.node.defaultChild as any);
    const [, m] = machines.find(([mid]) => mid === id)!;
    assert.equal(m.Properties.DefinitionString, fs.readFileSync(sm.file, 'utf8'), sm.name);
    assert.deepEqual(Object.keys(m.Properties.DefinitionSubstitutions).sort(), placeholders(sm.definition), sm.name);
    for (const [key, value] of Object.entries(m.Properties.DefinitionSubstitutions as Record<string, any>)) {
      const fnName = repo.runbooks.find((r) => `${r.pascalName}FunctionArn` === key)!.name;
      const fnId = stack.getLogicalId(stack.functions.get(fnName)!.node.defaultChild as any);
      assert.deepEqual(value, { 'Fn::GetAtt': [fnId, 'Arn'] }, `${sm.name} ${key}`);
    }
    // No machine starts another: each triages its own raw input.
    assert.ok(!sm.definition.includes('arn:aws:states:::states:startExecution'), `${sm.name} starts a child machine`);
    assert.equal(m.Properties.LoggingConfiguration.Level, 'ALL');
    assert.equal(m.Properties.LoggingConfiguration.IncludeExecutionData, true);
    assert.deepEqual(m.Properties.TracingConfiguration, { Enabled: true });
  }
});

test("a state machine's role may invoke only its own functions, and each function's resource policy names only those machines", () => {
  const { template, stack } = synth(FIXTURE);
  const roleOf = (name: string) => stack.getLogicalId(stack.stateMachines.get(name)!.role.node.defaultChild as any);
  const fnId = (name: string) => stack.getLogicalId(stack.functions.get(name)!.node.defaultChild as any);
  const invokeTargets = (roleId: string) => {
    const ids = new Set<string>();
    for (const [, p] of resources(template, 'AWS::IAM::Policy')) {
      if (!(p.Properties.Roles as any[]).some((r) => r.Ref === roleId)) continue;
      for (const s of p.Properties.PolicyDocument.Statement) {
        if (![s.Action].flat().includes('lambda:InvokeFunction')) continue;
        for (const r of [s.Resource].flat()) ids.add(JSON.stringify(r).match(/"(\w+)","Arn"/)?.[1] ?? JSON.stringify(r));
      }
    }
    return [...ids].sort();
  };
  assert.deepEqual(invokeTargets(roleOf('response')), [fnId('isolate-instance'), fnId('mark-resolved'), fnId('triage')].sort());
  assert.deepEqual(invokeTargets(roleOf('close-only')), [fnId('mark-resolved')]);
  for (const name of ['response', 'close-only']) {
    assert.ok(!policyActions(template, roleOf(name)).some((a) => a.startsWith('states:')), `${name} may start no machine`);
  }
  const invokers = (fn: string) =>
    resources(template, 'AWS::Lambda::Permission')
      .filter(([, p]) => JSON.stringify(p.Properties.FunctionName).includes(fnId(fn)))
      .map(([, p]) => JSON.stringify(p.Properties.Principal).match(/"(\w+)","Arn"/)?.[1])
      .sort();
  assert.deepEqual(invokers('mark-resolved'), [roleOf('close-only'), roleOf('response')].sort());
  assert.deepEqual(invokers('isolate-instance'), [roleOf('response')]);
  assert.deepEqual(invokers('triage'), [roleOf('response')]);
});

test('the release machine: no rule starts it, it invokes only triage, isolate-instance, block-remote-ip, revoke-role-sessions and audit-log, and its ARN is an output', () => {
  const { template, stack, repo } = synth(REPO);
  const machine = stack.stateMachines.get(repo.names.releaseMachine)!;
  const machineId = stack.getLogicalId(machine.node.defaultChild as any);
  for (const [, rule] of resources(template, 'AWS::Events::Rule')) {
    assert.ok(!JSON.stringify(rule.Properties.Targets ?? []).includes(machineId), 'an operator starts a release, never an event');
  }
  const roleId = stack.getLogicalId(machine.role.node.defaultChild as any);
  const invoked = new Set<string>();
  for (const [, p] of resources(template, 'AWS::IAM::Policy')) {
    if (!(p.Properties.Roles as any[]).some((r) => r.Ref === roleId)) continue;
    for (const st of p.Properties.PolicyDocument.Statement) {
      if (![st.Action].flat().includes('lambda:InvokeFunction')) continue;
      for (const r of [st.Resource].flat()) invoked.add(JSON.stringify(r).match(/"(\w+)","Arn"/)?.[1] ?? '');
    }
  }
  const fnId = (name: string) => stack.getLogicalId(stack.functions.get(name)!.node.defaultChild as any);
  assert.deepEqual([...invoked].sort(), ['audit-log', 'block-remote-ip', 'isolate-instance', 'mark-resolved', 'revoke-role-sessions', 'ticket', 'triage'].map(fnId).sort());
  assert.ok(template.toJSON().Outputs.ReleaseMachineArn, 'the ARN an operator starts');
});

test('approvers get a policy of their own: read the response executions, answer task tokens, nothing else', () => {
  const { template } = synth(REPO);
  const policies = template.findResources('AWS::IAM::ManagedPolicy', { Properties: { Description: Match.stringLikeRegexp('approval gates') } });
  const [policy] = Object.values(policies) as any[];
  assert.ok(policy, 'an ApproversPolicy');
  const statements = policy.Properties.PolicyDocument.Statement;
  assert.deepEqual(statements.map((s: any) => [s.Sid, [s.Action].flat().sort()]), [
    ['ReadTheGate', ['states:DescribeExecution', 'states:GetExecutionHistory']],
    ['AnswerTheGate', ['states:SendTaskFailure', 'states:SendTaskSuccess']],
  ]);
  assert.match(JSON.stringify(statements[0].Resource), /:execution:Firebreak-response:\*/);
  assert.ok(template.toJSON().Outputs.ApproversPolicyArn);
});

test('a placeholder with no function behind it fails the synth, naming file and placeholder', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'firebreak-repo-'));
  fs.cpSync(FIXTURE, tmp, { recursive: true });
  const file = path.join(tmp, 'statemachines', 'response.asl.json');
  fs.writeFileSync(file, fs.readFileSync(file, 'utf8').replace('${MarkResolvedFunctionArn}', '${MarkResolvedTwiceFunctionArn}'));
  assert.throws(() => synth(tmp), /response\.asl\.json: \$\{MarkResolvedTwiceFunctionArn\} names no runbook function/);
});

for (const root of [REPO, FIXTURE]) test(`${root === REPO ? 'this repository' : 'the fixture'}: rule patterns equal their files; the custom action gets the action target ARN`, () => {
  const { template, repo, stack } = synth(root);
  assert.ok(repo.rules.length > 0);
  const rules = resources(template, 'AWS::Events::Rule');
  assert.equal(rules.length, repo.rules.length);
  const actionId = stack.getLogicalId(stack.actionTarget);
  for (const rule of repo.rules) {
    let found;
    if (rule.schedule) {
      found = rules.filter(([, r]) => r.Properties.ScheduleExpression === rule.schedule);
      assert.equal(found.length, 1, `${rule.name}: ${rule.schedule}`);
      assert.equal(found[0][1].Properties.EventPattern, undefined);
    } else {
      const expected = JSON.parse(
        JSON.stringify(rule.eventPattern).replaceAll('"${SecurityHubActionTargetArn}"', JSON.stringify({ 'Fn::GetAtt': [actionId, 'ActionTargetArn'] })),
      );
      found = rules.filter(([, r]) => JSON.stringify(r.Properties.EventPattern) === JSON.stringify(expected));
      assert.equal(found.length, 1, `${rule.name}: ${JSON.stringify(expected)}`);
    }
    const [, r] = found[0];
    assert.equal(r.Properties.State, rule.enabled ? 'ENABLED' : 'DISABLED', rule.name);
    const target = r.Properties.Targets[0];
    const machineId = stack.getLogicalId(stack.stateMachines.get(rule.stateMachine)!.node.defaultChild as any);
    assert.deepEqual(target.Arn, { Ref: machineId }, rule.name);
    assert.ok(target.DeadLetterConfig.Arn, `${rule.name} has a dead-letter queue`);
    assert.deepEqual(target.RetryPolicy, { MaximumEventAgeInSeconds: 7200, MaximumRetryAttempts: 3 });
  }
});

test('the deployer chooses GuardDuty types and minimum severity', () => {
  const { template } = synth(FIXTURE, { minSeverity: 7, findingTypes: ['Backdoor:EC2/*', 'UnauthorizedAccess:EC2/SSHBruteForce'] });
  const gd = resources(template, 'AWS::Events::Rule').find(([, r]) => r.Properties.EventPattern.source?.[0] === 'aws.guardduty')!;
  assert.deepEqual(gd[1].Properties.EventPattern.detail, {
    type: [{ prefix: 'Backdoor:EC2/' }, 'UnauthorizedAccess:EC2/SSHBruteForce'],
    severity: [{ numeric: ['>=', 7] }],
  });
  // The Security Hub patterns are left as they are.
  const hub = resources(template, 'AWS::Events::Rule').filter(([, r]) => r.Properties.EventPattern.source?.[0] === 'aws.securityhub');
  assert.ok(hub.every(([, r]) => r.Properties.EventPattern.detail === undefined));
});

test('an alarm per state machine, one for undelivered events, one for refused responses and one for untold ones, all to the alarm topic', () => {
  const { template, repo, stack } = synth(FIXTURE);
  const topicId = stack.getLogicalId(stack.alarmTopic.node.defaultChild as any);
  const alarms = resources(template, 'AWS::CloudWatch::Alarm');
  assert.equal(alarms.length, repo.stateMachines.length + 3);
  for (const [id, a] of alarms) {
    assert.deepEqual(a.Properties.AlarmActions, [{ Ref: topicId }], id);
    assert.equal(a.Properties.Threshold, 1);
  }
  const failed = alarms.filter(([, a]) => (a.Properties.Metrics ?? []).some((m: any) => m.Expression === 'failed + timedOut + aborted'));
  assert.equal(failed.length, repo.stateMachines.length);
  const [, topic] = resources(template, 'AWS::SNS::Topic')[0];
  assert.ok(topic.Properties.KmsMasterKeyId, 'the topic is encrypted with a key CloudWatch may use');
});

test('mark-resolved may wait minutes for its finding: a timeout of its own, longer than its wait', () => {
  const { template, repo } = synth(REPO);
  const own = functionSettings(repo.lambda, 'mark-resolved');
  assert.ok(own.timeoutSeconds > Number(own.environment.FIREBREAK_FINDING_WAIT_SECONDS), 'the wait fits in the timeout');
  const fn = resources(template, 'AWS::Lambda::Function').find(([, f]) => f.Properties.Tags.some((t: any) => t.Value === 'mark-resolved'))!;
  assert.equal(fn[1].Properties.Timeout, own.timeoutSeconds);
});

test('a refused response raises an alarm of its own, from the audit metric', () => {
  const { template, repo } = synth(REPO);
  const alarm = resources(template, 'AWS::CloudWatch::Alarm').find(([id]) => id.startsWith('RefusedResponses'));
  assert.ok(alarm, 'the refused-responses alarm');
  const p = alarm![1].Properties;
  assert.equal(p.Namespace, repo.names.metricNamespace);
  assert.equal(p.MetricName, 'Responses');
  assert.deepEqual(p.Dimensions, [{ Name: 'Resolution', Value: 'refused' }]);
  assert.equal(p.AlarmActions.length, 1);
});

test('a response nobody could be told of raises an alarm, from the audit metric without dimensions', () => {
  const { template, repo } = synth(REPO);
  const alarm = resources(template, 'AWS::CloudWatch::Alarm').find(([id]) => id.startsWith('UntoldResponses'));
  assert.ok(alarm, 'the untold-responses alarm');
  const p = alarm![1].Properties;
  assert.equal(p.Namespace, repo.names.metricNamespace);
  assert.equal(p.MetricName, 'NotificationsFailed');
  assert.equal(p.Dimensions, undefined);
  assert.equal(p.AlarmActions.length, 1);
});

test('IAM enforces the guardrails: no runbook may change Firebreak or protected principals; a boundary on every role; group rules only on Firebreak groups', () => {
  const { template, stack } = synth(REPO);
  const roles = [...stack.functions.values()].map((fn) => stack.getLogicalId(fn.role!.node.defaultChild as any));
  const boundaries = resources(template, 'AWS::IAM::ManagedPolicy').filter(([id]) => id.startsWith('RunbookBoundary'));
  assert.equal(boundaries.length, 1);
  const boundaryId = boundaries[0][0];
  for (const [id, r] of resources(template, 'AWS::IAM::Role').filter(([id]) => roles.includes(id))) {
    assert.deepEqual(r.Properties.PermissionsBoundary, { Ref: boundaryId }, id);
  }
  const revokeRole = stack.getLogicalId(stack.functions.get('revoke-role-sessions')!.role!.node.defaultChild as any);
  const statements = resources(template, 'AWS::IAM::Policy')
    .filter(([, p]) => (p.Properties.Roles as any[]).some((r) => r.Ref === revokeRole))
    .flatMap(([, p]) => p.Properties.PolicyDocument.Statement as any[]);
  const deny = statements.find((st) => st.Effect === 'Deny');
  assert.ok(deny, 'an explicit deny');
  const guardrails = JSON.parse(fs.readFileSync(path.join(REPO, 'runbooks', 'firebreak', 'guardrails.json'), 'utf8'));
  assert.deepEqual([deny.Action].flat(), guardrails.neverChange, 'the actions of guardrails.json, which the local account denies too');
  assert.ok([deny.Action].flat().includes('iam:PutRolePolicy'));
  const denied = JSON.stringify(deny.Resource);
  for (const name of ['role/Firebreak-*', 'role/*/Firebreak-*', 'role/aws-service-role/*', 'role/BreakGlass*', 'role/OrganizationAccountAccessRole', 'user/break-glass*']) {
    assert.ok(denied.includes(name), `${name} is denied: ${denied}`);
  }
  const isolateRole = stack.getLogicalId(stack.functions.get('isolate-instance')!.role!.node.defaultChild as any);
  const rules = resources(template, 'AWS::IAM::Policy')
    .filter(([, p]) => (p.Properties.Roles as any[]).some((r) => r.Ref === isolateRole))
    .flatMap(([, p]) => p.Properties.PolicyDocument.Statement as any[])
    .filter((st) => [st.Action].flat().some((a: string) => a.includes('SecurityGroupIngress') || a.includes('SecurityGroupEgress')));
  assert.ok(rules.length > 0);
  for (const st of rules) {
    assert.deepEqual(st.Condition, { StringEquals: { 'aws:ResourceTag/firebreak:group': ['allow-all', 'isolation'] } });
  }
});

test('the Security Hub action target, the policy parameter and the audit log group, named from names.json', () => {
  const { template, repo } = synth(REPO);
  const [, target] = resources(template, 'AWS::SecurityHub::ActionTarget')[0];
  assert.equal(target.Properties.Name, ACTION_TARGET_NAME);
  assert.ok(target.Properties.Name.length <= 20);
  assert.equal(target.Properties.Id, repo.names.actionTargetId);
  const [, param] = resources(template, 'AWS::SSM::Parameter')[0];
  assert.equal(param.Properties.Value, JSON.stringify(JSON.parse(repo.defaultPolicy)));
  assert.equal(param.Properties.Name, repo.names.policyParameter);
  assert.equal(param.Properties.Tier, repo.defaultPolicy.length > 4096 ? 'Advanced' : 'Standard');
  const audit = resources(template, 'AWS::Logs::LogGroup').filter(([, g]) => g.Properties.LogGroupName === repo.names.auditLogGroup);
  assert.equal(audit.length, 1);
});

test('the owners and response topics, named from names.json, encrypted, TLS only; every function knows their ARNs; notify may publish only to firebreak-* topics', () => {
  const { template, repo } = synth(REPO);
  const topics = resources(template, 'AWS::SNS::Topic').filter(([, t]) => t.Properties.TopicName);
  assert.deepEqual(topics.map(([, t]) => t.Properties.TopicName).sort(), [repo.names.ownersTopic, repo.names.responseTopic]);
  for (const [, t] of topics) assert.ok(t.Properties.KmsMasterKeyId, 'encrypted');
  const policies = resources(template, 'AWS::SNS::TopicPolicy');
  assert.ok(policies.length >= 2, 'enforceSSL adds a topic policy');
  const notify = resources(template, 'AWS::Lambda::Function').find(([, f]) => JSON.stringify(f.Properties.Environment).includes('FIREBREAK_OWNERS_TOPIC_ARN'));
  assert.ok(notify, 'the topic ARNs are in the functions\' environment');
  const grants = [...resources(template, 'AWS::IAM::Role'), ...resources(template, 'AWS::IAM::Policy')].filter(([, r]) => JSON.stringify(r).includes('sns:Publish'));
  assert.equal(grants.length, 1, 'only notify publishes');
  assert.match(JSON.stringify(grants[0][1]), /firebreak-\*/);
});

test('dry-run-only and notification e-mail', () => {
  const { template } = synth(REPO, { dryRunOnly: true, notificationEmail: 'secops@example.com' });
  for (const [, fn] of resources(template, 'AWS::Lambda::Function')) {
    assert.equal(fn.Properties.Environment.Variables.FIREBREAK_DRY_RUN, 'true');
  }
  const subs = resources(template, 'AWS::SNS::Subscription');
  assert.equal(subs.length, 1);
  assert.equal(subs[0][1].Properties.Endpoint, 'secops@example.com');
});

test('bad permission files are refused with the file named', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'firebreak-repo-'));
  fs.cpSync(FIXTURE, tmp, { recursive: true });
  const file = path.join(tmp, 'runbooks', 'mark-resolved', 'permissions.json');
  fs.writeFileSync(file, JSON.stringify({ statements: [{ actions: ['securityhub:*'], resources: ['*'] }] }));
  assert.throws(() => discover(tmp), /mark-resolved\/permissions\.json: statements\[0\]: a "\*" resource needs a "why"/);
  fs.writeFileSync(file, JSON.stringify({ statements: [{ actions: ['BatchUpdateFindings'], resources: ['x'] }] }));
  assert.throws(() => discover(tmp), /is not service:Action/);
});

test('a rule file gives exactly one of eventPattern and schedule', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'firebreak-repo-'));
  fs.cpSync(FIXTURE, tmp, { recursive: true });
  const rulesDir = path.join(tmp, 'statemachines', 'rules');
  const file = path.join(rulesDir, fs.readdirSync(rulesDir)[0]);
  const rule = JSON.parse(fs.readFileSync(file, 'utf8'));
  fs.writeFileSync(file, JSON.stringify({ ...rule, schedule: 'rate(1 hour)' }));
  assert.throws(() => discover(tmp), /give exactly one of eventPattern and schedule/);
  const { eventPattern: _dropped, ...scheduled } = rule;
  fs.writeFileSync(file, JSON.stringify({ ...scheduled, schedule: 'every hour' }));
  assert.throws(() => discover(tmp), /schedule must be rate\(\.\.\.\) or cron\(\.\.\.\)/);
  fs.writeFileSync(file, JSON.stringify({ ...scheduled, schedule: 'rate(1 hour)' }));
  assert.equal(discover(tmp).rules.find((r) => r.schedule)?.schedule, 'rate(1 hour)');
});

function synthMember(root: string) {
  const app = new App({ context: CDK_CONTEXT });
  const repo = discover(root);
  const stack = new FirebreakMemberStack(app, 'FirebreakMember', { repo });
  return { app, stack, repo, template: Template.fromStack(stack) };
}

test('the member stack: one role per runbook that acts in member accounts, with its declared actions only (never the security-account-only ones)', () => {
  const { template, repo } = synthMember(REPO);
  const member = repo.runbooks.filter((rb) => rb.memberRole).map((rb) => rb.name).sort();
  assert.deepEqual(member, ['block-remote-ip', 'contain-s3', 'isolate-instance', 'revoke-role-sessions', 'throttle-function', 'triage']);
  const roles = resources(template, 'AWS::IAM::Role');
  assert.deepEqual(roles.map(([, r]) => r.Properties.RoleName).sort(), member.map((n) => `${repo.names.memberRolePrefix}${n}`));
  // Nothing else in a member account: the roles and their policies.
  const types = new Set(Object.values(template.toJSON().Resources as Record<string, Resource>).map((r) => r.Type));
  assert.deepEqual([...types].sort(), ['AWS::IAM::Policy', 'AWS::IAM::Role']);
  for (const [id, role] of roles) {
    const name = (role.Properties.RoleName as string).slice(repo.names.memberRolePrefix.length);
    const rb = repo.runbooks.find((r) => r.name === name)!;
    const expected = [...new Set(rb.statements.filter((s) => !s.securityAccountOnly).flatMap((s) => s.actions))].sort();
    assert.deepEqual(policyActions(template, id), expected, name);
    assert.equal(role.Properties.ManagedPolicyArns, undefined, name);
    const denies = resources(template, 'AWS::IAM::Policy')
      .filter(([, p]) => (p.Properties.Roles as any[]).some((r) => r.Ref === id))
      .flatMap(([, p]) => p.Properties.PolicyDocument.Statement)
      .filter((s: any) => s.Effect === 'Deny');
    assert.equal(denies.length, 1, `${name}: the guardrail`);
  }
  assert.ok(!policyActions(template, roles.find(([, r]) => r.Properties.RoleName.endsWith('triage'))![0]).includes('ssm:GetParameter'));
});

test("the member stack: each role is trusted only by its runbook's role in the security account, from inside the organisation", () => {
  const { template, repo } = synthMember(REPO);
  const params = template.toJSON().Parameters as Record<string, any>;
  assert.equal(params.SecurityAccountId.AllowedPattern, '^\\d{12}$');
  assert.equal(params.OrganizationId.AllowedPattern, '^o-[a-z0-9]{10,32}$');
  for (const [, role] of resources(template, 'AWS::IAM::Role')) {
    const name = (role.Properties.RoleName as string).slice(repo.names.memberRolePrefix.length);
    const statements = role.Properties.AssumeRolePolicyDocument.Statement;
    assert.equal(statements.length, 1, name);
    const [st] = statements;
    assert.equal(st.Effect, 'Allow');
    assert.equal(st.Action, 'sts:AssumeRole');
    assert.match(JSON.stringify(st.Principal), /SecurityAccountId/);
    assert.deepEqual(st.Condition.StringEquals, { 'aws:PrincipalOrgID': { Ref: 'OrganizationId' } });
    const arn = JSON.stringify(st.Condition.ArnEquals['aws:PrincipalArn']);
    assert.match(arn, /SecurityAccountId/);
    assert.ok(arn.includes(`:role/${repo.names.stack}-${name}`), arn);
  }
});

test('the member stack: cdk-nag AwsSolutions reports nothing unacknowledged', () => {
  const { app } = synthMember(REPO);
  const report = new AwsSolutionsChecks().validateScope(app);
  const open = report.violations.map((v) => `${v.ruleName}: ${v.violatingResources.map((r) => r.constructPath).join(', ')}`);
  assert.deepEqual(open, []);
});

test('the security stack: each runbook role is named for the member trust, and those that act in members may assume only their own member role', () => {
  const { template, repo, stack } = synth(REPO);
  for (const rb of repo.runbooks) {
    const fn = stack.functions.get(rb.name)!;
    const roleId = stack.getLogicalId(fn.role!.node.defaultChild as any);
    const [, role] = resources(template, 'AWS::IAM::Role').find(([id]) => id === roleId)!;
    assert.equal(role.Properties.RoleName, `Firebreak-${rb.name}`);
    const assume = resources(template, 'AWS::IAM::Policy')
      .filter(([, p]) => (p.Properties.Roles as any[]).some((r) => r.Ref === roleId))
      .flatMap(([, p]) => p.Properties.PolicyDocument.Statement)
      .filter((s: any) => s.Action === 'sts:AssumeRole');
    if (!rb.memberRole) {
      assert.deepEqual(assume, [], rb.name);
      continue;
    }
    assert.equal(assume.length, 1, rb.name);
    assert.ok(JSON.stringify(assume[0].Resource).includes(`:iam::*:role/${repo.names.memberRolePrefix}${rb.name}`), JSON.stringify(assume[0].Resource));
  }
});

test('the account cache: a DynamoDB table with a TTL attribute and point-in-time recovery, named from names.json, that triage alone may read and write', () => {
  const { template, repo, stack } = synth(REPO);
  const tables = resources(template, 'AWS::DynamoDB::Table');
  assert.equal(tables.length, 1);
  const [id, table] = tables[0];
  assert.equal(table.Properties.TableName, repo.names.accountCacheTable);
  assert.deepEqual(table.Properties.TimeToLiveSpecification, { AttributeName: 'expiresAt', Enabled: true });
  assert.deepEqual(table.Properties.KeySchema, [{ AttributeName: 'accountId', KeyType: 'HASH' }]);
  assert.equal(table.Properties.PointInTimeRecoverySpecification.PointInTimeRecoveryEnabled, true);
  for (const rb of repo.runbooks) {
    const fn = stack.functions.get(rb.name)!;
    const fnId = stack.getLogicalId(fn.node.defaultChild as any);
    const [, f] = resources(template, 'AWS::Lambda::Function').find(([i]) => i === fnId)!;
    assert.deepEqual(f.Properties.Environment.Variables.FIREBREAK_ACCOUNT_CACHE_TABLE, { Ref: id }, rb.name);
    const roleId = stack.getLogicalId(fn.role!.node.defaultChild as any);
    const dynamo = policyActions(template, roleId).filter((a) => a.startsWith('dynamodb:'));
    assert.deepEqual(dynamo, rb.name === 'triage' ? ['dynamodb:GetItem', 'dynamodb:PutItem'] : [], rb.name);
  }
});
