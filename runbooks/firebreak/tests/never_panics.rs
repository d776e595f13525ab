//! Arbitrary JSON never panics the parser or the planner: it yields a plan or a typed error.

mod common;

use firebreak::finding::{parse_input, parse_input_bytes};
use firebreak::plan::{plan, Enrichment};
use firebreak::policy::Policy;
use proptest::prelude::*;
use serde_json::Value;

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f)
            .map(Value::Number)
            .unwrap_or(Value::Null)),
        ".{0,40}".prop_map(Value::String),
        // Values that look like the real thing, so deeper branches are reached.
        prop_oneof![
            Just("GuardDuty Finding"),
            Just("aws.guardduty"),
            Just("Security Hub Findings - Custom Action"),
            Just("aws.securityhub"),
            Just("i-0a1b2c3d4e5f60718"),
            Just("Instance"),
            Just("AccessKey"),
            Just("arn:aws:guardduty:us-east-1:111122223333:detector/d/finding/f"),
            Just("111122223333"),
            Just("us-east-1"),
            Just("198.51.100.7"),
            Just("0.0.0.0/0"),
            Just("AssumedRole"),
            Just("true"),
        ]
        .prop_map(|s| Value::String(s.to_owned())),
    ];
    leaf.prop_recursive(6, 64, 8, |inner| {
        let keys = prop_oneof![
            Just("detail-type".to_owned()),
            Just("source".to_owned()),
            Just("detail".to_owned()),
            Just("findings".to_owned()),
            Just("resource".to_owned()),
            Just("service".to_owned()),
            Just("type".to_owned()),
            Just("arn".to_owned()),
            Just("accountId".to_owned()),
            Just("severity".to_owned()),
            Just("instanceDetails".to_owned()),
            Just("instanceId".to_owned()),
            Just("networkInterfaces".to_owned()),
            Just("action".to_owned()),
            Just("dryRun".to_owned()),
            Just("finding".to_owned()),
            Just("ProductArn".to_owned()),
            Just("Id".to_owned()),
            Just("Resources".to_owned()),
            Just("Types".to_owned()),
            "[a-zA-Z]{1,8}",
        ];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(keys, inner, 0..8)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Replaces one node of a real fixture, found by walking `path`, with an arbitrary value.
fn mutate(v: &mut Value, path: &[usize], replacement: Value) {
    let Some((&step, rest)) = path.split_first() else {
        *v = replacement;
        return;
    };
    match v {
        Value::Object(map) if !map.is_empty() => {
            let n = map.len();
            if let Some(child) = map.values_mut().nth(step % n) {
                mutate(child, rest, replacement);
            }
        }
        Value::Array(items) if !items.is_empty() => {
            let n = items.len();
            mutate(&mut items[step % n], rest, replacement);
        }
        _ => *v = replacement,
    }
}

fn plan_all(v: &Value) {
    let policy = Policy::built_in().unwrap();
    if let Ok(input) = parse_input(v) {
        for f in &input.findings {
            let p = plan(f, &policy, "built-in", Enrichment::Offline, false);
            // Whatever came in, the plan serialises.
            serde_json::to_string(&p).unwrap();
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, .. ProptestConfig::default() })]

    #[test]
    fn arbitrary_json_never_panics(v in arb_json()) {
        plan_all(&v);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse_input_bytes(&bytes);
    }

    #[test]
    fn mutated_fixtures_never_panic(
        which in 0usize..13,
        path in prop::collection::vec(any::<usize>(), 1..8),
        replacement in arb_json(),
    ) {
        let mut names: Vec<_> = std::fs::read_dir(common::repo_root().join("tests/fixtures/findings"))
            .unwrap().map(|e| e.unwrap().path()).collect();
        names.sort();
        let bytes = std::fs::read(&names[which % names.len()]).unwrap();
        let mut v: Value = serde_json::from_slice(&bytes).unwrap();
        mutate(&mut v, &path, replacement);
        plan_all(&v);
    }
}
