//! The names Firebreak's parts agree on. Their home is `names.json` beside this crate,
//! which the CDK app and the local account read; these constants mirror it for Rust, and
//! a test fails when the two differ.

/// The stack and the prefix of every deployed name (`Firebreak-response`).
pub const STACK: &str = "Firebreak";
pub const AUDIT_LOG_GROUP: &str = "/firebreak/audit";
pub const POLICY_PARAMETER: &str = "/firebreak/policy";
pub const ACTION_TARGET_ID: &str = "FirebreakContain";
/// The one response machine: triage, then the runbooks, then the note and the audit.
pub const RESPONSE_MACHINE: &str = "response";
pub const SWEEP_MACHINE: &str = "sweep-ip-blocks";
pub const RELEASE_MACHINE: &str = "release";
pub const METRIC_NAMESPACE: &str = "Firebreak";
/// A member account's role for a runbook is this and the runbook's name (the member
/// stack deploys them; `Firebreak-member-isolate-instance`).
pub const MEMBER_ROLE_PREFIX: &str = "Firebreak-member-";
/// The DynamoDB table that caches whose account a finding is in, for 24 hours.
pub const ACCOUNT_CACHE_TABLE: &str = "firebreak-accounts";
/// The owning teams' topic (when no route of the policy names another) and the response
/// team's: the notify runbook publishes there.
pub const OWNERS_TOPIC: &str = "firebreak-owners";
pub const RESPONSE_TOPIC: &str = "firebreak-response";
/// The Secrets Manager secret with Jira Cloud's credentials (`{"baseUrl", "email",
/// "apiToken"}`), which the operator creates; the ticket runbook reads it.
pub const JIRA_SECRET: &str = "firebreak/jira";

/// The deployed name of a machine (`Firebreak-response`).
pub fn machine_name(machine: &str) -> String {
    format!("{STACK}-{machine}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_constants_are_names_json() {
        let v: serde_json::Value = serde_json::from_str(include_str!("../names.json")).unwrap();
        for (key, value) in [
            ("stack", STACK),
            ("auditLogGroup", AUDIT_LOG_GROUP),
            ("policyParameter", POLICY_PARAMETER),
            ("actionTargetId", ACTION_TARGET_ID),
            ("responseMachine", RESPONSE_MACHINE),
            ("sweepMachine", SWEEP_MACHINE),
            ("releaseMachine", RELEASE_MACHINE),
            ("metricNamespace", METRIC_NAMESPACE),
            ("memberRolePrefix", MEMBER_ROLE_PREFIX),
            ("ownersTopic", OWNERS_TOPIC),
            ("responseTopic", RESPONSE_TOPIC),
            ("accountCacheTable", ACCOUNT_CACHE_TABLE),
            ("jiraSecret", JIRA_SECRET),
        ] {
            assert_eq!(v[key], value, "names.json {key}");
        }
        assert_eq!(machine_name(RESPONSE_MACHINE), "Firebreak-response");
    }
}
