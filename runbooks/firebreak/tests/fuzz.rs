//! Mutation fuzzing of parse and plan, seeded from every real sample and fixture: byte
//! flips, cuts and splices of the files, and JSON-level mutations (a value replaced by a
//! hostile leaf, a key removed, a subtree copied elsewhere, a drill wrapper around it).
//! Whatever comes in, parse_input_bytes and plan answer with a plan or a typed error,
//! never a panic. `make test` runs 20 000 inputs; `make fuzz` runs 10⁶ in release
//! (FIREBREAK_FUZZ_CASES) and prints inputs per second.

mod common;

use std::time::Instant;

use firebreak::finding::parse_input_bytes;
use firebreak::plan::{plan, Enrichment};
use firebreak::policy::Policy;
use serde_json::{json, Value};

/// xorshift64*: deterministic, so a failure names a seed that reproduces it.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn corpus() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for dir in [
        common::repo_root().join("tests/fixtures/findings"),
        common::samples_dir(),
    ] {
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        files.sort();
        out.extend(files.into_iter().map(|p| std::fs::read(p).unwrap()));
    }
    assert!(
        out.len() >= 20,
        "the corpus is the repository's samples and fixtures"
    );
    out
}

fn hostile_leaf(rng: &mut Rng) -> Value {
    match rng.below(14) {
        0 => Value::Null,
        1 => json!(true),
        2 => json!(-1),
        3 => json!(1e308),
        4 => json!(""),
        5 => json!("i-123;rm -rf /"),
        6 => json!("x".repeat(rng.below(5000))),
        7 => json!("2017-12-05T19:30:23.000+0000"),
        8 => json!("::ffff:10.0.0.1"),
        9 => json!("0.0.0.0/0"),
        10 => json!([]),
        11 => json!({}),
        12 => json!("arn:aws:iam::111122223333:role/aws-service-role/x"),
        _ => json!("\u{0}\u{202e}é"),
    }
}

/// A random place in the document: its parent container and key or index.
fn mutate_json(v: &mut Value, rng: &mut Rng, depth: usize) {
    let pick_here = depth > 8 || rng.below(4) == 0;
    match v {
        Value::Object(map) if !map.is_empty() && !pick_here => {
            let keys: Vec<String> = map.keys().cloned().collect();
            let key = keys[rng.below(keys.len())].clone();
            match rng.below(6) {
                0 => {
                    map.remove(&key);
                }
                1 => {
                    let copy = map[&key].clone();
                    let other = keys[rng.below(keys.len())].clone();
                    map.insert(other, copy);
                }
                _ => {
                    if let Some(child) = map.get_mut(&key) {
                        mutate_json(child, rng, depth + 1);
                    }
                }
            }
        }
        Value::Array(items) if !items.is_empty() && !pick_here => {
            let i = rng.below(items.len());
            match rng.below(5) {
                0 => {
                    items.remove(i);
                }
                1 => {
                    let copy = items[i].clone();
                    items.push(copy);
                }
                _ => mutate_json(&mut items[i], rng, depth + 1),
            }
        }
        _ => *v = hostile_leaf(rng),
    }
}

fn mutate_bytes(bytes: &mut Vec<u8>, rng: &mut Rng, corpus: &[Vec<u8>]) {
    if bytes.is_empty() {
        return;
    }
    match rng.below(4) {
        0 => {
            let i = rng.below(bytes.len());
            bytes[i] ^= 1 << rng.below(8);
        }
        1 => {
            let cut = rng.below(bytes.len());
            bytes.truncate(cut);
        }
        2 => {
            let other = &corpus[rng.below(corpus.len())];
            let at = rng.below(bytes.len());
            let from = rng.below(other.len());
            bytes.splice(at..at, other[from..].iter().take(200).copied());
        }
        _ => {
            let i = rng.below(bytes.len());
            bytes.insert(i, b"{}[]\",:\\0"[rng.below(9)]);
        }
    }
}

fn one_input(corpus: &[Vec<u8>], rng: &mut Rng) -> Vec<u8> {
    let seed = &corpus[rng.below(corpus.len())];
    if rng.below(3) == 0 {
        let mut bytes = seed.clone();
        for _ in 0..=rng.below(3) {
            mutate_bytes(&mut bytes, rng, corpus);
        }
        return bytes;
    }
    let Ok(mut v) = serde_json::from_slice::<Value>(seed) else {
        return seed.clone();
    };
    for _ in 0..=rng.below(4) {
        mutate_json(&mut v, rng, 0);
    }
    if rng.below(8) == 0 {
        v = json!({"event": v, "dryRun": rng.below(2) == 0, "playbooks": ["ec2-compromise"]});
    }
    serde_json::to_vec(&v).unwrap()
}

#[test]
fn mutated_samples_never_panic_parse_or_plan() {
    let cases: usize = std::env::var("FIREBREAK_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let corpus = corpus();
    let policy = Policy::built_in().unwrap();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let (mut planned, mut refused) = (0usize, 0usize);
    let started = Instant::now();
    for case in 0..cases {
        let input = one_input(&corpus, &mut rng);
        let outcome = std::panic::catch_unwind(|| match parse_input_bytes(&input) {
            Ok(parsed) => {
                for f in &parsed.findings {
                    let p = plan(f, &policy, "built-in", Enrichment::Offline, parsed.dry_run);
                    assert!(serde_json::to_string(&p).is_ok());
                }
                true
            }
            Err(e) => {
                assert!(!e.to_string().is_empty());
                false
            }
        });
        match outcome {
            Ok(true) => planned += 1,
            Ok(false) => refused += 1,
            Err(_) => panic!(
                "case {case} panicked on input: {}",
                String::from_utf8_lossy(&input[..input.len().min(2000)])
            ),
        }
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "fuzz: {cases} inputs ({planned} planned, {refused} refused) in {secs:.1} s, {:.0} inputs/s",
        cases as f64 / secs.max(1e-9)
    );
    assert!(
        planned > cases / 20,
        "the mutations still reach the planner: {planned} of {cases}"
    );
}
