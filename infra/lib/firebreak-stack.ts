// The Firebreak stack: one Lambda per runbook crate, every state machine in
// statemachines/, the EventBridge rules that start them, the Security Hub custom action,
// the policy parameter, the audit log group, and the alarms that say when a response
// failed. Everything is derived from the repository's files (see repo.ts).
import * as path from 'node:path';
import {
  Aws,
  CfnOutput,
  Duration,
  RemovalPolicy,
  Stack,
  StackProps,
  Tags,
  Validations,
  aws_cloudwatch as cloudwatch,
  aws_cloudwatch_actions as cwActions,
  aws_dynamodb as dynamodb,
  aws_events as events,
  aws_events_targets as targets,
  aws_iam as iam,
  aws_kms as kms,
  aws_lambda as lambda,
  aws_logs as logs,
  aws_securityhub as securityhub,
  aws_sns as sns,
  aws_sns_subscriptions as subs,
  aws_sqs as sqs,
  aws_ssm as ssm,
  aws_stepfunctions as sfn,
} from 'aws-cdk-lib';
import { Construct } from 'constructs';
import { Repository, RuleFile, Runbook, StateMachineFile, functionSettings, pascal } from './repo';

export interface FirebreakStackProps extends StackProps {
  readonly repo: Repository;
  /** Where `cargo lambda build --lambda-dir` wrote `<runbook>/bootstrap`. */
  readonly lambdaDir: string;
  /** Lowest GuardDuty severity that starts a response (default: the rule files' own). */
  readonly minSeverity?: number;
  /** GuardDuty finding types that start a response; `X*` means "starts with X". */
  readonly findingTypes?: string[];
  /** Every response is a dry run: the suite plans and checks permissions, changes nothing. */
  readonly dryRunOnly?: boolean;
  /** Who is told when a response fails. */
  readonly notificationEmail?: string;
  readonly logRetention?: logs.RetentionDays;
}

/** The custom action's name as analysts see it; Security Hub allows 20 characters. */
export const ACTION_TARGET_NAME = 'Firebreak contain';

/** `first-last` of the policy's NACL rule band (80-99 when the policy names none). */
export function ruleBand(policyJson: string): string {
  const policy = JSON.parse(policyJson) as { ipBlocking?: { ruleNumbers?: { first: number; last: number } } };
  const band = policy.ipBlocking?.ruleNumbers ?? { first: 80, last: 99 };
  return `${band.first}-${band.last}`;
}

/** Replaces `${Partition}`, `${Region}`, `${Account}` in a declared resource ARN. */
export function resolveArn(declared: string): string {
  return declared
    .replaceAll('${Partition}', Aws.PARTITION)
    .replaceAll('${Region}', Aws.REGION)
    .replaceAll('${Account}', Aws.ACCOUNT_ID);
}

/** How cdk-nag writes the same ARN in its finding ids. */
function nagArn(declared: string): string {
  return declared
    .replaceAll('${Partition}', '<AWS::Partition>')
    .replaceAll('${Region}', '<AWS::Region>')
    .replaceAll('${Account}', '<AWS::AccountId>');
}

/** Applies the deployer's GuardDuty type and severity choices to a GuardDuty pattern. */
export function guardDutyPattern(
  pattern: Record<string, unknown>,
  minSeverity?: number,
  findingTypes?: string[],
): Record<string, unknown> {
  const source = pattern.source;
  if (!Array.isArray(source) || !source.includes('aws.guardduty')) return pattern;
  const detail = { ...((pattern.detail as Record<string, unknown>) ?? {}) };
  if (minSeverity !== undefined) detail.severity = [{ numeric: ['>=', minSeverity] }];
  if (findingTypes !== undefined && findingTypes.length > 0) {
    detail.type = findingTypes.map((t) => (t.endsWith('*') ? { prefix: t.slice(0, -1) } : t));
  }
  // An empty `detail` is not a valid pattern: leave it out when nothing filters on it.
  return Object.keys(detail).length > 0 ? { ...pattern, detail } : pattern;
}

export class FirebreakStack extends Stack {
  private readonly repo: Repository;
  readonly functions = new Map<string, lambda.Function>();
  readonly stateMachines = new Map<string, sfn.StateMachine>();
  readonly actionTarget: securityhub.CfnActionTarget;
  readonly alarmTopic: sns.Topic;
  readonly ownersTopic: sns.Topic;
  readonly responseTopic: sns.Topic;
  readonly auditLogGroup: logs.LogGroup;

  constructor(scope: Construct, id: string, props: FirebreakStackProps) {
    super(scope, id, props);
    const repo = props.repo;
    this.repo = repo;
    const retention = props.logRetention ?? logs.RetentionDays.ONE_YEAR;
    Tags.of(this).add('firebreak:suite', 'firebreak');

    this.auditLogGroup = new logs.LogGroup(this, 'AuditTrail', {
      logGroupName: repo.names.auditLogGroup,
      retention,
      removalPolicy: RemovalPolicy.RETAIN,
    });

    // Stored without whitespace: SSM's advanced tier holds 8 KB, which the policy's
    // size check (on this compact form) keeps within.
    const compactPolicy = JSON.stringify(JSON.parse(repo.defaultPolicy));
    const policy = new ssm.StringParameter(this, 'ResponsePolicy', {
      parameterName: repo.names.policyParameter,
      description: 'Firebreak response policy (JSON). Validate edits with `firebreak plan --policy FILE`.',
      stringValue: compactPolicy,
      // The built-in policy is over the 4 KB of the standard tier.
      tier: compactPolicy.length > 4096 ? ssm.ParameterTier.ADVANCED : ssm.ParameterTier.STANDARD,
    });

    // Whose account a finding is in (Organizations, the Account API), for 24 hours: a
    // burst from one account costs one lookup. Triage checks the expiry itself (DynamoDB
    // deletes expired items late).
    const accountCache = new dynamodb.Table(this, 'AccountCache', {
      tableName: repo.names.accountCacheTable,
      partitionKey: { name: 'accountId', type: dynamodb.AttributeType.STRING },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      timeToLiveAttribute: 'expiresAt',
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      removalPolicy: RemovalPolicy.DESTROY,
    });

    // Who is told: the owning teams (unless a policy route names another firebreak-*
    // topic) and the response team. Chat channels subscribe through AWS's own chat
    // integration; email or a queue as you like. The AWS-managed key: the notify role
    // needs no KMS grant to publish.
    const snsKey = kms.Alias.fromAliasName(this, 'SnsManagedKey', 'alias/aws/sns');
    this.ownersTopic = new sns.Topic(this, 'OwnersTopic', {
      topicName: repo.names.ownersTopic,
      displayName: 'Firebreak: what was found and done, for the owning team',
      masterKey: snsKey,
      enforceSSL: true,
    });
    this.responseTopic = new sns.Topic(this, 'ResponseTopic', {
      topicName: repo.names.responseTopic,
      displayName: 'Firebreak: severe findings and responses that need a person',
      masterKey: snsKey,
      enforceSSL: true,
    });
    const environment: Record<string, string> = {
      RUST_LOG: 'info',
      FIREBREAK_OWNERS_TOPIC_ARN: this.ownersTopic.topicArn,
      FIREBREAK_RESPONSE_TOPIC_ARN: this.responseTopic.topicArn,
      FIREBREAK_POLICY_PARAMETER: policy.parameterName,
      FIREBREAK_AUDIT_LOG_GROUP: this.auditLogGroup.logGroupName,
      FIREBREAK_DRY_RUN: props.dryRunOnly ? 'true' : 'false',
      // Firebreak's own account (with AWS_REGION, which Lambda sets): it acts here with its
      // own roles, in the policy's enrolled accounts through their member roles, and holds
      // a finding from anywhere else with the reason.
      FIREBREAK_ACCOUNT_ID: Aws.ACCOUNT_ID,
      FIREBREAK_ACCOUNT_CACHE_TABLE: accountCache.tableName,
      // The band the sweep may act in: ledger tags outside it are never Firebreak's.
      FIREBREAK_BLOCK_RULE_BAND: ruleBand(repo.defaultPolicy),
    };
    const boundary = this.runbookBoundary(repo);
    for (const rb of repo.runbooks) this.functions.set(rb.name, this.runbookFunction(rb, props, retention, environment, boundary));

    // A key CloudWatch may use: alarms cannot publish to a topic under the AWS-managed SNS key.
    const topicKey = new kms.Key(this, 'AlarmTopicKey', {
      description: 'Encrypts the Firebreak alarm topic',
      enableKeyRotation: true,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    topicKey.grant(new iam.ServicePrincipal('cloudwatch.amazonaws.com'), 'kms:Decrypt', 'kms:GenerateDataKey*');
    this.alarmTopic = new sns.Topic(this, 'AlarmTopic', {
      displayName: 'Firebreak: a response failed',
      masterKey: topicKey,
      enforceSSL: true,
    });
    if (props.notificationEmail) this.alarmTopic.addSubscription(new subs.EmailSubscription(props.notificationEmail));

    this.actionTarget = new securityhub.CfnActionTarget(this, 'ContainAction', {
      name: ACTION_TARGET_NAME,
      id: repo.names.actionTargetId,
      description: 'Contain the selected findings with Firebreak',
    });

    this.createStateMachines(repo.stateMachines, retention);

    // A refusal (a full rule band, a service-linked role) leaves a threat live without
    // failing the execution: its own alarm, from the audit record's embedded metric.
    this.auditAlarm(
      'RefusedResponses',
      'A Firebreak response was refused part of its containment (full NACL band, service-linked role, …): the finding is NOTIFIED, read its note and the audit log',
      'Responses',
      { Resolution: 'refused' },
    );
    // Nobody could be told of a response (notify failed after its retries): contained or
    // not, a person must hear of it.
    this.auditAlarm(
      'UntoldResponses',
      'Firebreak could not notify the owning team or the response team of a response: read the audit record (notificationFailure)',
      'NotificationsFailed',
    );
    if (repo.rules.length > 0) this.createRules(repo.rules, props);

    new CfnOutput(this, 'ActionTargetArn', { value: this.actionTarget.attrActionTargetArn });
    new CfnOutput(this, 'AuditLogGroupName', { value: this.auditLogGroup.logGroupName });
    // Started by an operator (`firebreak release`), never by a rule.
    const release = this.stateMachines.get(repo.names.releaseMachine);
    if (release) new CfnOutput(this, 'ReleaseMachineArn', { value: release.stateMachineArn });
    const response = this.stateMachines.get(repo.names.responseMachine);
    if (response) this.approversPolicy();
  }

  /**
   * What `firebreak approve` and `deny` need, for the people who may answer an approval
   * gate (attach it to their role; operators who only start executions do not get it).
   * IAM cannot scope SendTaskSuccess/Failure for a service integration's task token, so
   * they are on `*`; the token itself is only in the response machine's history, which
   * this policy and the operators' may read.
   */
  private approversPolicy(): void {
    const executions = `arn:\${Partition}:states:\${Region}:\${Account}:execution:${this.machineName(this.repo.names.responseMachine)}:*`;
    const policy = new iam.ManagedPolicy(this, 'ApproversPolicy', {
      description: 'Answer Firebreak approval gates: firebreak approve / deny EXECUTION',
      statements: [
        new iam.PolicyStatement({ sid: 'ReadTheGate', actions: ['states:DescribeExecution', 'states:GetExecutionHistory'], resources: [resolveArn(executions)] }),
        new iam.PolicyStatement({ sid: 'AnswerTheGate', actions: ['states:SendTaskSuccess', 'states:SendTaskFailure'], resources: ['*'] }),
      ],
    });
    Validations.of(policy).acknowledge(
      { id: 'AwsSolutions-IAM5[Resource::*]', reason: 'SendTaskSuccess/Failure cannot be scoped to the task token of a service integration' },
      { id: `AwsSolutions-IAM5[Resource::${nagArn(executions)}]`, reason: 'the executions of the response machine, whose names are per run' },
    );
    new CfnOutput(this, 'ApproversPolicyArn', { value: policy.managedPolicyArn });
  }

  /** An alarm to the alarm topic when an audit record's metric counts one in 5 minutes. */
  private auditAlarm(id: string, description: string, metricName: string, dimensionsMap?: Record<string, string>): void {
    const alarm = new cloudwatch.Alarm(this, id, {
      alarmDescription: description,
      metric: new cloudwatch.Metric({
        namespace: this.repo.names.metricNamespace,
        metricName,
        dimensionsMap,
        statistic: 'Sum',
        period: Duration.minutes(5),
      }),
      threshold: 1,
      evaluationPeriods: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    alarm.addAlarmAction(new cwActions.SnsAction(this.alarmTopic));
  }

  private runbookFunction(
    rb: Runbook,
    props: FirebreakStackProps,
    retention: logs.RetentionDays,
    environment: Record<string, string>,
    boundary: iam.ManagedPolicy,
  ): lambda.Function {
    const logGroup = new logs.LogGroup(this, `${rb.pascalName}Logs`, { retention, removalPolicy: RemovalPolicy.DESTROY });
    const role = new iam.Role(this, `${rb.pascalName}Role`, {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: `Firebreak ${rb.name}: exactly what runbooks/${rb.name}/permissions.json declares`,
      // Named: a member account's role trusts exactly this one (aws:PrincipalArn).
      roleName: `${this.stackName}-${rb.name}`,
    });
    role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'WriteOwnLogs',
        actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
        resources: [logGroup.logGroupArn],
      }),
    );
    // IAM itself enforces what the code promises: no runbook may change Firebreak's own
    // roles or the protected principals, whatever its allows say (an allow of
    // iam:PutRolePolicy on role/* could otherwise grant itself anything).
    role.addToPolicy(this.guardrails());
    iam.PermissionsBoundary.of(role).apply(boundary);
    const acknowledged = new Map<string, string>();
    rb.statements.forEach((st, i) => {
      role.addToPolicy(
        new iam.PolicyStatement({
          sid: st.sid ?? `Declared${i}`,
          actions: st.actions,
          resources: st.resources.map(resolveArn),
          conditions: st.conditions,
        }),
      );
      for (const r of st.resources.filter((r) => r.includes('*'))) {
        acknowledged.set(
          `AwsSolutions-IAM5[Resource::${nagArn(r)}]`,
          st.why ?? `${rb.name} acts on whichever resource a finding names, known only at run time; declared in runbooks/${rb.name}/permissions.json (${st.sid ?? i})`,
        );
      }
    });
    if (rb.memberRole) {
      // Into this runbook's role in whichever member account a finding comes from; the
      // member role trusts only this role, from inside the organisation.
      const memberRoles = `arn:\${Partition}:iam::*:role/${this.repo.names.memberRolePrefix}${rb.name}`;
      role.addToPolicy(
        new iam.PolicyStatement({ sid: 'AssumeMemberRole', actions: ['sts:AssumeRole'], resources: [resolveArn(memberRoles)] }),
      );
      acknowledged.set(
        `AwsSolutions-IAM5[Resource::${nagArn(memberRoles)}]`,
        `${rb.name} acts in the account a finding comes from, known only at run time: its member role there (any enrolled account), which trusts only this role`,
      );
    }
    // Active tracing adds xray:PutTraceSegments and PutTelemetryRecords, which IAM
    // cannot scope to a resource.
    const xray = 'X-Ray PutTraceSegments and PutTelemetryRecords support no resource-level permissions';
    const star = acknowledged.get('AwsSolutions-IAM5[Resource::*]');
    acknowledged.set('AwsSolutions-IAM5[Resource::*]', star ? `${star}; ${xray}` : xray);
    Validations.of(role).acknowledge(...[...acknowledged].map(([id, reason]) => ({ id, reason })));

    const fn = new lambda.Function(this, rb.pascalName, {
      description: rb.description.slice(0, 256),
      runtime: lambda.Runtime.PROVIDED_AL2023,
      architecture: lambda.Architecture.ARM_64,
      handler: 'bootstrap',
      code: lambda.Code.fromAsset(path.join(props.lambdaDir, rb.name)),
      role,
      logGroup,
      tracing: lambda.Tracing.ACTIVE,
      memorySize: functionSettings(props.repo.lambda, rb.name).memoryMiB,
      timeout: Duration.seconds(functionSettings(props.repo.lambda, rb.name).timeoutSeconds),
      environment: { ...environment, ...functionSettings(props.repo.lambda, rb.name).environment },
    });
    Tags.of(fn).add('firebreak:runbook', rb.name);
    return fn;
  }

  /** The principals no runbook may change: this stack's roles, service-linked roles and
   * the built-in policy's protected role and user names (at any IAM path). */
  private protectedArns(): string[] {
    const policy = JSON.parse(this.repo.defaultPolicy) as { protectedPrincipals?: { roleNames?: string[]; userNames?: string[] } };
    const iamArn = (kind: string, name: string) => [
      `arn:${Aws.PARTITION}:iam::${Aws.ACCOUNT_ID}:${kind}/${name}`,
      `arn:${Aws.PARTITION}:iam::${Aws.ACCOUNT_ID}:${kind}/*/${name}`,
    ];
    return [
      ...iamArn('role', `${this.stackName}-*`),
      `arn:${Aws.PARTITION}:iam::${Aws.ACCOUNT_ID}:role/aws-service-role/*`,
      ...(policy.protectedPrincipals?.roleNames ?? []).flatMap((n) => iamArn('role', n)),
      ...(policy.protectedPrincipals?.userNames ?? []).flatMap((n) => iamArn('user', n)),
    ];
  }

  /** The explicit deny every runbook role and the boundary carry. */
  private guardrails(): iam.PolicyStatement {
    return new iam.PolicyStatement({
      sid: 'NeverChangeFirebreakOrProtectedPrincipals',
      effect: iam.Effect.DENY,
      actions: this.repo.guardrails.neverChange,
      resources: this.protectedArns(),
    });
  }

  /** The permissions boundary of every runbook role: at most the actions some runbook
   * declares (and its logs and traces), never the guardrails' principals. */
  private runbookBoundary(repo: Repository): iam.ManagedPolicy {
    const declared = [
      ...new Set([
        ...repo.runbooks.flatMap((rb) => rb.statements.flatMap((st) => st.actions)),
        ...(repo.runbooks.some((rb) => rb.memberRole) ? ['sts:AssumeRole'] : []),
      ]),
    ].sort();
    const boundary = new iam.ManagedPolicy(this, 'RunbookBoundary', {
      description: 'Firebreak: the most any runbook role may ever do (the union of the declared actions of runbooks/*/permissions.json)',
      statements: [
        new iam.PolicyStatement({
          sid: 'AtMostTheDeclaredActions',
          actions: [...declared, ...repo.guardrails.boundaryAlso],
          resources: ['*'],
        }),
        this.guardrails(),
      ],
    });
    Validations.of(boundary).acknowledge({
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason: 'a permissions boundary caps actions, not resources: each role\'s own policy scopes the resources, and the boundary denies the protected principals',
    });
    return boundary;
  }

  /** `Firebreak-response`: unique per stack, known before deployment. */
  private machineName(file: string): string {
    return `${this.stackName}-${file}`;
  }

  /** One machine per file. No machine starts another: each triages its own raw input. */
  private createStateMachines(files: StateMachineFile[], retention: logs.RetentionDays): void {
    for (const file of files) this.stateMachines.set(file.name, this.stateMachine(file, retention));
  }

  private stateMachine(file: StateMachineFile, retention: logs.RetentionDays): sfn.StateMachine {
    const substitutions: Record<string, string> = {};
    const invoked: lambda.Function[] = [];
    for (const p of file.placeholders) {
      const fn = [...this.functions.entries()].find(([name]) => `${pascal(name)}FunctionArn` === p)?.[1];
      if (!fn) throw new Error(`${file.file}: \${${p}} names no runbook function in this repository`);
      substitutions[p] = fn.functionArn;
      invoked.push(fn);
    }
    const logGroup = new logs.LogGroup(this, `${file.pascalName}ExecutionLogs`, {
      logGroupName: `/aws/vendedlogs/states/firebreak-${file.name}`,
      retention,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    const machine = new sfn.StateMachine(this, `${file.pascalName}StateMachine`, {
      // A stable name: drills find the machine by it, parents scope their permissions to it.
      stateMachineName: this.machineName(file.name),
      definitionBody: sfn.DefinitionBody.fromString(file.definition),
      definitionSubstitutions: substitutions,
      logs: { destination: logGroup, level: sfn.LogLevel.ALL, includeExecutionData: true },
      tracingEnabled: true,
    });
    for (const fn of invoked) {
      fn.grantInvoke(machine);
      // The function's own resource policy names the machines that invoke it, and no one
      // else: a caller in another account cannot be granted it by an identity policy.
      fn.addPermission(`InvokedBy${file.pascalName}`, { principal: machine.role, action: 'lambda:InvokeFunction' });
    }
    Tags.of(machine).add('firebreak:state-machine', file.name);
    Validations.of(machine).acknowledge(
      {
        id: 'AwsSolutions-IAM5[Resource::*]',
        reason: 'CloudWatch Logs delivery and X-Ray actions used by state-machine logging and tracing support no resource-level permissions',
      },
      ...invoked.map((fn) => ({
        id: `AwsSolutions-IAM5[Resource::<${this.getLogicalId(fn.node.defaultChild as lambda.CfnFunction)}.Arn>:*]`,
        reason: 'lambda:InvokeFunction on the versions and aliases of the runbook functions this machine invokes, and no other',
      })),
    );

    const alarm = new cloudwatch.Alarm(this, `${file.pascalName}FailedExecutions`, {
      alarmDescription: `A Firebreak ${file.name} response failed, timed out or was aborted: read its execution and the audit log`,
      metric: new cloudwatch.MathExpression({
        expression: 'failed + timedOut + aborted',
        usingMetrics: { failed: machine.metricFailed(), timedOut: machine.metricTimedOut(), aborted: machine.metricAborted() },
        period: Duration.minutes(5),
      }),
      threshold: 1,
      evaluationPeriods: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    alarm.addAlarmAction(new cwActions.SnsAction(this.alarmTopic));
    return machine;
  }

  private createRules(rules: RuleFile[], props: FirebreakStackProps): void {
    // Events EventBridge could not deliver wait here; an alarm says so. Nothing is lost silently.
    const deadLetters = new sqs.Queue(this, 'UndeliveredFindings', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    Validations.of(deadLetters).acknowledge({
      id: 'AwsSolutions-SQS3',
      reason: 'this queue is itself the dead-letter queue of the EventBridge targets',
    });
    const undelivered = new cloudwatch.Alarm(this, 'UndeliveredFindingsAlarm', {
      alarmDescription: 'A finding event could not start a Firebreak response: see the UndeliveredFindings queue',
      metric: deadLetters.metricApproximateNumberOfMessagesVisible({ period: Duration.minutes(5) }),
      threshold: 1,
      evaluationPeriods: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    undelivered.addAlarmAction(new cwActions.SnsAction(this.alarmTopic));

    for (const rule of rules) {
      const machine = this.stateMachines.get(rule.stateMachine);
      if (!machine) throw new Error(`${rule.file}: no state machine ${rule.stateMachine}`);
      const start = rule.schedule
        ? { schedule: events.Schedule.expression(rule.schedule) }
        : { eventPattern: this.eventPattern(rule, props) };
      new events.Rule(this, `${pascal(rule.name)}Rule`, {
        description: rule.description.slice(0, 512),
        enabled: rule.enabled,
        ...start,
        targets: [
          new targets.SfnStateMachine(machine, {
            deadLetterQueue: deadLetters,
            retryAttempts: 3,
            maxEventAge: Duration.hours(2),
          }),
        ],
      });
    }
  }

  private eventPattern(rule: RuleFile, props: FirebreakStackProps): events.EventPattern {
    const text = JSON.stringify(rule.eventPattern ?? {}).replaceAll('${SecurityHubActionTargetArn}', '__ACTION_TARGET_ARN__');
    const parsed = JSON.parse(text) as Record<string, unknown>;
    const pattern = guardDutyPattern(parsed, props.minSeverity, props.findingTypes);
    return JSON.parse(JSON.stringify(pattern), (_k, v) =>
      v === '__ACTION_TARGET_ARN__' ? this.actionTarget.attrActionTargetArn : v,
    ) as events.EventPattern;
  }
}
