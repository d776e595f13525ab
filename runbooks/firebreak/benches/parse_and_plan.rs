//! Parse + plan time per finding, offline. `make bench` runs it.

use std::hint::black_box;
use std::path::PathBuf;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use firebreak::finding::parse_input_bytes;
use firebreak::plan::{plan, Enrichment};
use firebreak::policy::Policy;

fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/findings")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn bench(c: &mut Criterion) {
    let policy = Policy::built_in().expect("built-in policy");
    let mut group = c.benchmark_group("parse_and_plan");
    for name in [
        "ec2-network-backdoor.json",
        "ec2-port-probe.json",
        "iam-user-malicious-caller.json",
        "securityhub-imported-guardduty-ssh.json",
        "securityhub-custom-action-two-findings.json",
    ] {
        let bytes = fixture(name);
        let findings = parse_input_bytes(&bytes)
            .expect("fixture parses")
            .findings
            .len() as u64;
        group.throughput(Throughput::Elements(findings));
        group.bench_function(name.trim_end_matches(".json"), |b| {
            b.iter(|| {
                let input = parse_input_bytes(black_box(&bytes)).expect("fixture parses");
                for f in &input.findings {
                    black_box(plan(f, &policy, "built-in", Enrichment::Offline, false));
                }
            })
        });
    }
    group.finish();
    c.bench_function("policy/parse_built_in", |b| {
        b.iter(|| Policy::built_in().expect("valid"))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
