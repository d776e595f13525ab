// The member side of an organisation deployment: in each member account, one role per
// runbook that acts where a finding is (`"memberRole": true` in its permissions.json),
// with that file's statements and nothing else, trusted only by the same runbook's role in
// the security account, from inside the organisation. Deploy it to organisational units
// with a service-managed StackSet (README: "Organisation deployment").
import { Aws, CfnParameter, Stack, StackProps, Validations, aws_iam as iam } from 'aws-cdk-lib';
import { Construct } from 'constructs';
import { Repository } from './repo';

export interface FirebreakMemberStackProps extends StackProps {
  readonly repo: Repository;
  /** The security stack's name (its roles are `<name>-<runbook>`). */
  readonly securityStackName?: string;
}

/** Replaces `${Partition}`, `${Account}` (the member's own) and `${Region}` (any: the
 * member role serves every enrolled region) in a declared resource ARN. */
export function resolveMemberArn(declared: string): string {
  return declared.replaceAll('${Partition}', Aws.PARTITION).replaceAll('${Region}', '*').replaceAll('${Account}', Aws.ACCOUNT_ID);
}

function nagMemberArn(declared: string): string {
  return declared.replaceAll('${Partition}', '<AWS::Partition>').replaceAll('${Region}', '*').replaceAll('${Account}', '<AWS::AccountId>');
}

export class FirebreakMemberStack extends Stack {
  readonly roles = new Map<string, iam.Role>();

  constructor(scope: Construct, id: string, props: FirebreakMemberStackProps) {
    super(scope, id, props);
    const repo = props.repo;
    const securityStack = props.securityStackName ?? repo.names.stack;
    // Parameters, so that one template serves every account of a StackSet.
    const securityAccount = new CfnParameter(this, 'SecurityAccountId', {
      type: 'String',
      allowedPattern: '^\\d{12}$',
      description: 'The account Firebreak runs in (the delegated administrator of GuardDuty and Security Hub)',
    });
    const organizationId = new CfnParameter(this, 'OrganizationId', {
      type: 'String',
      allowedPattern: '^o-[a-z0-9]{10,32}$',
      description: 'The organisation: only its principals may assume the member roles',
    });
    const policy = JSON.parse(repo.defaultPolicy) as { protectedPrincipals?: { roleNames?: string[]; userNames?: string[] } };
    const iamArn = (kind: string, name: string) => [
      `arn:${Aws.PARTITION}:iam::${Aws.ACCOUNT_ID}:${kind}/${name}`,
      `arn:${Aws.PARTITION}:iam::${Aws.ACCOUNT_ID}:${kind}/*/${name}`,
    ];
    const protectedArns = [
      ...iamArn('role', `${repo.names.stack}-*`),
      `arn:${Aws.PARTITION}:iam::${Aws.ACCOUNT_ID}:role/aws-service-role/*`,
      ...(policy.protectedPrincipals?.roleNames ?? []).flatMap((n) => iamArn('role', n)),
      ...(policy.protectedPrincipals?.userNames ?? []).flatMap((n) => iamArn('user', n)),
    ];
    for (const rb of repo.runbooks.filter((r) => r.memberRole)) {
      const role = new iam.Role(this, `${rb.pascalName}MemberRole`, {
        roleName: `${repo.names.memberRolePrefix}${rb.name}`,
        description: `Firebreak ${rb.name} in this account: what runbooks/${rb.name}/permissions.json declares, for the security account's ${securityStack}-${rb.name} only`,
        assumedBy: new iam.AccountPrincipal(securityAccount.valueAsString).withConditions({
          ArnEquals: { 'aws:PrincipalArn': `arn:${Aws.PARTITION}:iam::${securityAccount.valueAsString}:role/${securityStack}-${rb.name}` },
          StringEquals: { 'aws:PrincipalOrgID': organizationId.valueAsString },
        }),
      });
      const acknowledged = new Map<string, string>();
      const statements = rb.statements.filter((st) => !st.securityAccountOnly);
      statements.forEach((st, i) => {
        role.addToPolicy(
          new iam.PolicyStatement({
            sid: st.sid ?? `Declared${i}`,
            actions: st.actions,
            resources: st.resources.map(resolveMemberArn),
            conditions: st.conditions,
          }),
        );
        for (const r of st.resources.filter((r) => r.includes('*') || r.includes('${Region}'))) {
          acknowledged.set(
            `AwsSolutions-IAM5[Resource::${nagMemberArn(r)}]`,
            st.why ?? `${rb.name} acts on whichever resource a finding names, known only at run time; declared in runbooks/${rb.name}/permissions.json (${st.sid ?? i})`,
          );
        }
      });
      // The same guardrail as in the security account: never Firebreak's own roles or the
      // protected principals of this account.
      role.addToPolicy(
        new iam.PolicyStatement({
          sid: 'NeverChangeFirebreakOrProtectedPrincipals',
          effect: iam.Effect.DENY,
          actions: repo.guardrails.neverChange,
          resources: protectedArns,
        }),
      );
      if (acknowledged.size > 0) Validations.of(role).acknowledge(...[...acknowledged].map(([id, reason]) => ({ id, reason })));
      this.roles.set(rb.name, role);
    }
  }
}
