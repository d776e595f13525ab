// What the repository holds, discovered from its files: the runbooks (a crate under
// runbooks/ with a permissions.json beside its code), the state machines
// (statemachines/*.asl.json) and the EventBridge rules that start them
// (statemachines/rules/*.json). Nothing here is listed by hand a second time.
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface PermissionStatement {
  readonly sid?: string;
  readonly actions: string[];
  readonly resources: string[];
  readonly conditions?: Record<string, Record<string, string | string[]>>;
  readonly why?: string;
  /** Only in Firebreak's own account (triage's policy parameter): not in the member role. */
  readonly securityAccountOnly?: boolean;
}

export interface Runbook {
  /** The crate's directory name, which is also its binary name: `isolate-instance`. */
  readonly name: string;
  /** `IsolateInstance`: the ASL placeholder is `${IsolateInstanceFunctionArn}`. */
  readonly pascalName: string;
  readonly description: string;
  readonly statements: PermissionStatement[];
  /** It acts in a finding's own account: a member role there (the member stack), which
   * its role in the security account may assume. */
  readonly memberRole: boolean;
}

export interface StateMachineFile {
  readonly name: string;
  readonly pascalName: string;
  readonly file: string;
  /** The ASL text exactly as in the file. */
  readonly definition: string;
  /** Every `${Name}` the definition uses. */
  readonly placeholders: string[];
}

export interface RuleFile {
  readonly name: string;
  readonly file: string;
  readonly description: string;
  /** The state machine the rule starts. */
  readonly stateMachine: string;
  readonly enabled: boolean;
  /** Exactly one of the two: the events that start the machine, or a schedule. */
  readonly eventPattern?: Record<string, unknown>;
  /** `rate(1 hour)` or `cron(...)`, as EventBridge writes it. */
  readonly schedule?: string;
}

export interface Repository {
  readonly root: string;
  readonly runbooks: Runbook[];
  readonly stateMachines: StateMachineFile[];
  readonly rules: RuleFile[];
  /** The built-in response policy, deployed as the policy parameter's first value. */
  readonly defaultPolicy: string;
  /** The names every part agrees on, from their one home: runbooks/firebreak/names.json. */
  readonly names: Names;
  /** How every function runs: runbooks/firebreak/lambda.json, which the local account enforces too. */
  readonly lambda: LambdaSettings;
  /** What no runbook may do to Firebreak or the protected principals: runbooks/firebreak/guardrails.json, which the local account enforces too. */
  readonly guardrails: Guardrails;
}

export interface Guardrails {
  /** Denied on Firebreak's roles, service-linked roles and the protected principals. */
  readonly neverChange: string[];
  /** Beyond the declared actions, what the permissions boundary also allows (logs, traces). */
  readonly boundaryAlso: string[];
}

export interface LambdaSettings {
  readonly timeoutSeconds: number;
  readonly memoryMiB: number;
  /** Overrides for one runbook: its timeout, memory, extra environment. */
  readonly functions?: Record<string, { timeoutSeconds?: number; memoryMiB?: number; environment?: Record<string, string> }>;
}

/** One runbook's settings: the defaults of lambda.json with its own overrides. */
export function functionSettings(settings: LambdaSettings, name: string) {
  const own = settings.functions?.[name] ?? {};
  return {
    timeoutSeconds: own.timeoutSeconds ?? settings.timeoutSeconds,
    memoryMiB: own.memoryMiB ?? settings.memoryMiB,
    environment: own.environment ?? {},
  };
}

export interface Names {
  readonly stack: string;
  readonly auditLogGroup: string;
  readonly policyParameter: string;
  readonly actionTargetId: string;
  readonly responseMachine: string;
  readonly sweepMachine: string;
  readonly releaseMachine: string;
  readonly metricNamespace: string;
  /** A member account's role for a runbook: this and the runbook's name. */
  readonly memberRolePrefix: string;
  /** The DynamoDB table caching whose account a finding is in. */
  readonly accountCacheTable: string;
  /** The owning teams' SNS topic (when no policy route names another) and the response team's. */
  readonly ownersTopic: string;
  readonly responseTopic: string;
}

export function pascal(name: string): string {
  return name
    .split(/[-_]/)
    .filter((w) => w.length > 0)
    .map((w) => w[0].toUpperCase() + w.slice(1))
    .join('');
}

export function placeholders(text: string): string[] {
  const found = new Set<string>();
  for (const m of text.matchAll(/\$\{([A-Za-z0-9]+)\}/g)) found.add(m[1]);
  return [...found].sort();
}

function readJson(file: string): unknown {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new Error(`${file}: ${(e as Error).message}`);
  }
}

function fail(file: string, why: string): never {
  throw new Error(`${file}: ${why}`);
}

const ACTION = /^[a-z0-9-]+:[A-Za-z0-9*]+$/;

function parsePermissions(file: string): { description: string; statements: PermissionStatement[]; memberRole: boolean } {
  const doc = readJson(file) as { description?: unknown; statements?: unknown; memberRole?: unknown };
  if (doc.memberRole !== undefined && typeof doc.memberRole !== 'boolean') fail(file, 'memberRole must be true or false');
  if (!Array.isArray(doc.statements) || doc.statements.length === 0) fail(file, 'statements must be a non-empty array');
  const statements = doc.statements.map((s: unknown, i: number): PermissionStatement => {
    const st = s as PermissionStatement;
    if (!Array.isArray(st.actions) || st.actions.length === 0) fail(file, `statements[${i}].actions must be a non-empty array`);
    for (const a of st.actions) if (typeof a !== 'string' || !ACTION.test(a)) fail(file, `statements[${i}].actions: ${JSON.stringify(a)} is not service:Action`);
    if (!Array.isArray(st.resources) || st.resources.length === 0) fail(file, `statements[${i}].resources must be a non-empty array`);
    if (st.resources.includes('*') && !st.why) fail(file, `statements[${i}]: a "*" resource needs a "why"`);
    return st;
  });
  return { description: typeof doc.description === 'string' ? doc.description : '', statements, memberRole: doc.memberRole === true };
}

export function discover(root: string): Repository {
  const runbooksDir = path.join(root, 'runbooks');
  const runbooks: Runbook[] = fs
    .readdirSync(runbooksDir, { withFileTypes: true })
    .filter((d) => d.isDirectory() && fs.existsSync(path.join(runbooksDir, d.name, 'permissions.json')))
    .map((d) => d.name)
    .sort()
    .map((name) => ({ name, pascalName: pascal(name), ...parsePermissions(path.join(runbooksDir, name, 'permissions.json')) }));

  const smDir = path.join(root, 'statemachines');
  const stateMachines: StateMachineFile[] = fs.existsSync(smDir)
    ? fs
        .readdirSync(smDir)
        .filter((f) => f.endsWith('.asl.json'))
        .sort()
        .map((f) => {
          const file = path.join(smDir, f);
          const definition = fs.readFileSync(file, 'utf8');
          readJson(file);
          const name = f.slice(0, -'.asl.json'.length);
          return { name, pascalName: pascal(name), file, definition, placeholders: placeholders(definition) };
        })
    : [];

  const rulesDir = path.join(smDir, 'rules');
  const rules: RuleFile[] = fs.existsSync(rulesDir)
    ? fs
        .readdirSync(rulesDir)
        .filter((f) => f.endsWith('.json'))
        .sort()
        .map((f) => {
          const file = path.join(rulesDir, f);
          const doc = readJson(file) as Partial<RuleFile>;
          if (typeof doc.stateMachine !== 'string') fail(file, 'stateMachine must name a state machine file');
          if (!stateMachines.some((s) => s.name === doc.stateMachine)) fail(file, `no statemachines/${doc.stateMachine}.asl.json`);
          const hasPattern = doc.eventPattern !== undefined;
          const hasSchedule = doc.schedule !== undefined;
          if (hasPattern === hasSchedule) fail(file, 'give exactly one of eventPattern and schedule');
          if (hasPattern && (typeof doc.eventPattern !== 'object' || doc.eventPattern === null)) {
            fail(file, 'eventPattern must be an object');
          }
          if (hasSchedule && (typeof doc.schedule !== 'string' || !/^(rate|cron)\(.+\)$/.test(doc.schedule))) {
            fail(file, 'schedule must be rate(...) or cron(...)');
          }
          return {
            name: f.slice(0, -'.json'.length),
            file,
            description: typeof doc.description === 'string' ? doc.description : '',
            stateMachine: doc.stateMachine,
            enabled: doc.enabled !== false,
            ...(hasPattern ? { eventPattern: doc.eventPattern } : { schedule: doc.schedule }),
          };
        })
    : [];

  const defaultPolicy = fs.readFileSync(path.join(runbooksDir, 'firebreak', 'policy', 'default-policy.json'), 'utf8');
  const names = readJson(path.join(runbooksDir, 'firebreak', 'names.json')) as Names;
  for (const key of ['stack', 'auditLogGroup', 'policyParameter', 'actionTargetId', 'responseMachine', 'sweepMachine', 'releaseMachine', 'metricNamespace', 'ownersTopic', 'responseTopic'] as const) {
    if (typeof names[key] !== 'string') fail(path.join(runbooksDir, 'firebreak', 'names.json'), `${key} must be a string`);
  }
  const lambdaFile = path.join(runbooksDir, 'firebreak', 'lambda.json');
  const lambdaSettings = readJson(lambdaFile) as LambdaSettings;
  for (const key of ['timeoutSeconds', 'memoryMiB'] as const) {
    if (!Number.isInteger(lambdaSettings[key]) || lambdaSettings[key] <= 0) fail(lambdaFile, `${key} must be a positive whole number`);
  }
  const guardrailsFile = path.join(runbooksDir, 'firebreak', 'guardrails.json');
  const guardrails = readJson(guardrailsFile) as Guardrails;
  for (const key of ['neverChange', 'boundaryAlso'] as const) {
    if (!Array.isArray(guardrails[key]) || !guardrails[key].every((a) => typeof a === 'string' && /^[a-z0-9-]+:[A-Za-z*]+$/.test(a))) {
      fail(guardrailsFile, `${key} must be a list of IAM actions`);
    }
  }
  return { root, runbooks, stateMachines, rules, defaultPolicy, names, lambda: lambdaSettings, guardrails };
}
